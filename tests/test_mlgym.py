"""The MLGym adapter on a fake checkout written for the tests (tests/fixtures/mlgym_root): reading its YAMLs, skipping
what cannot run here with the reason, MLGym's entrypoint semantics (CSV, Python, Model), results.json, Best
Attempt@k / Best Submission@k, the command line, and one-line errors for bad input."""
import csv, json, shutil
from pathlib import Path
import pytest
from synthsci.core import SynthsciError, Task, Trajectory
from synthsci.aci import load_task
from synthsci.mlgym import (AgentLimits, best_at_k, build_task, evaluate_mlgym, evaluate_tasks, mlgym_main, mlgym_tasks, run_scores,
                            scripted_runner, skip_reason)

ROOT = Path(__file__).parent / "fixtures" / "mlgym_root"
OURS = Path(__file__).parent / "fixtures" / "tasks"
say = lambda cmd: f"DISCUSSION\nNext step.\n```\n{cmd}\n```"


def test_checkout_tasks_are_scored_or_skipped_with_their_reason(tmp_path, capsys):
    runner = scripted_runner(lambda u: [say("python baseline.py" if u.task.id == "tinyHouse" else "ls"), say("validate"), say("submit")])
    rep = evaluate_mlgym(ROOT, {"scripted": "scripted"}, tmp_path, k=2, gpu=False, runner=runner)
    tasks = rep["tasks"]
    assert {t: v["status"] for t, v in tasks.items()} == {"tinyBattle": "scored", "tinyHouse": "scored", "tinyMissing": "skipped", "tinyLM": "skipped"}
    assert tasks["tinyMissing"]["reason"].startswith("data missing: data/tinyMissing/data")
    assert tasks["tinyLM"]["reason"].startswith("needs a GPU")
    printed = capsys.readouterr().out
    assert "tinyMissing: skipped: data missing" in printed and "tinyLM: skipped: needs a GPU" in printed
    # the baseline's submission scores the baseline's score, on both runs
    assert tasks["tinyHouse"]["scripted"] == {"best_attempt": 0.9248, "best_submission": 0.9248, "exit_statuses": ["submitted", "submitted"]}
    assert tasks["tinyHouse"]["baseline"] == 0.9248 and tasks["tinyHouse"]["metric"] == "r2"
    # results.json per run, as MLGym writes it
    res = json.loads((tmp_path / "runs/scripted/traj/tinyHouse-s1/results.json").read_text())
    assert res == {"agent": [{"r2": 0.9248, "rmse": 1.5696}, {"r2": 0.9248, "rmse": 1.5696}], "baseline": {"r2": 0.9248, "rmse": 1.5696}}
    assert json.loads((tmp_path / "runs/scripted/traj/tinyHouse-s0/tinyHouse-s0.traj").read_text())["info"]["exit_status"] == "submitted"
    # the score tables hold the scored tasks only, in MLGym's shape; the report keeps the skipped ones
    rows = list(csv.reader((tmp_path / "best_attempt.csv").open()))
    assert rows == [["task", "baseline", "scripted"], ["tinyBattle", "0.7465", "0.7465"], ["tinyHouse", "0.9248", "0.9248"]]
    assert json.loads((tmp_path / "report.json").read_text())["tasks"]["tinyLM"]["status"] == "skipped"


def test_python_task_scores_the_workspace_strategy_and_a_broken_one_scores_nothing(tmp_path):
    battle = build_task(mlgym_tasks(ROOT, ["tinyBattle"])[0], tmp_path / "tasks")
    always0 = "cat > strategy.py <<'EOF'\ndef row_strategy(history):\n    return 0\nEOF"
    broken = "cat > strategy.py <<'EOF'\ndef row_strategy(history):\n    raise RuntimeError('oops')\nEOF"
    scripts = {"s0": [say("validate"), say(always0), say("validate"), say(broken), say("validate"), say(always0), say("submit")]}
    rep = evaluate_tasks([battle], {"edit": "x"}, tmp_path / "out", k=1, runner=scripted_runner(lambda u: scripts[u.id.split("-")[-1]]), progress=False)
    r = [x for x in rep["results"] if x.method == "edit"][0]
    assert [s["Score"] for s in r.scores[0]["score"]] == [0.7465, 2.0, 2.0]   # the broken strategy's validate scored nothing
    traj = json.loads((tmp_path / "out/runs/edit/traj/tinyBattle-s0/tinyBattle-s0.traj").read_text())
    assert "RuntimeError: oops" in traj["trajectory"][4]["observation"]
    assert (r.best_attempt, r.best_submission) == (2.0, 2.0)


def test_model_submission_task_passes_the_first_yaml_as_config_fname(tmp_path):
    root = tmp_path / "MLGym"
    shutil.copytree(ROOT, root)
    (root / "data/tinyModel").mkdir()
    (root / "data/tinyModel/evaluate.py").write_text(
        "import argparse, json, yaml\np = argparse.ArgumentParser(); p.add_argument('--config_fname', required=True)\n"
        "cfg = yaml.safe_load(open(p.parse_args().config_fname))\nprint(json.dumps({'Reward Mean': float(cfg['lr']) * 100}))\n")
    (root / "configs/tasks/tinyModel.yaml").write_text(
        "id: tinyModel\nname: Tiny RL\ndescription: Tune config.yaml.\ntask_entrypoint: ModelSubmissionTasks\ntraining_timeout: 60\n"
        "starter_code: [data/tinyModel/evaluate.py]\nbaseline_scores: [{Reward Mean: 1.0}]\nevaluation_paths: [evaluate.py]\n")
    runner = scripted_runner(lambda u: [say("validate"), say("printf 'lr: 0.05\\n' > b.yaml && printf 'lr: 0.5\\n' > a.yaml"), say("submit")])
    rep = evaluate_mlgym(root, {"m": "x"}, tmp_path / "out", ["tinyModel"], runner=runner, progress=False)
    r = [x for x in rep["results"] if x.method == "m"][0]
    assert r.exit_statuses == ["submitted"] and r.best_submission == 50.0    # a.yaml, the first *.yaml, not b.yaml
    first = json.loads((tmp_path / "out/runs/m/traj/tinyModel-s0/tinyModel-s0.traj").read_text())["trajectory"][0]["observation"]
    assert "Submission artefact not found" in first                             # no yaml yet: nothing to score


