"""The offline evaluation suite and the evaluate and aup stages: a seeded, held-out suite; students from the run's config
and its train stage; resume; range checks of the options; AUP from the evaluation records, computed without the agent,
the sandbox or a model library; one real SmolLM2 step. (The figures stage is tested in test_plots.py.)"""
import csv, hashlib, json, os, shutil, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
from synthsci.core import EvalResult, Run, SynthsciError, load_config, read_yaml, write_jsonl
from synthsci.catalog import CATALOG
from synthsci.aup import AUPResult, run_aup
from synthsci.evaluate import (EVAL_SUITE_DATASETS, eval_methods, EvalOptions, is_eval_suite_dataset, make_eval_suite, run_evaluate)
from synthsci.mlgym import AgentLimits, attempt, scripted_runner
from synthsci.templates import evaluate_code
from conftest import two_tasks

say = lambda cmd: f"DISCUSSION\nNext step.\n```\n{cmd}\n```"
SMALL = "{sklearn/breast_cancer: accuracy, statsmodels/fair: r2}"


def digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())).hexdigest()


def test_held_out_datasets_are_in_the_catalog_and_recognised_by_alias():
    assert set(EVAL_SUITE_DATASETS) <= set(CATALOG) and len(EVAL_SUITE_DATASETS) >= 3
    assert len({CATALOG[i].task_kind for i in EVAL_SUITE_DATASETS}) == 3
    assert is_eval_suite_dataset("wdbc") and is_eval_suite_dataset("fair affairs") and not is_eval_suite_dataset("iris")


def test_suite_is_seeded_hides_its_labels_and_records_a_true_baseline(tmp_path):
    a = make_eval_suite(tmp_path / "a", max_rows=300)
    b = make_eval_suite(tmp_path / "b", {"sklearn/breast_cancer": "accuracy"}, max_rows=300)
    c = make_eval_suite(tmp_path / "c", {"sklearn/breast_cancer": "accuracy"}, seed=1, max_rows=300)
    assert [t.id for t in a] == ["eval_breast_cancer", "eval_fair", "eval_italypowerdemand"]
    assert digest(Path(b[0].path)) == digest(Path(a[0].path))                           # same seed, same suite
    assert digest(Path(c[0].path)) != digest(Path(a[0].path))                           # another seed, another split
    for t in a:
        folder, target = Path(t.path), pd.read_csv(Path(t.path) / "sample_submission.csv").columns[1]
        starter = json.dumps(read_yaml(folder / "task.yaml", "task YAML")["starter_code"])
        assert "hidden" not in starter and target not in pd.read_csv(folder / "data/test.csv").columns
        hidden = pd.concat([pd.read_csv(folder / "hidden/validation.csv"), pd.read_csv(folder / "hidden/test.csv")])
        assert sorted(hidden.id) == sorted(pd.read_csv(folder / "data/test.csv").id)
        assert t.direction == "max" and t.metric in t.baseline_scores[0]
        assert (folder / "evaluate.py").read_text() == evaluate_code(target, t.metric)   # the template every task's evaluator comes from
    assert len(pd.read_csv(Path(a[2].path) / "data/train.csv").columns) == 26      # id, 24 steps, label
    work = tmp_path / "work"; shutil.copytree(a[0].path, work)                         # the recorded baseline is the real one
    subprocess.run([sys.executable, "baseline.py"], cwd=work, check=True, capture_output=True)
    out = subprocess.run([sys.executable, "evaluate.py", "--submission_file", "submission.csv"], cwd=work, check=True, capture_output=True,
                         text=True, env={**os.environ, "SYNTHSCI_SPLIT": "test", "SYNTHSCI_HIDDEN": str(work / "hidden")}).stdout
    assert json.loads(out) == a[0].baseline_scores[0] and 0.8 < a[0].baseline_scores[0]["accuracy"] < 1


def cfg_for(tmp_path, *over):
    return load_config(overrides=[f"runs_dir={tmp_path}", "run_id=r", "stages.evaluate.base=false", "stages.evaluate.finetuned=false",
                                  f"stages.evaluate.datasets={SMALL}", "stages.evaluate.max_rows=200", "stages.evaluate.max_steps=4", *over])


