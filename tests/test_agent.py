"""The agent loop, driven by scripted policies and the scripted expert (no mocks of the loop itself): limits, exit
statuses, saving after every step, and the expert as a researcher."""
import dataclasses, json
from pathlib import Path
import pytest
from synthsci.aci import load_task
from synthsci.agent import AgentConfig, LLMPolicy, run_agent, parse_response, history_view
from synthsci.expert import ScriptedExpert
from synthsci.llm import AnthropicLLM, Completion, OpenAILLM, ScriptedLLM, ToolCall, Usage
from synthsci.sandbox import SandboxLimits

FIX = Path(__file__).parent / "fixtures" / "tasks"
WINE, DIABETES = load_task(FIX / "wine"), load_task(FIX / "diabetes")
say = lambda t, a: f"DISCUSSION\n{t}\n\n```\n{a}\n```"
LIMITS = SandboxLimits(timeout=120)


def test_trajectory_saved_after_every_step(tmp_path):
    seen = []
    def policy(messages, **p):
        f = tmp_path / "out" / "t.traj"
        seen.append(len(json.loads(f.read_text())["trajectory"]) if f.exists() else None)
        return say("next", "echo hi") if len(seen) < 4 else say("done", "submit")
    t = run_agent(WINE, LLMPolicy(ScriptedLLM(policy)), tmp_path / "ws", AgentConfig(max_steps=10), traj_id="t", save_dir=tmp_path / "out", limits=LIMITS)
    assert seen == [None, 1, 2, 3]       # before each call, every earlier step was on disk
    assert t.exit_status == "submission_not_found (submit)"
    d = json.loads((tmp_path / "out/t.traj").read_text())
    assert d["info"]["exit_status"] == t.exit_status and len(d["trajectory"]) == 4 and d["history"] == t.messages


def test_cost_context_and_wall_time_limits_autosubmit(tmp_path):
    run_baseline = lambda m, **p: Completion(say("train", "python baseline.py"), usage=Usage(1_000_000, 1000))
    t = run_agent(WINE, ScriptedLLM(run_baseline, name="openai:gpt-5"), tmp_path / "a", AgentConfig(cost_limit_usd=1.0), limits=LIMITS)
    assert t.exit_status == "autosubmission (exit_cost)" and len(t.steps) == 1 and t.model_stats["total_cost"] == pytest.approx(1.26)
    assert t.score and "accuracy" in t.score[-1]
    t = run_agent(WINE, ScriptedLLM(lambda m, **p: say("x", "echo hi")), tmp_path / "b", AgentConfig(max_context_tokens=10), limits=LIMITS)
    assert (t.exit_status, len(t.steps)) == ("submission_not_found (exit_context)", 0)
    t = run_agent(WINE, ScriptedLLM(lambda m, **p: say("x", "echo hi")), tmp_path / "c", AgentConfig(wall_time_s=0), limits=LIMITS)
    assert t.exit_status == "submission_not_found (exit_time)"


def test_hanging_command_and_dying_sandbox(tmp_path, monkeypatch):
    script = [say("wait", "sleep 60"), say("go on", "echo alive"), say("done", "submit")]
    t = run_agent(WINE, ScriptedLLM(script), tmp_path / "a", AgentConfig(command_timeout_s=1), limits=LIMITS)
    assert "TIMED OUT" in t.steps[0].observation and t.steps[1].observation.startswith("alive")
    from synthsci import aci as aci_mod
    def dead(self, action): raise BrokenPipeError("the sandbox died")
    monkeypatch.setattr(aci_mod.ACI, "step", dead)
    t = run_agent(WINE, ScriptedLLM([say("look", "ls")]), tmp_path / "b", AgentConfig(), limits=LIMITS)
    assert t.exit_status == "submission_not_found (exit_environment_error)" and "sandbox died" in t.model_stats["environment_error"]
    t = run_agent(WINE, ScriptedLLM([say("look", "ls")]), tmp_path / "c", AgentConfig(), backend="no-such-backend")
    assert t.exit_status == "exit_environment_error" and "unknown sandbox backend" in t.model_stats["environment_error"]


