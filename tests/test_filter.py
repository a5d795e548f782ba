"""The filters and their funnel, truncation at turn boundaries, the filter stage's errors, on recorded trajectories, and the
range checks of the filter and SFT data options."""
import json, shutil
from pathlib import Path
import pytest
from synthsci.core import SynthsciError, Step, Task, Trajectory, load_config, read_jsonl, write_jsonl
from synthsci.filter import (FilterOptions, apply_filters, make_filters, not_degenerate, run_filter, sft_messages, sft_tools,
                             truncate_messages, unique)
from synthsci.sftdata import SFTDataOptions, run_sftdata
from synthsci.student import count_tokens, student_tokenizer

FIXTURES = Path(__file__).parent / "fixtures" / "trajectories"


@pytest.fixture(scope="module")
def trajs():
    return {t.id: t for p in sorted(FIXTURES.glob("traj-*.jsonl")) for t in read_jsonl(Trajectory, p)}


@pytest.fixture(scope="module")
def tasks():
    return {t.id: t for t in read_jsonl(Task, FIXTURES / "tasks.jsonl")}


@pytest.fixture(scope="module")
def tok():
    return student_tokenizer("local")


def test_funnel_counts_what_each_filter_drops(trajs, tasks, tok):
    filters = make_filters(FilterOptions(min_improvement=0.0), tasks, tok)
    left, dropped_by = list(trajs.values()), {}
    for name, keep in filters:  # replay the funnel one filter at a time to know who dropped what
        dropped_by[name] = sorted(t.id for t in left if not keep(t))
        left = [t for t in left if t.id not in dropped_by[name]]
    assert dropped_by == {"integrity": [], "success": ["traj-iris-fail"], "improvement": ["traj-motions-a"], "degenerate": ["traj-diabetes-loop"],
                          "duplicate": ["traj-iris-b"], "max_tokens": []}
    kept, funnel = apply_filters(list(trajs.values()), make_filters(FilterOptions(min_improvement=0.0), tasks, tok))
    assert [t.id for t in kept] == [t.id for t in left]
    assert [(f["step"], f["kept"], f["dropped"]) for f in funnel] == [
        ("input", 7, 0), ("integrity", 7, 0), ("success", 6, 1), ("improvement", 5, 1), ("degenerate", 4, 1), ("duplicate", 3, 1), ("max_tokens", 3, 0)]


def test_filters_can_be_switched_off(trajs, tasks):
    opts = FilterOptions(require_success=False, dedupe=False, max_tokens=None, max_repeats=100, max_empty_thoughts=1.0)
    kept, funnel = apply_filters(list(trajs.values()), make_filters(opts, tasks))
    assert len(kept) == 7 and [f["step"] for f in funnel] == ["input", "integrity", "degenerate"]   # integrity cannot be switched off


def test_max_tokens_is_counted_in_student_tokens(trajs, tasks, tok):
    lengths = {k: count_tokens(tok, sft_messages(t), sft_tools(t)) for k, t in trajs.items()}
    limit = lengths["traj-iris-a"] - 1          # the longest run, one token over the limit
    assert limit >= max(v for k, v in lengths.items() if not k.startswith("traj-iris-a") and k != "traj-iris-b")
    kept, funnel = apply_filters(list(trajs.values()), make_filters(FilterOptions(max_tokens=limit), tasks, tok))
    assert "traj-iris-a" not in {t.id for t in kept} and funnel[-1]["step"] == "max_tokens" and funnel[-1]["dropped"] == 1
    # tools are part of what the student reads: the tool-call run is longer with its schemas than without
    d = trajs["traj-diabetes-a"]
    assert count_tokens(tok, sft_messages(d), sft_tools(d)) > count_tokens(tok, sft_messages(d)) + 50


def test_degenerate_needs_the_same_action_failing_repeatedly():
    def run(actions, observations, thought="think"):
        return Trajectory(id="x", task_id="t", steps=[Step(thought=thought, action=a, observation=o) for a, o in zip(actions, observations)])
    keep = not_degenerate(max_repeats=3)
    err = "Traceback (most recent call last):\nValueError: bad"
    assert keep(run(["ls", "ls", "ls"], ["a.py"] * 3))                                  # repeating a working command is fine
    assert keep(run(["python a.py", "python b.py", "python a.py"], [err] * 3))          # different actions
    assert not keep(run(["python a.py"] * 3, [err] * 3))
    assert keep(run(["python a.py"] * 2 + ["ls"] + ["python a.py"] * 2, [err] * 2 + ["a.py"] + [err] * 2))  # the run resets
    assert not keep(run(["ls", "cat a", "ls"], ["a"] * 3, thought=""))                  # empty thoughts
    assert not keep(Trajectory(id="x", task_id="t"))                                    # no steps at all


def test_duplicates_are_per_task(trajs):
    a = trajs["traj-iris-a"]
    other_task = Trajectory.from_dict({**a.to_dict(), "id": "copy", "task_id": "task-other"})
    same_task = Trajectory.from_dict({**a.to_dict(), "id": "copy2"})
    keep = unique()
    assert [keep(t) for t in (a, other_task, same_task)] == [True, True, False]