SCRIPTS = {"good": [say("python baseline.py"), say("validate"), say("submit")], "mute": ["I do not know."] * 3,
           "better": [say("python baseline.py"), say("validate"), say("submit")]}


def test_evaluate_stage_writes_records_tables_and_resumes(tmp_path):
    cfg = cfg_for(tmp_path, "stages.evaluate.methods={good: x, mute: y}", "stages.evaluate.k=2")
    runner = scripted_runner(lambda u: SCRIPTS[Path(u.folder).name])
    out = run_evaluate(cfg, runner=runner, progress=False)
    rs = {(r.task_id, r.method): r for r in Run("r", tmp_path).read(out.name, EvalResult)}
    assert sorted(rs) == sorted((t, m) for t in ("eval_breast_cancer", "eval_fair") for m in ("baseline", "good", "mute"))
    for t in ("eval_breast_cancer", "eval_fair"):
        assert rs[(t, "good")].best_submission == rs[(t, "baseline")].best_submission and rs[(t, "good")].runs == 2
        assert rs[(t, "mute")].best_attempt is None and rs[(t, "mute")].exit_statuses == ["submission_not_found (exit_format)"] * 2
    table = list(csv.DictReader((out / "best_submission.csv").open()))
    assert [r["task"] for r in table] == ["eval_breast_cancer", "eval_fair"] and all(r["mute"] == "" for r in table)
    assert json.loads((out / "tasks.json").read_text())["directions"] == {"eval_breast_cancer": "max", "eval_fair": "max"}
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jsonl")}
    calls = []
    run_evaluate(cfg, runner=lambda u: calls.append(u), progress=False)       # everything done: nothing runs again
    assert calls == [] and {p.name: p.stat().st_mtime_ns for p in out.glob("*.jsonl")} == before


def test_students_come_from_the_config_and_the_train_stage(tmp_path, capsys):
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=r", "student.spec=local:some/base"])
    run = Run("r", tmp_path)
    assert eval_methods(cfg, EvalOptions(), run) == {"base": "local:some/base"}
    assert "the fine-tuned student is not evaluated" in capsys.readouterr().err
    ckpt = tmp_path / "r/09_train/student"; ckpt.mkdir(parents=True)
    (tmp_path / "r/09_train/student.jsonl").write_text(json.dumps({"id": "student", "spec": f"local:{ckpt}"}) + "\n")
    assert eval_methods(cfg, EvalOptions(methods={"expert": "expert"}), run) == {"base": "local:some/base", "finetuned": f"local:{ckpt}", "expert": "expert"}
    with pytest.raises(SynthsciError, match="'base' is taken"): eval_methods(cfg, EvalOptions(methods={"base": "x"}), run)
    with pytest.raises(SynthsciError, match="stages.evaluate.k"): run_evaluate(load_config(overrides=[f"runs_dir={tmp_path}", "stages.evaluate.k=two"]))
    # the checkpoints kept before the last step, as methods of their own (the learning curve); the last step is the student itself
    for n in (12, 24, 36):
        (tmp_path / f"r/09_train/checkpoints/checkpoint-{n}").mkdir(parents=True)
        (tmp_path / f"r/09_train/checkpoints/checkpoint-{n}/config.json").write_text("{}")
    (tmp_path / "r/09_train/checkpoints/checkpoint-48").mkdir()      # no weights (a half-written save): left out
    (ckpt / "meta.json").write_text(json.dumps({"steps": 36}))
    assert list(eval_methods(cfg, EvalOptions(checkpoints=True), run).items()) == [
        ("base", "local:some/base"), ("finetuned", f"local:{ckpt}"),
        ("finetuned@12", f"local:{tmp_path}/r/09_train/checkpoints/checkpoint-12"), ("finetuned@24", f"local:{tmp_path}/r/09_train/checkpoints/checkpoint-24")]
    assert "finetuned@12" not in eval_methods(cfg, EvalOptions(), run)