def test_format_errors_recover_then_end_the_run(tmp_path):
    answers = ["no command here", say("two", "ls") + "\n```\npwd\n```", say("ok", "submit")]
    t = run_agent(WINE, ScriptedLLM(answers), tmp_path / "a", AgentConfig(), limits=LIMITS)
    assert t.model_stats["format_errors"] == 2 and [s.action for s in t.steps] == ["submit"]
    t = run_agent(WINE, ScriptedLLM(lambda m, **p: "```\nls\n```\n```\nls\n```"), tmp_path / "b", AgentConfig(max_format_errors=2), limits=LIMITS)
    assert t.exit_status == "submission_not_found (exit_format)" and t.model_stats["api_calls"] == 2


def test_history_keeps_first_turns_and_last_five_observations():
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "task"}]
    for i in range(8): msgs += [{"role": "assistant", "content": f"a{i}"}, {"role": "user", "content": f"o{i}"}]
    v = history_view(msgs)
    assert [m["content"] for m in v if m["role"] == "user"][1:] == ["Old output omitted (1 lines)"] * 3 + [f"o{i}" for i in range(3, 8)]
    assert [m["content"] for m in v if m["role"] == "assistant"] == [f"a{i}" for i in range(8)]


def breaks_the_baseline_rule(task, scored: list[tuple[str, dict]]):
    """Why a run's scored steps (action, metrics) break 'several validations, then a submission never worse than the
    baseline', or None. The metric, its direction and the baseline's score are the task's (its recorded baseline is
    scored on the test split, as a submission is; a validation scores the validation split, so it is not compared)."""
    (base,) = [b[task.metric] for b in task.baseline_scores]
    if [a for a, _ in scored[:-1]] != ["validate"] * (len(scored) - 1) or not scored or scored[-1][0] != "submit":
        return f"the scored steps are not validations then one submission: {[a for a, _ in scored]}"
    if len(scored) < 3: return f"{len(scored) - 1} validation(s): the expert validates the baseline and at least one candidate"
    final = scored[-1][1][task.metric]
    worse = final > base if task.direction == "min" else final < base
    return f"the submission scores {task.metric}={final}, worse than the baseline's {base} ({task.direction})" if worse else None


def test_the_baseline_rule_catches_a_worse_submission():
    "Planted runs (hand-written sequences): the rule holds for a good one and fails for each way of breaking it."
    assert DIABETES.metric == "rmse" and DIABETES.direction == "min" and WINE.direction == "max"   # read from the tasks' files
    val, sub = lambda v: ("validate", {"rmse": v}), lambda v: ("submit", {"rmse": v})
    good = [val(52.9), val(58.3), val(52.0), sub(56.7)]                      # 56.7 < the baseline's 57.3034: better for rmse
    assert breaks_the_baseline_rule(DIABETES, good) is None
    assert "worse than the baseline's 57.3034" in breaks_the_baseline_rule(DIABETES, good[:-1] + [sub(60.1)])   # the last validated, not the best
    assert "worse" in breaks_the_baseline_rule(dataclasses.replace(DIABETES, direction="max"), good)          # the same run if higher were better
    assert "1 validation(s)" in breaks_the_baseline_rule(DIABETES, [val(52.9), sub(56.7)])
    assert "not validations then one submission" in breaks_the_baseline_rule(DIABETES, good[:-1])
    wine = [("validate", {"accuracy": 0.86}), ("validate", {"accuracy": 0.91}), ("submit", {"accuracy": 0.80})]
    assert "worse than the baseline's 0.8611 (max)" in breaks_the_baseline_rule(WINE, wine)


