"""Task generation: MLGym-format folders from grounded proposals, hidden labels kept out of the workspace, bad teacher
answers and unknown datasets rejected with their reason while the stage goes on; the reference solution kept from the agent,
small held-out splits re-split or rejected, and one task per dataset, target and metric."""
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from synthsci.aci import load_task, prepare_workspace, task_yaml
from synthsci.cards import catalog_card
from synthsci.catalog import CATALOG
from synthsci.core import DatasetCard, Proposal, Task, load_config, Run, write_jsonl
from synthsci.llm import ScriptedLLM
from synthsci.proposals import METRICS, read_rejections
from synthsci.taskgen import TaskgenOptions, code_files, generate_task, run_taskgen, split_task_data, teacher_file
from synthsci.templates import BASELINES, evaluate_code, files_answer, parse_files, scripted_taskgen, task_files
from synthsci.validate import label_leaks


def proposal(name, pid=None, **kw):
    dataset_id = name
    e = CATALOG[dataset_id]
    metric, direction, idea = METRICS[e.task_kind]
    d = dict(id=pid or f"proposal-{dataset_id.replace('/', '-')}", parent_id="topic-x", topic=f"A study of {e.title}", dataset_id=dataset_id,
             target=e.target, metric=metric, direction=direction, task_kind=e.task_kind, baseline_idea=idea, resources={"cpu_minutes": 2})
    return Proposal(**{**d, **kw})


def test_a_generated_task_is_an_mlgym_task_the_agent_can_load(tmp_path):
    t = generate_task(proposal("sklearn/wine"), catalog_card("sklearn/wine"), ScriptedLLM(scripted_taskgen(p_bug=0)), tmp_path)
    assert isinstance(t, Task) and t == load_task(t.path)
    d = task_yaml(t.path)
    for k in ("id", "name", "description", "task_entrypoint", "training_timeout", "starter_code", "baseline_paths", "baseline_scores",
              "evaluation_paths", "evaluation_read_only", "sample_submission", "secret_files", "dataset_configs"):
        assert k in d, k
    assert d["secret_files"] == ["hidden", "reference"] and "hidden" not in d["starter_code"] and "reference.py" not in d["starter_code"]
    assert d["reference_paths"] == ["reference/reference.py"] and (Path(t.path) / "reference/reference.py").is_file()
    folder = Path(t.path)
    assert yaml.safe_load((folder / "dataset.yaml").read_text())["is_local"] is True
    train, test = pd.read_csv(folder / "data/train.csv"), pd.read_csv(folder / "data/test.csv")
    val, tst = pd.read_csv(folder / "hidden/validation.csv"), pd.read_csv(folder / "hidden/test.csv")
    assert "cultivar" in train.columns and "cultivar" not in test.columns
    assert sorted(test["id"]) == sorted(list(val["id"]) + list(tst["id"]))      # data/test.csv: features of both hidden splits
    assert not set(val["id"]) & set(tst["id"]) and not set(train["id"]) & set(test["id"])
    assert len(train) + len(test) == 178
    ws = prepare_workspace(t, tmp_path / "ws")
    assert not (ws / "hidden").exists() and label_leaks(ws, folder / "hidden") == []
    assert not list(ws.rglob("reference*")) and "Reference" not in "".join(p.read_text() for p in ws.glob("*.py"))   # the agent never sees the reference
    assert min(len(val), len(tst)) >= 30                                      # re-split: 18 + 18 held-out rows were too few for a stable metric


@pytest.mark.parametrize("kind", sorted(BASELINES))
def test_every_kind_of_task_gets_data_and_code(tmp_path, kind):
    dataset_id = next(i for i, e in CATALOG.items() if e.task_kind == kind)
    t = generate_task(proposal(dataset_id), catalog_card(dataset_id), ScriptedLLM(scripted_taskgen(p_bug=0)), tmp_path,
                      TaskgenOptions(min_eval_rows=0))               # karate, the one node-classification dataset, is too small for 30 rows
    assert isinstance(t, Task), t
    files = {n: teacher_file(t.path, n).read_text() for n in ("baseline.py", "evaluate.py", "reference.py")}
    for code in files.values(): compile(code, "x.py", "exec")
    assert f'"{t.metric}"' in files["evaluate.py"]
    spec = json.loads((Path(t.path) / "taskgen.json").read_text())["spec"]
    assert files["evaluate.py"] == evaluate_code(spec["target"], t.metric)      # the one evaluator template, the suite's too


def test_forecasting_keeps_time_order_and_hides_the_future(tmp_path):
    td = split_task_data(CATALOG["statsmodels/co2"].load(), "co2", "time-series-forecasting", "mae")
    assert td.train["t"].max() < td.validation_labels["id"].min() < td.test_labels["id"].min()
    assert "co2" not in td.test.columns and set(td.test.columns) <= {"id", "t", "date"}


