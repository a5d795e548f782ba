"""Topics: near-duplicate removal, the Domain protocol, and the topics stage (quota per area, resume, no duplicates across areas)."""
import json
import pytest
from synthsci.core import Run, SynthsciError, Topic, load_config
from synthsci.topics import ML, Domain, TaxonomyDomain, Area, dedupe, is_near_duplicate, run_topics, sample_area, TopicsOptions, scripted_topics
from synthsci.llm import ScriptedLLM


def cfg_for(tmp_path, *extra):
    return load_config("configs/quickstart.yaml", [f"runs_dir={tmp_path}", "teacher.cache='off'", *extra])


@pytest.mark.parametrize("a,b", [("Human activity recognition from wearable sensors", "Recognizing human activities with wearable sensor data"),
                                 ("Forecasting atmospheric CO2", "Atmospheric CO2 forecasting"),
                                 ("Link prediction in co-occurrence networks", "Link prediction in co occurrence networks!")])
def test_paraphrases_are_near_duplicates(a, b):
    assert is_near_duplicate(a, b)


@pytest.mark.parametrize("a,b", [("Human activity recognition from wearable sensors", "Speaker recognition from vowel recordings"),
                                 ("Forecasting atmospheric CO2", "Forecasting river flow of the Nile")])
def test_distinct_topics_are_kept(a, b):
    assert not is_near_duplicate(a, b)
    assert dedupe([a, b]) == ([a, b], [])


def test_a_domain_is_data_not_a_fork():
    chem = TaxonomyDomain("chemistry", (Area("molecules", "molecular property prediction", ("tabular-regression",), ("solubility",)),), ("hub",))
    assert isinstance(chem, Domain) and isinstance(ML, Domain)
    topics, _, _ = sample_area(chem.areas["molecules"], 3, ScriptedLLM(scripted_topics(0)), TopicsOptions(), domain=chem.name)
    assert len(topics) == 3 and all(t.area == "molecules" for t in topics)


def test_stage_fills_every_area_without_duplicates(tmp_path):
    cfg = cfg_for(tmp_path, "stages.topics.n_topics=40")
    run_topics(cfg)
    run = Run(cfg.run_id, tmp_path)
    topics = run.read("01_topics", Topic)
    assert len(topics) == 40 and len({t.id for t in topics}) == 40
    assert {t.area for t in topics} == set(ML.areas)
    names = [t.name for t in topics]
    assert not [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if is_near_duplicate(a, b)]
    assert run.manifest["stages"]["01_topics"]["near_duplicates_removed"] > 0   # the scripted teacher repeats itself now and then


def test_resume_redoes_only_the_missing_area(tmp_path):
    cfg = cfg_for(tmp_path, "stages.topics.n_topics=16")
    out = run_topics(cfg)
    calls = Run(cfg.run_id, tmp_path).manifest["stages"]["01_topics"]["calls"]
    before = {p.name: p.read_text() for p in out.glob("*.jsonl")}
    (out / "area-graphs.jsonl").unlink()
    run_topics(cfg)
    after = {p.name: p.read_text() for p in out.glob("*.jsonl")}
    assert after == before                     # same seed, same topics
    m = Run(cfg.run_id, tmp_path).manifest["stages"]["01_topics"]
    assert 0 < m["calls"] - calls <= 1 + TopicsOptions().max_calls


def test_unknown_area_is_a_one_line_error(tmp_path):
    with pytest.raises(SynthsciError, match="unknown area"):
        run_topics(cfg_for(tmp_path, "stages.topics.areas=[chemistry]"))


def test_prompt_shows_earlier_topics_to_the_teacher():
    llm = ScriptedLLM(scripted_topics(0))
    sample_area(ML.areas["graphs"], 6, llm, TopicsOptions(batch_size=3))
    assert "- (none)" in llm.calls[0]["messages"][-1]["content"]
    first = json.loads(llm.calls[0]["messages"] and ScriptedLLM(scripted_topics(0)).complete(llm.calls[0]["messages"]).text)["topics"][0]["name"]
    assert f"- {first}" in llm.calls[1]["messages"][-1]["content"]


def test_a_teacher_that_never_answers_in_the_format_is_rejected_with_its_answers(tmp_path, monkeypatch):
    "A real, imperfect teacher (prose, cut-off JSON): every area ends rejected with the raw answers kept, the stage fails saying so, and the next stage knows it ran."
    import synthsci.topics as topics_mod
    from synthsci.core import read_rejections
    from synthsci.llm import Completion
    from synthsci.proposals import run_proposals
    calls = []
    def teacher(seed):
        def answer(messages, **params):
            calls.append((seed, messages[-1]["content"], params))
            return Completion(text='{"topics": [{"name": "Graph neural netw', finish_reason="length") if len(calls) % 2 else "Sure! Here are topics: GNNs."
        return answer
    monkeypatch.setattr(topics_mod, "scripted_topics", teacher)
    cfg = cfg_for(tmp_path, "run_id=weak", "stages.topics.n_topics=2", "stages.topics.areas=[graphs, audio]", "stages.topics.max_calls=2")
    with pytest.raises(SynthsciError, match=r"the topics stage ran \(complete\) but kept no topics: 2 of 2 units done, 0 failed, 2 rejected"):
        run_topics(cfg)
    rej = read_rejections(Run("weak", tmp_path), "01_topics")
    assert sorted(r.kind for r in rej) == ["malformed", "malformed"] and all("Sure! Here are topics" in r.answer for r in rej)
    assert any("cut off at the token limit" in r.answer for r in rej)
    assert len({c[1] for c in calls}) == len(calls)              # every retry was a different request
    assert "cut off at max_tokens" in calls[1][1] and all(c[2].get("seed") == cfg.seed for c in calls)
    with pytest.raises(SynthsciError, match="the topics stage ran .* but kept no topics"):
        run_proposals(cfg)                                       # not "run the topics stage first"