@pytest.mark.parametrize("fmt,seeds", [("mlgym", (4, 5)), ("tool_calls", (6,))])
def test_expert_researches_and_submits(tmp_path, fmt, seeds):
    runs = [run_agent(DIABETES, ScriptedExpert(seed, attempts=(2, 2), p_typo=0.5, p_runtime_error=1.0, p_slow=0.0, run_timeout_s=30), tmp_path / f"ws{seed}",
                      AgentConfig(max_steps=40, format=fmt), traj_id=f"s{seed}", limits=LIMITS) for seed in seeds]
    for t in runs:
        assert t.exit_status == "submitted", t.exit_status
        assert breaks_the_baseline_rule(DIABETES, [(s.action, s.score) for s in t.steps if s.score]) is None
        actions = [s.action for s in t.steps]
        assert actions[0] == "ls -a" and any(a.startswith("edit") for a in actions) and actions[-1] == "submit"
        if fmt == "mlgym":
            for m in t.messages[2::2]: parse_response(m["content"])
        else:
            assert all(len(m["tool_calls"]) == 1 for m in t.messages[2::2])
    if len(runs) == 2: assert [s.action for s in runs[0].steps] != [s.action for s in runs[1].steps]


def test_expert_recovers_from_a_slow_model(tmp_path):
    t = run_agent(WINE, ScriptedExpert(0, attempts=(1, 1), p_typo=0, p_slow=1.0, run_timeout_s=3), tmp_path / "ws", AgentConfig(max_steps=30), limits=LIMITS)
    assert any("too slow" in s.thought for s in t.steps) and t.exit_status == "submitted"
    assert t.score[-1]["accuracy"] >= 0.8       # the baseline's submission was restored and submitted


def test_expert_submits_near_the_step_limit(tmp_path):
    t = run_agent(WINE, ScriptedExpert(0), tmp_path / "ws", AgentConfig(max_steps=8), limits=LIMITS)
    assert t.exit_status == "submitted" and len(t.steps) <= 8



OPENAI_FIELDS = {"system": {"role", "content", "name"}, "user": {"role", "content", "name"},
                 "assistant": {"role", "content", "name", "tool_calls", "refusal"}, "tool": {"role", "content", "tool_call_id"}}


def test_server_that_ignores_tools_falls_back_to_text(tmp_path, recorded):
    "A self-hosted server without tool support answers a tools request in text: the run goes on in MLGym's format and submits."
    recorded.serve("openai_mlgym_run", "openai_mlgym_submit")
    llm = OpenAILLM("qwen3-8b", base_url=recorded.url + "/v1", max_retries=0, timeout_s=10)
    t = run_agent(WINE, LLMPolicy(llm, temperature=0, max_tokens=512), tmp_path / "ws", AgentConfig(max_steps=5, format="tool_calls"), limits=LIMITS)
    assert (t.exit_status, [s.action for s in t.steps]) == ("submitted", ["python baseline.py", "submit"])
    fb = t.model_stats["tool_call_fallback"]
    assert (fb["step"], fb["switched_to"]) == (1, "mlgym") and t.steps[0].events[0]["kind"] == "tool_call_fallback"
    assert "format_errors" not in t.model_stats                                # the first answer was read as text
    first, second = (r["body"] for r in recorded.requests)
    assert "tools" in first and "tools" not in second                          # said once, then text for the rest of the run
    assert (second["max_tokens"], second["temperature"]) == (512, 0)           # a self-hosted model keeps its parameters
    for body in (first, second):
        for m in body["messages"]: assert set(m) <= OPENAI_FIELDS[m["role"]], m
    assert t.messages[2]["thought"] and t.messages[2]["agent"] == "primary"    # ... while the trajectory keeps MLGym's fields


