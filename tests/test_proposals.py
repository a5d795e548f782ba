"""Proposals: the schema, tool calls through the real OpenAI and Anthropic SDKs (recorded responses), one repair, and
rejections that are counted and never asked again."""
import copy, json
from pathlib import Path
import pytest
from synthsci.core import Run, Proposal, Topic, load_config
from synthsci.llm import AnthropicLLM, OpenAILLM, ScriptedLLM
from synthsci.proposals import (PROPOSAL_SCHEMA, ProposalsOptions, Rejection, propose, read_rejections, run_proposals, schema_errors,
                                scripted_proposals, structured_mode)
from synthsci.topics import run_topics

FIX = Path(__file__).parent / "fixtures" / "llm"
TOPIC = Topic(id="topic-har", area="time-series classification", name="Human activity recognition from wearable sensors")
GOOD = {"dataset_id": "sktime/BasicMotions", "target": "activity", "metric": "accuracy", "direction": "max",
        "task_kind": "time-series-classification", "baseline_idea": "1-NN with Euclidean distance on the raw series",
        "resources": {"gpu": False, "cpu_minutes": 5}}
BAD = {**GOOD, "direction": "higher", "resources": {"gpu": False}}


def openai_tool_answer(args):
    r = json.loads((FIX / "openai_tool_calls.json").read_text())
    r["body"]["choices"][0]["message"]["tool_calls"][0]["function"] = {"name": "propose_task", "arguments": json.dumps(args)}
    return r


def anthropic_tool_answer(args):
    r = json.loads((FIX / "anthropic_tool_use.json").read_text())
    r["body"]["content"][1].update(name="propose_task", input=args)
    return r


@pytest.mark.parametrize("spec,mode", [("openai:gpt-5", "tools"), ("anthropic:claude-sonnet-4-6", "tools"), ("openai:qwen@http://h/v1", "json"),
                                       ("local", "json"), ("scripted", "json")])
def test_structured_mode_by_provider(spec, mode):
    assert structured_mode(spec) == mode


def test_schema_catches_what_matters():
    assert schema_errors(GOOD) == []
    errs = schema_errors(BAD)
    assert any(e.startswith("direction") for e in errs) and any("cpu_minutes" in e for e in errs)
    assert schema_errors({**GOOD, "colour": "red"})                      # no unknown fields
    assert schema_errors({**GOOD, "resources": {"gpu": False, "cpu_minutes": 100000}})