def test_aup_stage_from_evaluation_records_and_new_results_replace_the_old_aup(tmp_path):
    cfg = cfg_for(tmp_path)
    with pytest.raises(SynthsciError, match="the evaluate stage has not run; run it first"): run_aup(cfg, progress=False)
    run = Run("r", tmp_path)
    e = lambda t, m, v: EvalResult(id=f"{m}-{t}", task_id=t, method=m, best_attempt=v, best_submission=v)
    rows = [e("a", "baseline", 0.5), e("a", "finetuned", 0.8), e("a", "base", None), e("b", "baseline", 0.7), e("b", "finetuned", 0.7), e("b", "base", 0.9)]
    for r in rows: write_jsonl([r], run.unit_path("10_eval", r.id))
    out = run_aup(cfg, progress=False)
    got = {r.method: r for r in run.read(out.name, AUPResult)}
    # a: ratios finetuned 1, baseline 1.6, base (missing) 1.05 * 1.6; b: base 1, baseline and finetuned 0.9 / 0.7
    assert got["finetuned"].best_aup > got["base"].best_aup > got["baseline"].best_aup
    assert got["base"].methods == ["base", "baseline", "finetuned"] and got["base"].tasks == ["a", "b"]
    assert (out / "aup.csv").read_text().splitlines()[0] == "method,best_aup,last_aup"
    write_jsonl([e("a", "base", 0.95)], run.unit_path("10_eval", "base-a"))     # the base student improves on task a
    run_aup(cfg, progress=False)
    again = {r.method: r for r in run.read(out.name, AUPResult)}
    assert len(list(out.glob("*.jsonl"))) == 1 and again["base"].best_aup > got["base"].best_aup


