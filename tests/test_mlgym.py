"""The MLGym adapter on a hand-written fake checkout (tests/fixtures/mlgym_root) that carries a real checkout's quirks:
every task YAML gets a row (scored, or skipped with one reason), tasks keyed by YAML file name, MLGym's defaults for
optional fields, MLGym's priority metric per task, measured baselines, `prepare`, directions.json and summary.csv,
MLGym's entrypoint semantics (CSV, Python, Model), results.json, Best Attempt@k / Best Submission@k, the command line,
and one-line errors for bad input."""
import csv, json, shutil
from pathlib import Path
import pytest
from synthsci.core import SynthsciError, Task, Trajectory
from synthsci.aci import load_task, task_yaml
from synthsci.mlgym import (AgentLimits, best_at_k, build_task, evaluate_mlgym, evaluate_tasks, house_price_split, mlgym_main, mlgym_tasks,
                            run_scores, scripted_runner, skip_reason)

ROOT = Path(__file__).parent / "fixtures" / "mlgym_root"
OURS = Path(__file__).parent / "fixtures" / "tasks"
say = lambda cmd: f"DISCUSSION\nNext step.\n```\n{cmd}\n```"
WOMEN_SURVIVE = ("python -c \"import pandas as pd; t = pd.read_csv('data/test.csv'); pd.DataFrame({'PassengerId': t.PassengerId, "
                 "'Survived': (t.Sex == 'female').astype(int)}).to_csv('submission.csv', index=False)\"")
BLOTTO_330 = "printf 'def row_strategy(history):\\n    return [3, 3, 0]\\n' > strategy.py"
TITANIC_WOMEN_ACCURACY = 0.85   # the women-survive rule on the fixture's 20 test passengers


def _script(unit):
    first = {"tinyHouse": "python baseline.py", "tinyDefaults": "python baseline.py", "titanic": WOMEN_SURVIVE, "tinyBlotto": BLOTTO_330}
    return [say(first.get(unit.task.id, "ls")), say("validate"), say("submit")]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    "The whole fixture checkout, evaluated once: k=2 scripted runs per task, baselines measured twice, the YAML's numbers in the tables."
    out = tmp_path_factory.mktemp("mlgym")
    rep = evaluate_mlgym(ROOT, {"scripted": "scripted"}, out, k=2, gpu=False, runner=scripted_runner(_script), measure=2, progress=False)
    return rep, out


def test_every_task_yaml_gets_a_row_scored_or_skipped_with_one_reason(checkout):
    rep, out = checkout
    tasks = rep["tasks"]
    assert list(tasks) == sorted(p.stem for p in (ROOT / "configs/tasks").glob("*.yaml"))   # one row per YAML, in the checkout's order
    assert {t for t, v in tasks.items() if v["status"] == "scored"} == {"tinyBattle", "tinyBlotto", "tinyDefaults", "tinyHouse", "tinyHouseL1", "titanic"}
    why = {t: v["reason"] for t, v in tasks.items() if v["status"] == "skipped"}
    assert why["tinyStale"].startswith("stale config: it names the dataset YAML datasets/tinyGone.yaml, which is not in configs/")
    assert why["tinyBase"].startswith("unknown entrypoint: task_entrypoint is 'BaseMLTask'")
    assert why["tinyMissing"].startswith("data missing: data/tinyMissing/data") and "nothing here can make it offline" in why["tinyMissing"]
    assert why["regressionKaggleHousePrice"] == f"data missing: data/regressionKaggleHousePrice/data: make it with `synthsci mlgym prepare --mlgym-root {ROOT.resolve()}`"
    assert why["tinyHub"].startswith("dataset someone/tiny-images is on the Hugging Face Hub")
    assert why["tinyLM"].startswith("needs a GPU")
    assert why["tinyRL"] == ("requirements not installed: jax, gymnax, flax, optax, tensorflow_probability, dotmap: "
                             "pip install 'synthsci[rl]' (the CPU build of MLGym's RL requirements)")
    assert all("\n" not in r for r in why.values())
    # the baseline's submission scores the baseline's score, on both runs; results.json per run, as MLGym writes it
    assert tasks["tinyHouse"]["scripted"] == {"best_attempt": 0.9248, "best_submission": 0.9248, "exit_statuses": ["submitted", "submitted"]}
    res = json.loads((out / "runs/scripted/traj/tinyHouse-s1/results.json").read_text())
    assert res == {"agent": [{"r2": 0.9248, "rmse": 1.5696}, {"r2": 0.9248, "rmse": 1.5696}], "baseline": {"r2": 0.9248, "rmse": 1.5696}}
    # the tables hold the scored tasks (with a baseline); the report and the summary keep every YAML
    rows = list(csv.reader((out / "best_attempt.csv").open()))
    assert rows[0] == ["task", "baseline", "scripted"] and [r[0] for r in rows[1:]] == ["tinyBattle", "tinyBlotto", "tinyDefaults", "tinyHouse", "tinyHouseL1", "titanic"]
    assert json.loads((out / "directions.json").read_text()) == {r[0]: "max" for r in rows[1:]}
    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["task"] for r in summary] == list(tasks)
    assert {r["task"]: r["status"] for r in summary}["tinyStale"] == f"skipped: {why['tinyStale']}"
    assert {r["task"]: r["scripted best_submission"] for r in summary}["tinyHouse"] == "0.9248"