def test_the_teacher_sees_the_data_layout_and_the_contract():
    llm = ScriptedLLM(scripted_taskgen(p_bug=0))
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        generate_task(proposal("sklearn/iris"), catalog_card("sklearn/iris"), llm, d)
    prompt = llm.calls[0]["messages"][-1]["content"]
    for s in ("data/train.csv", "SYNTHSCI_HIDDEN", "SYNTHSCI_SPLIT", "species", "accuracy", "File: <name>"):
        assert s in prompt, s
    assert "hidden/validation.csv" in prompt and "id,species" in prompt


def test_answer_parsing_takes_only_top_level_code_files():
    text = files_answer({"baseline.py": "a = 1", "evaluate.py": "b = 2", "description.md": "# T"})
    text += "\nFile: data/train.csv\n```\nid,y\n1,2\n```\nFile: task.yaml\n```yaml\nid: x\n```\n"
    files, missing = code_files(text)
    assert sorted(files) == ["baseline.py", "description.md", "evaluate.py"] and missing == ["reference.py"]
    assert code_files("File: baseline.py\n```python\nx=1\n```")[1] == ["evaluate.py", "reference.py"]
    assert parse_files('{"files": {"baseline.py": "x", "evaluate.py": "y"}}') == {"baseline.py": "x", "evaluate.py": "y"}


def test_malformed_teacher_output_is_repaired_once_then_rejected(tmp_path):
    good = files_answer(task_files({"kind": "tabular-classification", "target": "species", "metric": "accuracy"}))
    llm = ScriptedLLM(["Here you go: ```python\nprint('no file names')\n```", good])
    t = generate_task(proposal("sklearn/iris"), catalog_card("sklearn/iris"), llm, tmp_path)
    assert isinstance(t, Task) and len(llm.calls) == 2
    assert "missing baseline.py and evaluate.py and reference.py" in llm.calls[1]["messages"][-1]["content"]
    r = generate_task(proposal("sklearn/iris", pid="p2"), catalog_card("sklearn/iris"), ScriptedLLM(["nothing", "{not json"]), tmp_path)
    assert (r.stage, r.kind) == ("taskgen", "malformed") and r.answer == "{not json"
    assert sorted(p.name for p in tmp_path.iterdir()) == [t.id]           # no folder for the rejected task, no temp left


def test_unknown_dataset_and_missing_target_are_rejected(tmp_path):
    llm = ScriptedLLM(scripted_taskgen(p_bug=0))
    r = generate_task(proposal("sklearn/iris"), DatasetCard(id="c", dataset_id="uci/iris-v2"), llm, tmp_path)
    assert r.kind == "unknown_dataset" and "uci/iris-v2" in r.reason
    r = generate_task(proposal("sklearn/iris", target="petal_colour"), catalog_card("sklearn/iris"), llm, tmp_path)
    assert r.kind == "bad_data" and "petal_colour" in r.reason
    assert llm.calls == []                                               # the teacher is not asked about data we cannot use


def _grounded_run(tmp_path, ids):
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=t", "teacher.spec=scripted", "teacher.cache=off", "stages={taskgen: {p_bug: 0}}"])
    run = Run("t", tmp_path)
    for i, dataset_id in enumerate(ids):
        p = proposal(dataset_id if dataset_id in CATALOG else "sklearn/iris", pid=f"proposal-{i}", dataset_id=dataset_id, parent_id=f"topic-{i}")
        write_jsonl([p], run.unit_path("02_proposals", p.id))
        card = catalog_card(dataset_id) if dataset_id in CATALOG else DatasetCard(id=f"card-{i}", dataset_id=dataset_id)
        card.parent_id = p.id
        write_jsonl([card], run.unit_path("03_grounded", p.id))
    return cfg, run


def test_the_stage_rejects_bad_units_with_their_reason_and_goes_on(tmp_path, monkeypatch):
    cfg, run = _grounded_run(tmp_path, ["sklearn/iris", "uci/does-not-exist", "statsmodels/co2", "sklearn/wine"])
    import synthsci.taskgen as tg
    real = scripted_taskgen(p_bug=0)
    def teacher(messages, **params):   # malformed for the wine task only
        return "I would rather not." if "sklearn/wine" in messages[1]["content"] else real(messages, **params)
    monkeypatch.setattr(tg, "scripted_taskgen", lambda *a, **k: teacher)
    out = run_taskgen(cfg)
    tasks = run.read("04_tasks", Task)
    assert sorted(t.dataset_id for t in tasks) == ["sklearn/iris", "statsmodels/co2"]
    assert sorted(r.kind for r in read_rejections(run, "04_tasks")) == ["malformed", "unknown_dataset"]
    m = run.manifest["stages"]["04_tasks"]
    assert (m["units_done"], m["coded"], m["rejected"], m["status"]) == (4, 2, 2, "complete")
    before = {t.id: (Path(t.path) / "baseline.py").stat().st_mtime_ns for t in tasks}
    run_taskgen(cfg)                                                     # resume: nothing is written again
    assert {t.id: (Path(t.path) / "baseline.py").stat().st_mtime_ns for t in run.read("04_tasks", Task)} == before