def test_openai_tool_call_with_one_repair(recorded, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    recorded.responses = [openai_tool_answer(BAD), openai_tool_answer(GOOD)]
    llm = OpenAILLM("gpt-5", base_url=recorded.url + "/v1", max_retries=0, timeout_s=10)
    p = propose(TOPIC, llm, mode="tools")
    assert isinstance(p, Proposal) and (p.dataset_id, p.direction, p.parent_id) == ("sktime/BasicMotions", "max", "topic-har")
    first, second = recorded.requests[0]["body"], recorded.requests[1]["body"]
    assert first["tools"][0]["function"]["name"] == "propose_task"
    assert first["tools"][0]["function"]["parameters"]["required"] == PROPOSAL_SCHEMA["required"]
    repair = second["messages"][-1]
    assert repair["role"] == "tool" and repair["tool_call_id"] == "call_Qd4mX1c9Zr2Vb8Np" and "direction" in repair["content"]


def test_anthropic_tool_use_twice_malformed_is_rejected(recorded, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    recorded.responses = [anthropic_tool_answer(BAD)]
    llm = AnthropicLLM("claude-sonnet-4-6", max_retries=0, timeout_s=10, base_url=recorded.url)
    r = propose(TOPIC, llm, mode="tools")
    assert isinstance(r, Rejection) and r.kind == "malformed" and "direction" in r.reason
    assert len(recorded.requests) == 2                                    # one repair, then it gives up
    assert recorded.requests[0]["body"]["tools"][0]["input_schema"]["properties"]["direction"] == PROPOSAL_SCHEMA["properties"]["direction"]
    assert recorded.requests[1]["body"]["messages"][-1]["content"][0]["type"] == "tool_result"


def test_json_mode_reads_json_from_prose():
    llm = ScriptedLLM([f"Sure, here it is:\n```json\n{json.dumps(GOOD)}\n```\nGood luck!"])
    assert propose(TOPIC, llm, mode="json").target == "activity"
    assert '"required"' in llm.calls[0]["messages"][-1]["content"]        # the schema is in the prompt


def test_scripted_teacher_is_seeded_and_grounded_in_the_catalog():
    from synthsci.topics import ML
    topics = [Topic(id=f"t{i}", area=a, name=ML.areas[a].themes[i % len(ML.areas[a].themes)])
              for i, a in enumerate(["tabular", "graphs", "vision", "time-series forecasting"] * 5)]
    a = [propose(t, ScriptedLLM(scripted_proposals(0))) for t in topics]
    assert a == [propose(t, ScriptedLLM(scripted_proposals(0))) for t in topics]
    assert a != [propose(t, ScriptedLLM(scripted_proposals(1))) for t in topics]
    assert len({p.dataset_id for p in a if isinstance(p, Proposal)}) >= 5


def test_a_topic_no_dataset_fits_is_rejected_not_forced_onto_one():
    "The quickstart once turned 'offline policy evaluation from logged decisions' into a forecast of sunspots."
    from synthsci.catalog import topic_fit, CATALOG
    llm = ScriptedLLM(scripted_proposals(0))
    r = propose(Topic(id="t-ope", area="games and reinforcement learning", name="Offline policy evaluation from logged decisions with ensembles of trees"), llm)
    assert isinstance(r, Rejection) and r.kind == "no_fitting_dataset" and llm.calls == []
    p = propose(Topic(id="t-sun", area="time-series forecasting", name="Solar activity forecasting with autoregressive models"), llm)
    assert p.dataset_id == "statsmodels/sunspots" and topic_fit(p.topic, CATALOG[p.dataset_id]) > 0
    llm = ScriptedLLM(["no JSON", "still none"], name="anthropic:claude")     # an LLM teacher is not gated by word matching (its reviewer judges)
    assert propose(Topic(id="t-ope", area="games and reinforcement learning", name="Offline policy evaluation"), llm).kind == "malformed"


def test_stage_records_rejections_and_does_not_retry_them(tmp_path):
    cfg = load_config("configs/quickstart.yaml", [f"runs_dir={tmp_path}", "teacher.cache='off'", "stages.topics.n_topics=6"])
    run_topics(cfg)
    run = Run(cfg.run_id, tmp_path)
    topics = run.read("01_topics", Topic)
    # a teacher that never answers well: every unit ends in a recorded rejection
    import synthsci.proposals as P
    orig = P.scripted_proposals
    P.scripted_proposals = lambda seed: (lambda m, **k: "I would rather not.")
    try: run_proposals(cfg)
    finally: P.scripted_proposals = orig
    rej = read_rejections(run, "02_proposals")
    assert len(rej) == len(topics) and {r.parent_id for r in rej} == {t.id for t in topics}
    m = run.manifest["stages"]["02_proposals"]
    assert (m["units_done"], m["calls"], m["rejected"], m["status"]) == (6, 12, 6, "complete")
    run_proposals(cfg)                                                     # nothing is asked again
    assert Run(cfg.run_id, tmp_path).manifest["stages"]["02_proposals"]["calls"] == 12


def test_a_taken_task_is_re_proposed_on_the_next_fitting_dataset_and_repeated_only_when_none_is_left():
    "The scripted teacher, told which (dataset, target, metric) the run already has, takes the next fitting one; none left: it repeats itself."
    from synthsci.catalog import entry_targets, fitting_datasets
    from synthsci.grounding import GroundingOptions, repropose, task_key
    from synthsci.proposals import make_proposal
    from synthsci.topics import ML
    topic = Topic(id="topic-macro", area="time-series forecasting", name="Forecasting macroeconomic indicators with autoregressive models")
    fits = [(e.id, t) for e in fitting_datasets(topic.name, ML.areas[topic.area].task_kinds) for t in entry_targets(e)]
    assert fits[:2] == [("statsmodels/macrodata", "realgdp"), ("statsmodels/macrodata", "realcons")] and len(fits) >= 4
    p = make_proposal(topic, {"dataset_id": "statsmodels/macrodata", "target": "realgdp", "metric": "mae", "direction": "min",
                              "task_kind": "time-series-forecasting", "baseline_idea": "a seasonal naive forecast", "resources": {"gpu": False, "cpu_minutes": 2}})
    used = {("statsmodels/macrodata", "realgdp", "mae"): "proposal-other"}
    llm = ScriptedLLM(scripted_proposals(0))
    new, card, why = repropose(p, p.id, topic, used, llm, GroundingOptions())
    assert (new.dataset_id, new.target, why) == ("statsmodels/macrodata", "realcons", "") and card.parent_id == new.id and new.parent_id == p.id
    prompt = llm.calls[0]["messages"][-1]["content"]
    assert "already in this run" in prompt and "- statsmodels/macrodata, realgdp, mae" in prompt
    used |= {("statsmodels/macrodata", "realcons", "mae"): "proposal-2"}
    new, card, why = repropose(p, p.id, topic, used, llm, GroundingOptions())
    assert (new.dataset_id, new.target) == fits[2]                                # the next one not yet used
    everything = {(d, t, "mae"): "proposal-x" for d, t in fits}
    new, card, why = repropose(p, p.id, topic, everything, ScriptedLLM(scripted_proposals(0)), GroundingOptions())
    assert new is None and card is None and "no other fitting dataset was left" in why and "statsmodels/macrodata, realgdp, mae" in why