def test_shared_ids_never_overwrite_each_other(checkout):
    rep, out = checkout
    house, l1 = rep["tasks"]["tinyHouse"], rep["tasks"]["tinyHouseL1"]
    assert house["id"] == l1["id"] == "tinyHouse" and (house["yaml"], l1["yaml"]) == ("configs/tasks/tinyHouse.yaml", "configs/tasks/tinyHouseL1.yaml")
    assert l1["scripted"]["exit_statuses"] == ["submission_not_found (submit)"] * 2    # no baseline.py in the L1 workspace: nothing to submit
    assert house["scripted"]["best_submission"] == 0.9248                               # ... and tinyHouse's scores are its own
    assert (out / "tasks/tinyHouse/baseline.py").exists() and not (out / "tasks/tinyHouseL1/baseline.py").exists()
    for key in ("tinyHouse", "tinyHouseL1"):
        traj = json.loads((out / f"runs/scripted/traj/{key}-s0/{key}-s0.traj").read_text())
        assert traj["info"]["task_id"] == key
    assert {r.task_id for r in rep["results"] if r.method == "scripted"} >= {"tinyHouse", "tinyHouseL1"}


def test_stale_yaml_and_unknown_entrypoint_cost_only_their_task(checkout, tmp_path):
    rep, _ = checkout
    assert rep["tasks"]["tinyStale"]["status"] == rep["tasks"]["tinyBase"]["status"] == "skipped"
    # a YAML that is not YAML at all, and one with no evaluator, cost their task too
    root = tmp_path / "MLGym"
    shutil.copytree(ROOT, root)
    (root / "configs/tasks/broken.yaml").write_text("id: [unclosed\n")
    (root / "configs/tasks/noEval.yaml").write_text("id: noEval\nname: N\ndescription: d\n")
    rep = evaluate_mlgym(root, {"s": "x"}, tmp_path / "out", ["broken", "noEval", "tinyBattle"], gpu=False, progress=False,
                         runner=scripted_runner(lambda u: [say("submit")]))
    t = rep["tasks"]
    assert "broken.yaml is not valid YAML" in t["broken"]["reason"]
    assert t["noEval"]["reason"].startswith("no evaluator: evaluation_paths is empty")
    assert t["tinyBattle"]["s"]["best_submission"] == 0.7465


def test_optional_fields_take_mlgyms_defaults(checkout):
    rep, out = checkout
    d = rep["tasks"]["tinyDefaults"]
    assert (d["entrypoint"], d["metric"], d["metric_source"]) == ("CSVSubmissionTasks", "r2", "the evaluator's first metric")
    # no baseline_scores: MLGym runs the baseline to get them, and so do we
    assert d["baseline"] == 0.9248 and d["baseline_source"] == "measured (mean of 2 runs): the YAML's baseline_scores have no r2"
    assert d["scripted"]["best_submission"] == 0.9248
    cfg = task_yaml(out / "tasks/tinyDefaults")
    assert (cfg["training_timeout"], cfg["evaluation_read_only"], cfg["workspace_path"]) == (3600, False, "/home/agent/workspace")