def test_truncation_is_maximal_and_ends_on_an_assistant_turn(trajs, tok):
    for tid in ("traj-iris-a", "traj-diabetes-a"):
        t = trajs[tid]
        msgs, tools = sft_messages(t), sft_tools(t)
        n = lambda ms: count_tokens(tok, ms, tools)
        ends = [i + 1 for i, m in enumerate(msgs) if m["role"] == "assistant"]
        for limit in range(n(msgs[:ends[0]]) - 5, n(msgs) + 10, 97):
            cut = truncate_messages(msgs, n, limit)
            if not cut:
                assert n(msgs[:ends[0]]) > limit; continue
            assert cut == msgs[:len(cut)] and cut[-1]["role"] == "assistant" and n(cut) <= limit
            later = [e for e in ends if e > len(cut)]
            assert not later or n(msgs[:later[0]]) > limit          # the next turn boundary would not fit


def test_foreign_messages_are_refused():
    anthropic_blocks = Trajectory(id="ant", task_id="t", messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    with pytest.raises(SynthsciError, match="trajectory ant is not a chat"):
        sft_messages(anthropic_blocks)
    bad_call = Trajectory(id="call", task_id="t", messages=[{"role": "assistant", "content": "", "tool_calls": [{"name": "ls"}]}])
    with pytest.raises(SynthsciError, match="trajectory call is not a chat"):
        sft_messages(bad_call)


def _run_dir(tmp_path, tasks, names):
    rdir = tmp_path / "r"
    write_jsonl(list(tasks.values()), rdir / "04_tasks" / "tasks.jsonl")
    (rdir / "06_rollouts").mkdir(parents=True)
    for n in names: shutil.copy(FIXTURES / n, rdir / "06_rollouts" / (n if n.endswith(".jsonl") else "foreign.jsonl"))
    return load_config(overrides=[f"runs_dir={tmp_path}", "run_id=r"]), rdir


def test_stage_errors_come_before_any_work(tmp_path, tasks):
    cfg, rdir = _run_dir(tmp_path, tasks, ["traj-iris-a.jsonl", "mlgym_foreign.traj.json"])
    with pytest.raises(SynthsciError, match="foreign.jsonl does not hold synthsci Trajectory records .it looks like an MLGym .traj file"):
        run_filter(cfg)
    assert not list((rdir / "07_filtered").glob("*.jsonl")) if (rdir / "07_filtered").exists() else True
    (rdir / "06_rollouts" / "foreign.jsonl").unlink(); (rdir / "06_rollouts" / "traj-iris-a.jsonl").unlink()
    with pytest.raises(SynthsciError, match="no trajectories in .*06_rollouts: the rollouts stage has not run; run it first"):
        run_filter(cfg)


def test_stage_says_when_everything_is_filtered(tmp_path, tasks):
    cfg, rdir = _run_dir(tmp_path, tasks, ["traj-iris-fail.jsonl", "traj-diabetes-loop.jsonl"])
    with pytest.raises(SynthsciError, match=r'every trajectory was filtered out \(\{"integrity": 0, "success": 1, "degenerate": 1'):
        run_filter(cfg)


def test_stage_writes_kept_trajectories_and_the_funnel(tmp_path, tasks):
    names = [p.name for p in FIXTURES.glob("traj-*.jsonl")]
    cfg, rdir = _run_dir(tmp_path, tasks, names)
    cfg.stages = {"filter": {"min_improvement": 0.0}}
    out = run_filter(cfg)
    kept = sorted(t.id for p in out.glob("*.jsonl") for t in read_jsonl(Trajectory, p))
    assert kept == ["traj-diabetes-a", "traj-iris-a", "traj-motions-b"]
    funnel = json.loads((rdir / "manifest.json").read_text())["stages"]["07_filtered"]["funnel"]
    assert [f["kept"] for f in funnel] == [7, 7, 6, 5, 4, 3, 3]
    assert run_filter(cfg) == out   # a second run resumes: nothing to redo, same result


@pytest.mark.parametrize("cls,stage,field,value,rule", [
    (FilterOptions, "filter", "max_repeats", -3, ">= 2"), (FilterOptions, "filter", "max_tokens", -1, ">= 1"),
    (FilterOptions, "filter", "max_empty_thoughts", -0.5, "between 0 and 1"),
    (SFTDataOptions, "sftdata", "max_tokens", -2048, ">= 1"), (SFTDataOptions, "sftdata", "keep_observations", -1, ">= 0"),
    (SFTDataOptions, "sftdata", "eval_fraction", -0.1, "between 0 and 1")])
def test_negative_counts_are_refused_naming_the_field(tmp_path, cls, stage, field, value, rule):
    with pytest.raises(SynthsciError, match=f"^{field} must be {rule}, not {value}$"):
        cls(**{field: value})
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=r", f"stages.{stage}.{field}={value}"])
    run_stage = {"filter": run_filter, "sftdata": run_sftdata}[stage]
    with pytest.raises(SynthsciError, match=f"^stages.{stage}.{field} must be {rule}, not {value}$"):
        run_stage(cfg)                     # refused when the stage reads its options, before it looks for its input