def test_a_held_out_part_too_small_is_re_split_or_rejected(tmp_path):
    td = split_task_data(CATALOG["statsmodels/engel"].load(), "foodexp", "tabular-regression", "rmse", min_eval_rows=30)
    assert (len(td.validation_labels), len(td.test_labels), len(td.train)) == (30, 30, 175)   # 235 rows: 24 + 23 held out before
    t = generate_task(proposal("sklearn/linnerud"), catalog_card("sklearn/linnerud"), ScriptedLLM([]), tmp_path)   # 20 rows: cannot
    assert (t.stage, t.kind) == ("taskgen", "too_few_rows") and "2 validation and 2 test rows" in t.reason
    old = generate_task(proposal("sklearn/linnerud"), catalog_card("sklearn/linnerud"), ScriptedLLM(scripted_taskgen(p_bug=0)), tmp_path,
                        TaskgenOptions(min_eval_rows=0))
    assert isinstance(old, Task)                                         # what the quickstart used to keep: 2 test rows


def test_two_proposals_for_the_same_dataset_target_and_metric_make_one_task(tmp_path):
    cfg, run = _grounded_run(tmp_path, ["sklearn/digits", "sklearn/digits", "statsmodels/co2"])
    run_taskgen(cfg)
    tasks, rejections = run.read("04_tasks", Task), read_rejections(run, "04_tasks")
    assert sorted(t.dataset_id for t in tasks) == ["sklearn/digits", "statsmodels/co2"]
    (r,) = rejections
    kept = next(t.id for t in tasks if t.dataset_id == "sklearn/digits")
    assert r.kind == "duplicate_task" and kept in r.reason and "(kept)" in r.reason and r.dataset_id == "sklearn/digits"


def test_options_out_of_range_are_one_line_errors(tmp_path):
    from synthsci.core import SynthsciError
    with pytest.raises(SynthsciError, match=r"^stages\.taskgen\.min_eval_rows must be >= 0, not -1$"): TaskgenOptions(min_eval_rows=-1)
    with pytest.raises(SynthsciError, match="unknown bug"): TaskgenOptions(bugs=["typo"])
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "stages={taskgen: {workers: 0}}"])
    with pytest.raises(SynthsciError, match=r"stages\.taskgen\.workers must be >= 1, not 0"): run_taskgen(cfg)


def test_a_duplicate_with_no_dataset_left_is_rejected_naming_what_it_collided_with(tmp_path):
    "Two solar-activity topics: only sunspots carries them, so the second cannot be re-proposed elsewhere and is rejected."
    from test_grounding import _colliding_run
    from synthsci.grounding import run_grounding, spread_records
    cfg, run = _colliding_run(tmp_path, ["Solar activity forecasting with autoregressive models", "Solar activity prediction with ensembles of simple forecasts"],
                              "statsmodels/sunspots", "SUNACTIVITY")
    run_grounding(cfg)
    assert [r["reason"][:38] for r in spread_records(run).values()] == ["no other fitting dataset was left (it "]
    run_taskgen(cfg)
    (t,), (r,) = run.read("04_tasks", Task), read_rejections(run, "04_tasks")
    from synthsci.core import make_id
    assert (t.dataset_id, t.id, r.kind, r.parent_id) == ("statsmodels/sunspots", make_id("task", "proposal-0"), "duplicate_task", "proposal-1")
    assert t.id in r.reason and "re-proposed once: no other fitting dataset was left" in r.reason


def test_the_series_reference_beats_its_baseline_beyond_noise(tmp_path):
    "GunPoint from the catalog: the time-series-classification reference (ROCKET kernels, extra trees, 1-NN, chosen by cross-validation) against the baseline."
    from synthsci.validate import ValidateOptions, check_task
    t = generate_task(proposal("sktime/GunPoint"), catalog_card("sktime/GunPoint"), ScriptedLLM(scripted_taskgen(p_bug=0)), tmp_path)
    s = check_task(t.path, ValidateOptions(timeout_s=120, eval_timeout_s=30, agent_check=False))["scores"]
    assert s["constant_test"] < s["test"] < s["reference"] and s["gain_reference"][0] > 0 and s["gain_baseline"][0] > 0, s