def test_game_with_a_negative_baseline_is_measured_k_times(checkout):
    rep, out = checkout
    b = rep["tasks"]["tinyBlotto"]
    assert (b["baseline"], b["baseline_source"], b["baseline_yaml"]) == (-0.193, "yaml", -0.193)   # the tables use the YAML's number ...
    m = b["baseline_measured"]                                                                # ... and the measured runs sit beside it
    assert (m["k"], m["runs"], m["errors"]) == (2, 2, [])
    assert all(-0.3 < v < -0.1 for v in m["values"]) and m["min"] <= m["mean"] <= m["max"] and m["std"] >= 0
    assert len(m["seconds"]) == 2 and (out / "baselines/tinyBlotto/run1.log").exists()
    assert 0.15 < b["scripted"]["best_submission"] < 0.35                                    # the agent's 3-3-0 beats the column player
    assert task_yaml(out / "tasks/tinyBlotto")["submission_artefacts"] == ["strategy.py"]     # not evaluate.py, MLGym's "baseline" of a game
    rows = {r[0]: r for r in csv.reader((out / "best_submission.csv").open())}
    assert rows["tinyBlotto"][1] == "-0.193"


def test_evaluator_at_home_agent_workspace_scores_titanic_on_accuracy(checkout):
    "Titanic's evaluator opens /home/agent/workspace/...; the YAML says Accuracy, the evaluator prints accuracy."
    rep, _ = checkout
    t = rep["tasks"]["titanic"]
    assert (t["id"], t["metric"], t["metric_source"]) == ("titanicSurvival", "Accuracy", "MLGym's tables")
    assert t["scripted"] == {"best_attempt": TITANIC_WOMEN_ACCURACY, "best_submission": TITANIC_WOMEN_ACCURACY, "exit_statuses": ["submitted", "submitted"]}