def test_aup_imports_neither_the_agent_nor_the_sandbox_nor_a_model_library():
    """Computing AUP from score tables or a run's records needs the standard library and numpy only."""
    code = ("import sys, synthsci.aup; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'transformers', 'trl', 'datasets', 'pandas', 'matplotlib', 'anthropic', 'openai') or "
            "m in ('synthsci.agent', 'synthsci.sandbox', 'synthsci.aci', 'synthsci.seal', 'synthsci.llm', 'synthsci.evaluate', 'synthsci.mlgym')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]", r.stdout


@pytest.mark.parametrize("field,value,rule", [("k", -1, ">= 1"), ("workers", -2, ">= 1"), ("max_steps", -8, ">= 1"),
                                              ("max_rows", -100, ">= 10"), ("wall_time_s", -1.0, ">= 1")])
def test_negative_counts_and_limits_are_refused_naming_the_field(tmp_path, field, value, rule):
    with pytest.raises(SynthsciError, match=f"^{field} must be {rule}, not {value}$"): EvalOptions(**{field: value})
    with pytest.raises(SynthsciError, match=f"^stages.evaluate.{field} must be {rule}, not {value}$"):
        run_evaluate(cfg_for(tmp_path, f"stages.evaluate.{field}={value}"))
    assert not (tmp_path / "r" / "10_eval" / "suite").exists()      # refused before any suite task was built


def test_one_real_smollm2_evaluation_step(tmp_path):
    """The base student in a worker process, as the quickstart runs it: one step of at most 8 new tokens per answer."""
    task = make_eval_suite(tmp_path / "suite", {"sklearn/breast_cancer": "accuracy"}, max_rows=200)[0]
    r = attempt(task, "local", 1, tmp_path / "runs", "base", limits=AgentLimits(max_steps=1, max_tokens=8))
    traj = json.loads((tmp_path / "runs/traj/eval_breast_cancer-s0/eval_breast_cancer-s0.traj").read_text())
    stats = traj["info"]["model_stats"]
    assert traj["info"]["provenance"]["model"].startswith("local:") and stats["api_calls"] >= 1 and stats["tokens_received"] > 0
    assert r.runs == 1 and r.exit_statuses[0].split(" (")[0] in ("submitted", "autosubmission", "submission_not_found", "evaluation_format_error")


def test_suite_builds_from_a_relative_folder(tmp_path, monkeypatch):
    from synthsci.evaluate import make_eval_suite
    monkeypatch.chdir(tmp_path)
    (t,) = make_eval_suite("data/runs/r/10_eval/suite", {"sklearn/breast_cancer": "accuracy"}, max_rows=200)
    assert Path(t.path).is_absolute() and 0.8 < t.baseline_scores[0]["accuracy"] <= 1


HELDOUT_IN_A_PROCESS = """
import json, sys
from synthsci.core import Run, Task, heldout_split
ts = [Task(id=f"t{i}", name="t", path=".", metric="rmse", dataset_id=f"ds{i % 9}") for i in range(30)]
print(json.dumps(heldout_split(Run("r", sys.argv[1]), ts, 0.3, 7)))
"""


def test_heldout_split_is_by_dataset_deterministic_and_kept_in_a_file(tmp_path):
    "Fresh interpreters with different string-hash seeds make the same split; no dataset is on both sides; the file rules a resume."
    from synthsci.core import Task, heldout_split, heldout_tasks, training_tasks
    outs = []
    for i, seed in enumerate(("1", "2", "3")):
        r = subprocess.run([sys.executable, "-c", HELDOUT_IN_A_PROCESS, str(tmp_path / f"p{i}")], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONHASHSEED": seed})
        assert r.returncode == 0, r.stderr
        outs.append(json.loads(r.stdout))
    d = outs[0]
    assert all(o == d for o in outs) and len(d["datasets"]) == 3 and not set(d["datasets"]) & set(d["train_datasets"])   # 30 % of 9 datasets
    assert not set(d["tasks"]) & set(d["train_tasks"]) and len(d["tasks"]) + len(d["train_tasks"]) == 30
    assert json.loads((tmp_path / "p0" / "r" / "heldout.json").read_text()) == d
    # the stages' view: rollouts attempt the training tasks, evaluation the held-out ones; a run made with another fraction is refused
    ts = [Task(id=f"t{i}", name="t", path=".", metric="rmse", dataset_id=f"ds{i % 4}") for i in range(8)]
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=s", "stages.evaluate.heldout_fraction=0.25"])
    run = Run("s", tmp_path)
    held, train = heldout_tasks(run, cfg, ts), training_tasks(run, cfg, ts)
    assert len(held) == 2 and len({t.dataset_id for t in held}) == 1 and not {t.dataset_id for t in held} & {t.dataset_id for t in train}
    assert sorted(t.id for t in held + train) == sorted(t.id for t in ts)
    with pytest.raises(SynthsciError, match="holds the split made with heldout_fraction=0.25"):
        training_tasks(run, load_config(overrides=[f"runs_dir={tmp_path}", "run_id=s", "stages.evaluate.heldout_fraction=0.5"]), ts)
    with pytest.raises(SynthsciError, match="at least 0 and below 1"):
        heldout_split(Run("t", tmp_path), ts, 1.0)


def test_evaluate_stage_runs_the_students_on_the_held_out_tasks_k_times(tmp_path):
    "Hand-written fixture tasks (wine, diabetes) as the run's tasks: one dataset held out, evaluated k=2 times; the other is the rollouts'."
    from synthsci.core import heldout_tasks, training_tasks
    from synthsci.aci import load_task
    tasks_dir = two_tasks(tmp_path)
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=h", f"stages.rollouts.tasks_dir={tasks_dir}", "stages.evaluate.heldout=true",
                                 "stages.evaluate.heldout_fraction=0.5", "stages.evaluate.base=false", "stages.evaluate.finetuned=false",
                                 "stages.evaluate.methods={mute: x}", "stages.evaluate.k=2", "stages.evaluate.max_steps=2"])
    units = []
    out = run_evaluate(cfg, runner=lambda u: units.append(u) or scripted_runner(lambda u: ["no command"] * 9)(u), progress=False)
    held = json.loads((tmp_path / "h" / "heldout.json").read_text())
    assert len(held["tasks"]) == 1 and len(held["train_tasks"]) == 1
    assert {u.task.id for u in units} == set(held["tasks"]) and len(units) == 2
    assert units[0].options.agent_config().max_observation_chars == 2000 and units[0].options.agent_config().keep_observations is None  # the SFT data's view
    all_tasks = [load_task(p) for p in sorted(tasks_dir.iterdir())]
    assert [t.id for t in training_tasks(Run("h", tmp_path), cfg, all_tasks)] == held["train_tasks"]
    assert json.loads((out / "tasks.json").read_text())["student_view"] == {"keep_observations": None, "max_observation_chars": 2000}
    with pytest.raises(SynthsciError, match="holds no task out"):
        run_evaluate(load_config(overrides=[f"runs_dir={tmp_path}", "run_id=none", f"stages.rollouts.tasks_dir={tasks_dir}", "stages.evaluate.heldout=true",
                                            "stages.evaluate.methods={mute: x}"]), runner=lambda u: None, progress=False)
