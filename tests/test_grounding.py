"""Grounding: the Hub client on recorded Hub responses (the real huggingface_hub code path, served on 127.0.0.1), the
contamination guard, the second chance with the nearest real datasets, and the funnel of the offline quickstart."""
import json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote
import pytest
import huggingface_hub.constants
from synthsci.core import DatasetCard, Proposal, Run, SynthsciError, Topic, load_config
from synthsci.llm import ScriptedLLM
from synthsci.grounding import (GroundingOptions, HubClient, HubOffline, DatasetNotFound, check_dataset, eval_dataset, ground, grounded_proposals,
                                grounding_funnel, run_grounding)
from synthsci.proposals import read_rejections, run_proposals, scripted_proposals
from synthsci.topics import run_topics

HUB = Path(__file__).parent / "fixtures" / "hub"
SHA = "7f4bb2a28e8b0e1b2f7c9a4b1c1b4de8a2f5f0d1"


class RecordedHub:
    "Serves tests/fixtures/hub/*.json by route (path and query) and records every request."
    def __init__(self):
        routes, self.requests = {}, []
        for p in HUB.glob("*.json"):
            r = json.loads(p.read_text()); routes[r["route"]] = r
        hub = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                path = unquote(self.path)
                hub.requests.append(path)
                r = routes.get(path.replace("?blobs=true", ""), {"status": 500, "headers": {}, "body": {"error": f"no recording for {path}"}})
                body = json.dumps(r["body"]).encode()
                self.send_response(r["status"])
                for k, v in r["headers"].items(): self.send_header(k, v)
                self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)

            def log_message(self, *a): pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def hub(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    h = RecordedHub()
    yield h
    h.httpd.shutdown()


def client(h): return HubClient(endpoint=h.url, viewer=h.url, timeout=5)


def prop(ds, target, **kw):
    return Proposal(id="proposal-x", parent_id="topic-x", topic="t", dataset_id=ds, target=target, metric="accuracy", **kw)


def test_existing_dataset_is_pinned_with_features_and_rows(hub):
    c = client(hub).card("scikit-learn/iris")
    assert (c.source, c.revision, c.gated, c.license, c.splits) == ("hub", SHA, False, "cc0-1.0", {"train": 150})
    assert c.features["Species"] == "Value('string')" and c.sample[0]["Species"] == "Iris-setosa"
    assert hub.requests[0] == "/api/datasets/scikit-learn/iris?blobs=true"   # files_metadata: sizes of the files


def test_gated_dataset_is_marked_and_refused_by_default(hub):
    c = client(hub).card("mozilla-foundation/common_voice_11_0")
    assert c.gated and c.sample == [] and c.revision == "3f27acf10f303eac5b6fbbbe02495aeddb46ecb8"
    r = check_dataset(prop("mozilla-foundation/common_voice_11_0", "sentence"), GroundingOptions(sources=["hub"]), client(hub))
    assert r.kind == "gated" and "allow_gated" in r.reason


@pytest.mark.parametrize("repo", ["uci/human-activity-recognition-v2", "nobody/no-such-dataset"])   # 404, and the anonymous 401
def test_missing_dataset(hub, repo):
    with pytest.raises(DatasetNotFound, match="no dataset"):
        client(hub).card(repo)
    r = check_dataset(prop(repo, "activity"), GroundingOptions(sources=["hub", "catalog"]), client(hub))
    assert r.kind == "unknown_dataset" and "the Hugging Face Hub or the local catalog" in r.reason and r.suggestions


def test_network_failure_says_offline_and_is_not_a_rejection(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    dead = HubClient(endpoint="http://127.0.0.1:9", viewer="http://127.0.0.1:9", timeout=2)
    with pytest.raises(HubOffline, match="offline"):
        dead.card("scikit-learn/iris")
    with pytest.raises(HubOffline):                    # the unit fails (and is retried later), the proposal is not rejected
        check_dataset(prop("scikit-learn/iris", "Species"), GroundingOptions(sources=["hub"]), dead)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubOffline, match="offline"):
        HubClient().card("scikit-learn/iris")


def test_catalog_first_then_hub(hub):
    opts = GroundingOptions(sources=["catalog", "hub"])
    assert check_dataset(prop("sklearn/iris", "species"), opts, client(hub)).source == "catalog"
    c = check_dataset(prop("scikit-learn/iris", "Species"), opts, client(hub))
    assert (c.source, c.parent_id) == ("hub", "proposal-x")
    assert check_dataset(prop("scikit-learn/iris", "species"), opts, client(hub)).kind == "unknown_target"


@pytest.mark.parametrize("name,config,task", [("uoft-cs/cifar10", None, "CIFAR-10"), ("fashion_mnist", None, "Fashion-MNIST"),
                                              ("nyu-mll/glue", "mnli", "MNLI"), ("SetFit/mnli", None, "MNLI"), ("HuggingFaceFW/fineweb", None, "FineWeb"),
                                              ("yerevann/coco-karpathy", None, None), ("detection-datasets/coco", None, "MS-COCO"),
                                              ("house_prices", None, "House Price (Ames)"), ("nyu-mll/glue", "sst2", None), ("ylecun/mnist", None, None)])
def test_contamination_guard(name, config, task):
    assert eval_dataset(name, config) == task


def test_guard_can_be_lifted():
    p = prop("uoft-cs/cifar10", "label", task_kind="image-classification")
    assert check_dataset(p, GroundingOptions()).kind == "contaminated"
    assert check_dataset(p, GroundingOptions(allow_eval_datasets=True)).kind == "unknown_dataset"   # not refused; just not in the catalog


def test_second_chance_shows_the_nearest_real_datasets_once():
    topic = Topic(id="topic-x", area="time-series forecasting", name="Forecasting solar activity")
    llm = ScriptedLLM(scripted_proposals(0))
    card, revised, rej = ground(prop("statsmodels/sunspot_numbers", "SUNACTIVITY"), llm, GroundingOptions(), topic=topic)
    assert [r.kind for r in rej] == ["unknown_dataset"] and rej[0].suggestions[0] == "statsmodels/sunspots"
    assert "- statsmodels/sunspots" in llm.calls[0]["messages"][-1]["content"]
    assert (card.dataset_id, card.parent_id, revised.parent_id) == ("statsmodels/sunspots", revised.id, "proposal-x")
    stubborn = ScriptedLLM([json.dumps({**{k: getattr(revised, k) for k in ("target", "metric", "direction", "task_kind", "baseline_idea", "resources")},
                                        "dataset_id": "statsmodels/sunspot_numbers"})])
    card, revised, rej = ground(prop("statsmodels/sunspot_numbers", "SUNACTIVITY"), stubborn, GroundingOptions(), topic=topic)
    assert card is None and [r.kind for r in rej] == ["unknown_dataset", "unknown_dataset"] and len(stubborn.calls) == 1
    assert "statsmodels/sunspot_numbers" in rej[1].answer                     # the second chance's answer is kept
    rambling = ScriptedLLM(["I think sunspots would be nice.", "Really, sunspots."])
    card, revised, rej = ground(prop("statsmodels/sunspot_numbers", "SUNACTIVITY"), rambling, GroundingOptions(), topic=topic)
    assert card is None and [r.kind for r in rej] == ["unknown_dataset", "malformed"] and rej[1].answer == "Really, sunspots."


def test_quickstart_funnel_exercises_every_path(tmp_path):
    cfg = load_config("configs/quickstart.yaml", [f"runs_dir={tmp_path}", "teacher.cache='off'"])
    run_topics(cfg); run_proposals(cfg); run_grounding(cfg)
    run = Run(cfg.run_id, tmp_path)
    f = grounding_funnel(run)
    n = cfg.stages["topics"]["n_topics"]
    assert f["topics"] == n and f["grounded"] + f["rejected"] == n
    assert f["rejections"].get("proposals:no_fitting_dataset", 0) >= 1                # a theme no dataset carries (games and RL)
    assert run.manifest["stages"]["02_proposals"]["calls"] > f["proposals"]          # a malformed answer was repaired
    assert "grounding:unknown_dataset" in f["rejections"] and f["grounded_after_retry"] >= 1   # (a contaminated pick: see the test above)
    pairs = grounded_proposals(run)
    assert len(pairs) == f["grounded"]
    for p, c in pairs:
        assert c.parent_id == p.id and p.target in c.features and c.splits["test"] > 0 and c.revision
    calls = run.manifest["stages"]["03_grounded"]["calls"]
    run_grounding(cfg)
    assert Run(cfg.run_id, tmp_path).manifest["stages"]["03_grounded"]["calls"] == calls


def test_bad_sources_is_a_one_line_error(tmp_path):
    cfg = load_config("configs/quickstart.yaml", [f"runs_dir={tmp_path}", "stages.grounding.sources=[kaggle]"])
    with pytest.raises(SynthsciError, match="must list 'catalog' and/or 'hub'"):
        run_grounding(cfg)


@pytest.mark.parametrize("name", ["sklearn/breast_cancer", "wdbc", "sktime/ItalyPowerDemand"])
def test_eval_suite_datasets_are_held_out_of_training(name):
    p = prop(name, "target", task_kind="tabular-classification")
    rej = check_dataset(p, GroundingOptions())
    assert rej.kind == "held_out" and "evaluation suite" in rej.reason
    assert not any(s in ("sklearn/breast_cancer", "statsmodels/fair", "sktime/ItalyPowerDemand") for s in rej.suggestions)


def _colliding_run(tmp_path, names, dataset_id="statsmodels/macrodata", target="realgdp"):
    "A run whose topics (forecasting, `names`) all proposed the same dataset, target and metric."
    from synthsci.core import write_jsonl
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=s", "teacher.spec=scripted", "teacher.cache=off", "stages={taskgen: {p_bug: 0}}"])
    run = Run("s", tmp_path)
    for i, name in enumerate(names):
        t = Topic(id=f"topic-{i}", area="time-series forecasting", name=name)
        p = Proposal(id=f"proposal-{i}", parent_id=t.id, topic=name, dataset_id=dataset_id, target=target, metric="mae", direction="min",
                     task_kind="time-series-forecasting", baseline_idea="a seasonal naive forecast", resources={"gpu": False, "cpu_minutes": 2})
        write_jsonl([t], run.unit_path("01_topics", t.id)); write_jsonl([p], run.unit_path("02_proposals", p.id))
    return cfg, run


def test_a_task_the_run_already_has_is_re_proposed_on_another_dataset_and_a_resumed_run_keeps_it(tmp_path):
    from synthsci.grounding import spread_records, task_key
    cfg, run = _colliding_run(tmp_path, ["Forecasting macroeconomic indicators with autoregressive models",
                                         "Forecasting US GDP with ensembles of simple forecasts", "Macroeconomic indicator forecasting with trends"])
    run_grounding(cfg)
    pairs = grounded_proposals(run)
    keys = [task_key(p, c) for p, c in pairs]
    assert len(pairs) == 3 and len(set(keys)) == 3, keys                                   # three distinct tasks, none dropped
    assert keys[0] == ("statsmodels/macrodata", "realgdp", "mae")                             # the first unit (by id) keeps its proposal
    s = spread_records(run)
    assert sorted(s) == ["proposal-1", "proposal-2"] and [r["collided_with"] for r in s.values()] == ["proposal-0"] * 2
    assert all(c.parent_id == p.id and p.parent_id == u for (p, c), u in zip(pairs[1:], ["proposal-1", "proposal-2"]))
    f = grounding_funnel(run)
    assert (f["grounded"], f["spread"], f["spread_none_left"]) == (3, 2, 0)
    calls = run.manifest["stages"]["03_grounded"]["calls"]
    assert calls >= 2                                                                       # the re-proposals are the stage's teacher calls
    run_grounding(cfg)                                                                      # resumed: the same tasks, nothing asked again
    assert grounded_proposals(Run("s", tmp_path)) == pairs and Run("s", tmp_path).manifest["stages"]["03_grounded"]["calls"] == calls