def test_anthropic_requests_carry_only_role_and_content(tmp_path, recorded, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    recorded.serve("anthropic_mlgym_run", "anthropic_mlgym_submit")
    llm = AnthropicLLM("claude-sonnet-4-6", max_retries=0, timeout_s=10, base_url=recorded.url)
    t = run_agent(WINE, LLMPolicy(llm, temperature=0), tmp_path / "ws", AgentConfig(max_steps=5), limits=LIMITS)
    assert t.exit_status == "submitted" and t.messages[2]["action"] == "python baseline.py"
    second = recorded.requests[1]["body"]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert all(set(m) == {"role", "content"} for m in second["messages"]) and second["temperature"] == 0


def test_fallback_off_and_servers_with_tools_keep_the_format_error(tmp_path):
    text = lambda m, **p: say("look", "ls")
    t = run_agent(WINE, ScriptedLLM(text), tmp_path / "a", AgentConfig(format="tool_calls", tool_call_fallback=False, max_format_errors=2), limits=LIMITS)
    assert t.exit_status == "submission_not_found (exit_format)" and t.model_stats["tool_call_fallback"]["switched_to"] is None
    assert [r["error"] for r in t.model_stats["rejected_answers"]] == ["expected exactly one tool call, found 0 (tool_call_fallback is off)"] * 2
    # a server that made a tool call before supports tools: an answer without one is an ordinary format error
    script = [Completion("", [ToolCall("c1", "bash", {"command": "python baseline.py"})]), say("done", "submit"), Completion("", [ToolCall("c2", "submit")])]
    t = run_agent(WINE, ScriptedLLM(script), tmp_path / "b", AgentConfig(format="tool_calls"), limits=LIMITS)
    assert t.exit_status == "submitted" and "tool_call_fallback" not in t.model_stats and t.model_stats["format_errors"] == 1
    assert [m["role"] for m in t.messages[2:]] == ["assistant", "tool", "assistant", "tool"]


def test_rejected_answers_are_kept_size_capped(tmp_path):
    rambling = Completion("Let me think about this. " * 400, finish_reason="length", max_tokens=2000)
    t = run_agent(WINE, ScriptedLLM([rambling, "no command", say("ok", "submit")]), tmp_path / "a", AgentConfig(), limits=LIMITS)
    kept = t.model_stats["rejected_answers"]
    assert t.model_stats["format_errors"] == 2 and [r["step"] for r in kept] == [1, 1]
    assert kept[0]["text"].startswith("Let me think") and kept[0]["text"].endswith("[... 8000 more characters]") and len(kept[0]["text"]) < 2100
    assert kept[0]["cut_off"] == "the answer was cut off at max_tokens=2000: raise it" and "cut_off" not in kept[1]
    assert kept[1] == {"step": 1, "error": "expected exactly one fenced command block, found 0", "text": "no command"}
    assert not any("Let me think" in (m.get("content") or "") for m in t.messages)   # not in the conversation (SFT data)
    t = run_agent(WINE, ScriptedLLM(lambda m, **p: "nothing"), tmp_path / "b", AgentConfig(max_steps=30, max_format_errors=30), limits=LIMITS)
    assert t.model_stats["format_errors"] == 30 and len(t.model_stats["rejected_answers"]) == 20   # the latest 20


def test_observation_cut_is_visible_to_the_policy_and_off_with_none(tmp_path):
    "A 5000-character output: the policy is shown its head and tail with the cut said; the trajectory keeps it whole; None shows it whole."
    from synthsci.agent import cut_observation
    act = "python -c \"print('a' * 2500 + 'b' * 2500)\""
    for cut in (300, None):
        llm = ScriptedLLM([say("print", act), say("done", "submit")])
        t = run_agent(WINE, llm, tmp_path / f"ws{cut}", AgentConfig(max_steps=3, max_observation_chars=cut), limits=LIMITS)
        shown = llm.calls[1]["messages"][-1]["content"]
        assert t.messages[3]["content"].startswith("a" * 2500 + "b" * 2500)   # the record is whole either way
        if cut is None:
            assert shown == t.messages[3]["content"] and "characters cut" not in shown and "max_observation_chars" not in t.provenance
        else:
            assert shown == cut_observation(t.messages[3]["content"], 300) and len(shown) < 400
            assert shown.startswith("a" * 150) and shown.endswith("bash-$") and f"[... {len(t.messages[3]['content']) - 300} characters cut ...]" in shown
            assert llm.calls[1]["messages"][1] == t.messages[1] and t.provenance["max_observation_chars"] == 300   # the task is never cut
    assert cut_observation("x" * 10, 10) == "x" * 10 and "[... 1 characters cut ...]" in cut_observation("x" * 11, 10)