def test_lm_task_runs_when_a_gpu_is_there_and_our_task_folders_load_the_same_way(tmp_path):
    lm = mlgym_tasks(ROOT, ["tinyLM"])[0]
    assert skip_reason(lm, gpu=True) is None
    built = build_task(lm, tmp_path)
    assert built.task_entrypoint == "LMSubmissionTasks" and built.direction == "min"
    assert "torchrun" in (Path(built.path) / "_mlgym_evaluate.py").read_text()
    wine = load_task(OURS / "wine")
    rep = evaluate_tasks([wine], {"s": "x"}, tmp_path / "ours", runner=scripted_runner(lambda u: [say("python baseline.py"), say("submit")]), progress=False)
    assert rep["tasks"]["wine"]["s"]["best_submission"] == wine.baseline_scores[0]["accuracy"]


def test_best_attempt_and_best_submission_at_k():
    task = Task(id="t", name="t", path=".", dataset_id="", metric="Time", direction="min")
    t = lambda score, status="submitted": Trajectory(id="r", task_id="t", score=score, exit_status=status)
    runs = [t([{"Time": 9.0}, {"Time": 5.0}, {"Time": 7.0}]), t([{"Time": 6.0}], "autosubmission (max_steps)"),
            t([{"Time": 1.0}], "evaluation_format_error (submit)"), t([], "exit_format")]
    r = best_at_k(runs, task, "m")
    assert (r.runs, r.best_attempt, r.best_submission) == (4, 1.0, 6.0)   # a failed submission keeps its validations, not a submission
    assert run_scores(t([{"other": 3.0}]), "Time", "min") == (3.0, 3.0)     # the first metric when the priority one is absent
    assert best_at_k([t([], "exit_format")], task, "m").best_submission is None


def test_bad_input_gives_one_line_errors_naming_the_file_and_field(tmp_path, capsys):
    with pytest.raises(SynthsciError, match="is not an MLGym checkout"): mlgym_tasks(tmp_path)
    assert mlgym_main(["--mlgym-root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "configs/tasks/" in err
    root = tmp_path / "MLGym"
    shutil.copytree(ROOT, root)
    y = root / "configs/tasks/tinyHouse.yaml"
    y.write_text(y.read_text().replace("task_entrypoint: CSVSubmissionTasks\n", ""))
    with pytest.raises(SynthsciError, match=r"tinyHouse.yaml has no field 'task_entrypoint'"): mlgym_tasks(root)
    y.write_text((ROOT / "configs/tasks/tinyHouse.yaml").read_text().replace("CSVSubmissionTasks", "CsvTasks"))
    with pytest.raises(SynthsciError, match=r"tinyHouse.yaml: field 'task_entrypoint' is 'CsvTasks'"): mlgym_tasks(root, ["tinyHouse"])
    shutil.copy(ROOT / "configs/tasks/tinyHouse.yaml", y)
    d = root / "configs/datasets/tinyHouse.yaml"
    d.write_text(d.read_text().replace("is_local: true\n", ""))
    with pytest.raises(SynthsciError, match=r"datasets/tinyHouse.yaml has no field 'is_local'"): mlgym_tasks(root, ["tinyHouse"])
    with pytest.raises(SynthsciError, match="no task nope"): mlgym_tasks(ROOT, ["nope"])
    (root / "configs/tasks/broken.yaml").write_text("id: [unclosed\n")
    with pytest.raises(SynthsciError, match="broken.yaml is not valid YAML"): mlgym_tasks(root)


def test_hub_datasets_and_missing_requirements_are_skipped_with_their_reason(tmp_path):
    root = tmp_path / "MLGym"
    shutil.copytree(ROOT, root)
    (root / "configs/datasets/tinyHouse.yaml").write_text("name: H\ndescription: d\ndata_path: someone/houses\nis_local: false\n")
    assert "on the Hugging Face Hub" in skip_reason(mlgym_tasks(root, ["tinyHouse"])[0])
    (root / "requirements.txt").write_text("numpy>=1\nno-such-package-xyz==1.0  # pinned\n")
    y = root / "configs/tasks/tinyBattle.yaml"
    y.write_text(y.read_text() + "requirements_path: requirements.txt\n")
    assert skip_reason(mlgym_tasks(root, ["tinyBattle"])[0]) == "requirements not installed: no-such-package-xyz (pip install -r requirements.txt)"


def test_command_line_with_the_expert_in_worker_processes(tmp_path, capsys):
    code = mlgym_main(["--mlgym-root", str(ROOT), "--tasks", "tinyHouse", "tinyMissing", "--policy", "expert", "--k", "1",
                       "--max-steps", "16", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "tinyMissing: skipped (data missing" in out and "tinyHouse: baseline 0.9248; expert best attempt" in out
    rep = json.loads((tmp_path / "report.json").read_text())
    r = rep["tasks"]["tinyHouse"]["expert"]
    assert r["best_attempt"] >= 0.9248 and r["best_submission"] is not None and r["exit_statuses"][0] in ("submitted", "autosubmission (max_steps)")