def test_secondary_metric_listed_first_ranks_on_the_priority_metric_after_prepare(tmp_path, capsys):
    "House Price's YAML and evaluator list rmse first; MLGym ranks it on r2. Its data is made by `prepare`."
    root = tmp_path / "MLGym"
    shutil.copytree(ROOT, root)
    assert mlgym_main(["prepare", "--mlgym-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("data/regressionKaggleHousePrice/data: made House Price's train/validation/test split") and "\nregressionKaggleHousePrice: ready\n" in out
    assert "\ntinyLM: needs a GPU" in out and "\ntinyMissing: data missing" in out
    code = mlgym_main(["--mlgym-root", str(root), "--tasks", "regressionKaggleHousePrice", "--policy", "expert", "--max-steps", "8", "--out", str(tmp_path / "o")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    t = json.loads((tmp_path / "o/report.json").read_text())["tasks"]["regressionKaggleHousePrice"]
    assert (t["metric"], t["direction"], t["metric_source"]) == ("r2", "max", "MLGym's tables")
    assert (t["baseline"], t["baseline_source"], t["baseline_measured"]) == (0.903, "yaml", None)    # the YAML's r2, not its first number (rmse)
    assert t["expert"]["best_attempt"] == pytest.approx(0.9030492, abs=1e-6)                     # the expert runs the baseline: r2, not rmse
    line = next(l for l in printed.splitlines() if l.startswith("regressionKaggleHousePrice "))
    assert line.split()[1:3] == ["r2", "0.903"], line


def test_house_price_split_is_mlgyms(tmp_path):
    "The split MLGym's helper makes (its features and labels split apart, 20 % then 12.5 %, seed 42), made here on the whole frame."
    import pandas as pd
    from sklearn.model_selection import train_test_split
    src = ROOT / "data/regressionKaggleHousePrice/_helpers/train.csv"
    rows = house_price_split(src, tmp_path)
    assert rows == {"train.csv": 70, "validation.csv": 10, "test.csv": 20, "answer.csv": 20}
    df = pd.read_csv(src)
    X_rest, X_test, _, y_test = train_test_split(df.drop(columns=["SalePrice"]), df[["Id", "SalePrice"]], test_size=0.2, random_state=42)
    X_train, X_val = train_test_split(X_rest, test_size=0.125, random_state=42)[:2]
    made = {f: pd.read_csv(tmp_path / f) for f in rows}
    assert list(made["train.csv"].Id) == list(X_train.Id) and list(made["validation.csv"].Id) == list(X_val.Id)
    assert made["test.csv"].equals(X_test.reset_index(drop=True)) and made["answer.csv"].equals(y_test.reset_index(drop=True))
    assert list(made["train.csv"].columns) == list(df.columns)


def test_metric_override_and_measured_baselines_on_the_command_line(tmp_path, capsys):
    code = mlgym_main(["--mlgym-root", str(ROOT), "--tasks", "tinyHouse", "tinyHouseL1", "tinyBlotto", "tinyMissing", "--policy", "expert", "--max-steps", "8",
                       "--metric", "tinyHouse=rmse", "--measure-baselines", "3", "--baseline", "measured", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    rep = json.loads((tmp_path / "report.json").read_text())
    assert (rep["baseline"], rep["measure_baselines"]) == ("measured", 3)
    h, b = rep["tasks"]["tinyHouse"], rep["tasks"]["tinyBlotto"]
    assert (h["metric"], h["direction"], h["metric_source"], h["baseline"], h["baseline_source"]) == ("rmse", "min", "--metric", 1.5696, "measured (mean of 3 runs)")
    assert b["baseline_source"] == "measured (mean of 3 runs)" and b["baseline"] == b["baseline_measured"]["mean"] != b["baseline_yaml"]
    assert len(b["baseline_measured"]["values"]) == 3 and b["baseline_measured"]["min"] < 0
    l1 = rep["tasks"]["tinyHouseL1"]   # tinyHouse's id, but --metric named the YAML tinyHouse: L1 keeps r2; and it has no baseline script
    assert (l1["metric"], l1["baseline"]) == ("r2", 0.9248) and l1["baseline_source"].startswith("yaml (the baseline could not be measured: ")
    assert json.loads((tmp_path / "directions.json").read_text()) == {"tinyBlotto": "max", "tinyHouse": "min", "tinyHouseL1": "max"}
    summary_line = next(l for l in out.splitlines() if l.startswith("tinyMissing "))
    assert "skipped: data missing: data/tinyMissing/data" in summary_line
    assert next(l for l in out.splitlines() if l.startswith("tinyHouse ")).split()[1:4] == ["rmse", "(min)", "1.5696"]
    assert "baseline column: measured" in out and "AUP: synthsci aup" in out


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
    assert run_scores(t([{"other": 3.0}]), "Time", "min") == (None, None)  # another metric is no score on this one
    assert run_scores(t([{"time": 3.0}]), "Time", "min") == (3.0, 3.0)    # names match ignoring case
    assert best_at_k([t([], "exit_format")], task, "m").best_submission is None


def test_bad_input_gives_one_line_errors_and_bad_tasks_their_reason(tmp_path, capsys):
    with pytest.raises(SynthsciError, match="is not an MLGym checkout"): mlgym_tasks(tmp_path)
    assert mlgym_main(["--mlgym-root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "configs/tasks/" in err
    assert mlgym_main(["--mlgym-root", str(ROOT), "--metric", "tinyHouse", "--out", str(tmp_path / "o")]) == 2
    assert "write TASK=METRIC" in capsys.readouterr().err
    assert mlgym_main(["--mlgym-root", str(ROOT), "--metric", "nope=r2", "--out", str(tmp_path / "o")]) == 2
    assert "no --metric names the task nope" in capsys.readouterr().err
    root = tmp_path / "MLGym"
    shutil.copytree(ROOT, root)
    y = root / "configs/tasks/tinyHouse.yaml"
    y.write_text(y.read_text().replace("task_entrypoint: CSVSubmissionTasks\n", ""))
    assert mlgym_tasks(root, ["tinyHouse"])[0].entrypoint == "CSVSubmissionTasks"          # MLGym's default
    y.write_text((ROOT / "configs/tasks/tinyHouse.yaml").read_text().replace("CSVSubmissionTasks", "CsvTasks"))
    assert mlgym_tasks(root, ["tinyHouse"])[0].problem.startswith("unknown entrypoint: task_entrypoint is 'CsvTasks'")
    y.write_text((ROOT / "configs/tasks/tinyHouse.yaml").read_text().replace("id: tinyHouse\n", ""))
    assert "tinyHouse.yaml has no field 'id'" in mlgym_tasks(root, ["tinyHouse"])[0].problem
    shutil.copy(ROOT / "configs/tasks/tinyHouse.yaml", y)
    d = root / "configs/datasets/tinyHouse.yaml"
    d.write_text(d.read_text().replace("is_local: true\n", ""))                               # MLGym's default: not local, i.e. on the Hub
    assert "on the Hugging Face Hub" in skip_reason(mlgym_tasks(root, ["tinyHouse"])[0])
    d.write_text(d.read_text().replace("data_path: data/tinyHouse/data\n", ""))
    assert "datasets/tinyHouse.yaml has no field 'data_path'" in mlgym_tasks(root, ["tinyHouse"])[0].problem
    with pytest.raises(SynthsciError, match="no task nope"): mlgym_tasks(ROOT, ["nope"])


def test_hub_datasets_and_missing_requirements_are_skipped_with_their_reason(tmp_path):
    root = tmp_path / "MLGym"
    shutil.copytree(ROOT, root)
    (root / "configs/datasets/tinyHouse.yaml").write_text("name: H\ndescription: d\ndata_path: someone/houses\nis_local: false\n")
    assert "on the Hugging Face Hub" in skip_reason(mlgym_tasks(root, ["tinyHouse"])[0])
    (root / "requirements.txt").write_text("numpy>=1\nno-such-package-xyz==1.0  # pinned\n")
    y = root / "configs/tasks/tinyBattle.yaml"
    y.write_text(y.read_text() + "requirements_path: requirements.txt\n")
    assert skip_reason(mlgym_tasks(root, ["tinyBattle"])[0]) == f"requirements not installed: no-such-package-xyz: pip install -r {root.resolve()}/requirements.txt"


def test_command_line_with_the_expert_in_worker_processes(tmp_path, capsys):
    code = mlgym_main(["--mlgym-root", str(ROOT), "--tasks", "tinyHouse", "tinyMissing", "--policy", "expert", "--k", "1",
                       "--max-steps", "16", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[mlgym] tinyMissing: skipped: data missing" in out
    lines = {l.split()[0]: l for l in out.splitlines() if l.startswith(("tinyHouse ", "tinyMissing "))}
    assert lines["tinyHouse"].split()[1:3] == ["r2", "0.9248"] and lines["tinyHouse"].endswith("scored")
    assert "skipped: data missing" in lines["tinyMissing"]
    rep = json.loads((tmp_path / "report.json").read_text())
    r = rep["tasks"]["tinyHouse"]["expert"]
    assert r["best_attempt"] >= 0.9248 and r["best_submission"] is not None and r["exit_statuses"][0] in ("submitted", "autosubmission (max_steps)")


def test_the_rl_extra_is_what_the_skip_reason_installs():
    import configparser
    from synthsci.mlgym import RL_PACKAGES
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(Path(__file__).parents[1] / "settings.ini")
    assert cfg["DEFAULT"]["rl_requirements"].split() == list(RL_PACKAGES)
    assert '"rl": reqs("rl_requirements")' in (Path(__file__).parents[1] / "setup.py").read_text()


def test_a_method_without_a_score_says_how_its_runs_ended(tmp_path, capsys):
    "An API failure the trajectory knows about reaches the summary, not just an empty cell."
    from synthsci.core import SynthsciError
    def down(messages, **params): raise SynthsciError("openai:x@http://127.0.0.1:9/v1: HTTP 503 (after 4 retries): the server is down")
    rep = evaluate_mlgym(ROOT, {"remote": "scripted"}, tmp_path, names=["tinyHouse"], gpu=False, runner=scripted_runner(lambda u: down))
    row = {r["task"]: r["status"] for r in csv.DictReader((tmp_path / "summary.csv").open())}["tinyHouse"]
    assert "remote: no score: submission_not_found (exit_api): openai:x@http://127.0.0.1:9/v1: HTTP 503" in row, row
