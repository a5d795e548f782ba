"""Validation in the sandbox: each way a task can be bad (crash, hang, output flood, reading the test labels, labels in
the workspace, a nondeterministic evaluator, the wrong metric, no signal) is rejected with its reason; the
self-debugging loop fixes or rewrites; the stage goes on and the funnel counts every reason."""
import json, shutil
from pathlib import Path

import pandas as pd
import pytest

from synthsci.aci import ACI, load_task
from synthsci.cards import catalog_card
from synthsci.core import Proposal, Task, ValidationReport, load_config, Run, write_jsonl
from synthsci.llm import ScriptedLLM
from synthsci.taskgen import generate_task, write_code
from synthsci.templates import BUGS, scripted_taskgen, task_files
from synthsci.validate import (CHECKS, Failure, ValidateOptions, check_task, funnel_table, read_attempts, run_validate, task_funnel,
                               validate_task)

FAST = ValidateOptions(timeout_s=20, eval_timeout_s=20, agent_check=False, k=1)
IRIS = Proposal(id="proposal-iris", parent_id="topic-iris", topic="Iris species", dataset_id="sklearn/iris", target="species",
                metric="accuracy", direction="max", task_kind="tabular-classification", baseline_idea="logistic regression",
                resources={"cpu_minutes": 1})


@pytest.fixture(scope="module")
def iris_task(tmp_path_factory):
    d = tmp_path_factory.mktemp("tasks")
    return generate_task(IRIS, catalog_card("sklearn/iris"), ScriptedLLM(scripted_taskgen(p_bug=0)), d)


def variant(task: Task, tmp_path, bug=None, edit=None) -> Task:
    "A copy of the task with one of the scripted teacher's bugs, or an edit of its files."
    dest = tmp_path / task.id
    shutil.copytree(task.path, dest)
    meta = json.loads((dest / "taskgen.json").read_text())
    files = {n: (dest / n).read_text() for n in meta["files"]}
    if bug: files = BUGS[bug](files)
    if edit: files = edit(files)
    write_code(dest, meta["spec"], files, meta["layout"])
    return load_task(dest)


def failure(path, opts=FAST) -> Failure:
    with pytest.raises(Failure) as e: check_task(path, opts)
    return e.value


def test_a_good_task_passes_every_check_and_the_agent_path_agrees(iris_task, tmp_path):
    t = variant(iris_task, tmp_path)
    out = check_task(t.path, ValidateOptions(timeout_s=20, eval_timeout_s=20))
    assert list(out["checks"]) == list(CHECKS) and all(out["checks"].values())
    s = out["scores"]
    assert s["validation"] > s["constant"] and 0.5 < s["test"] <= 1


@pytest.mark.parametrize("bug,kind", [("crash", "baseline_crash"), ("syntax", "baseline_crash"), ("flood", "output_flood"),
                                      ("reads_labels", "reads_test_labels"), ("wrong_metric", "metric_missing")])
def test_each_bad_task_is_rejected_with_its_reason(iris_task, tmp_path, bug, kind):
    f = failure(variant(iris_task, tmp_path, bug).path)
    assert f.kind == kind, f


def test_a_nondeterministic_evaluator_is_rejected(iris_task, tmp_path):
    # the scripted teacher's bug scores an unseeded subsample; with iris's perfect baseline every subsample scores 1.0,
    # so the noise here is in the score itself (as with an unseeded tie-break or a sampled metric)
    noisy = lambda f: {**f, "evaluate.py": f["evaluate.py"].replace("print(json.dumps(", "score += np.random.default_rng().normal(0, 1e-3)\nprint(json.dumps(")}
    f = failure(variant(iris_task, tmp_path, edit=noisy).path)
    assert f.kind == "nondeterministic_evaluator" and f.scores["first"] != f.scores["second"]


def test_a_hanging_baseline_is_killed_at_the_time_limit(iris_task, tmp_path):
    f = failure(variant(iris_task, tmp_path, "hang").path, ValidateOptions(timeout_s=3, agent_check=False))
    assert f.kind == "baseline_timeout" and "3 s" in f.reason


def test_a_baseline_that_reads_the_labels_sneakily_still_cannot(iris_task, tmp_path):
    # no literal path in the code for the static scan to see: the sandbox simply has no labels to read
    sneaky = lambda f: {**f, "baseline.py": f["baseline.py"].replace('test = pd.read_csv("data/test.csv")\n',
        'test = pd.read_csv("data/test.csv")\nimport glob; test = test.merge(pd.read_csv(glob.glob("/t*k/hid*/test.csv")[0]), on="id")\n')}
    f = failure(variant(iris_task, tmp_path, edit=sneaky).path)
    assert f.kind == "baseline_crash" and "IndexError" in f.output


def test_labels_planted_in_the_workspace_are_found(iris_task, tmp_path):
    t = variant(iris_task, tmp_path)
    shutil.copy(Path(t.path) / "hidden/test.csv", Path(t.path) / "data/extra.csv")
    f = failure(t.path)
    assert f.kind == "test_labels_in_workspace" and "data/extra.csv" in f.reason


def test_validate_scores_only_the_validation_labels(iris_task, tmp_path):
    always_test = lambda f: {**f, "evaluate.py": f["evaluate.py"].replace('f"{split}.csv"', '"test.csv"')}
    f = failure(variant(iris_task, tmp_path, edit=always_test).path)
    assert f.kind == "evaluator_crash" and "test.csv" in f.output


def test_a_task_without_signal_is_rejected(iris_task, tmp_path):
    constant = lambda f: {**f, "baseline.py": f["baseline.py"].replace("pred = model.predict(X.iloc[len(train):])",
                                                                       "pred = [train[TARGET].mode()[0]] * len(test)")}
    f = failure(variant(iris_task, tmp_path, edit=constant).path)
    assert f.kind == "no_signal"


@pytest.mark.parametrize("p_debug,action", [(1.0, "fix"), (0.0, "rewrite")])
def test_the_self_debugging_loop_fixes_or_rewrites_and_records_every_attempt(iris_task, tmp_path, p_debug, action):
    t = variant(iris_task, tmp_path, "crash")
    teacher = ScriptedLLM(scripted_taskgen(p_bug=0))
    report, attempts = validate_task(t, teacher, ValidateOptions(timeout_s=20, eval_timeout_s=20, agent_check=False, k=2, p_debug=p_debug))
    assert [(a.n, a.action, a.passed, a.kind) for a in attempts] == [(1, "initial", False, "baseline_crash"), (2, action, True, "")]
    assert "data/training.csv" in attempts[0].files["baseline.py"] and "data/training.csv" not in attempts[1].files["baseline.py"]
    last = teacher.calls[-1]["messages"]
    if action == "fix": assert "failed validation: baseline_crash" in last[-1]["content"] and last[-2]["role"] == "assistant"
    else: assert len(last) == 2 and "attempt 2 of 2" in last[-1]["content"]
    assert report.passed and report.attempts == 2 and report.errors[0].startswith("attempt 1 (initial): baseline_crash")
    scores = load_task(t.path).baseline_scores
    assert scores == [{"accuracy": round(attempts[1].scores["test"], 6)}] and report.baseline_score == attempts[1].scores["test"]


def test_after_k_failed_attempts_the_task_is_discarded(iris_task, tmp_path):
    t = variant(iris_task, tmp_path, "wrong_metric")
    teacher = ScriptedLLM(scripted_taskgen(p_bug=1.0, bugs=("wrong_metric",)))    # every rewrite has the bug again
    report, attempts = validate_task(t, teacher, ValidateOptions(timeout_s=20, eval_timeout_s=20, agent_check=False, k=3, p_debug=0.0))
    assert not report.passed and report.attempts == 3 and len(report.errors) == 3
    assert [a.action for a in attempts] == ["initial", "rewrite", "rewrite"] and {a.kind for a in attempts} == {"metric_missing"}
    assert load_task(t.path).baseline_scores == []


def test_a_malformed_fix_counts_as_a_failed_attempt(iris_task, tmp_path):
    t = variant(iris_task, tmp_path, "crash")
    report, attempts = validate_task(t, ScriptedLLM(["no files", "still none"]), ValidateOptions(timeout_s=20, agent_check=False, k=2, p_debug=1.0))
    assert [a.kind for a in attempts] == ["baseline_crash", "malformed"] and not report.passed
    assert attempts[1].output == "still none" and "missed baseline.py and evaluate.py" in attempts[1].reason   # the teacher's answer is kept


def test_after_a_malformed_fix_the_next_fix_still_quotes_the_tasks_own_failure(iris_task, tmp_path, monkeypatch):
    "A real teacher's half-formed answer must not replace the task's failure in the next fix prompt, nor in the funnel."
    import synthsci.validate as validate_mod
    from synthsci.core import Run
    from synthsci.llm import Completion
    t = variant(iris_task, tmp_path, "wrong_metric")
    teacher = ScriptedLLM(["File: baseline.py\n```python\nimport pandas", Completion(text="File: evaluate.py\n```python\nimport num", finish_reason="length"),
                           "still nothing", "and again nothing"])
    report, attempts = validate_task(t, teacher, ValidateOptions(timeout_s=20, eval_timeout_s=20, agent_check=False, k=3, p_debug=1.0), max_tokens=64)
    assert [(a.action, a.kind) for a in attempts] == [("initial", "metric_missing"), ("fix", "malformed"), ("fix", "malformed")]
    assert "cut off at max_tokens=64" in attempts[1].reason
    second_fix = [m["content"] for m in teacher.calls[2]["messages"] if m["role"] == "user" and "failed validation" in m["content"]]
    assert len(second_fix) == 1 and "failed validation: metric_missing" in second_fix[0] and "import num" not in second_fix[0]
    run = Run("f", tmp_path)
    validate_mod.write_jsonl(attempts, run.stage_dir(validate_mod.stage_dir_name("validate")) / "attempts" / f"{t.id}.jsonl")
    write_jsonl([report], run.stage_dir(validate_mod.stage_dir_name("validate")) / f"{t.id}.jsonl")
    monkeypatch.setattr(validate_mod, "grounding_funnel", lambda run: dict(topics=0, proposals=0, grounded=0, rejections={}))
    assert validate_mod.task_funnel(run)["rejections"] == {"validate:metric_missing": 1}


def test_a_validated_task_runs_in_the_agents_interface(iris_task, tmp_path):
    t = variant(iris_task, tmp_path)
    report, _ = validate_task(t, None, ValidateOptions(timeout_s=20, eval_timeout_s=20, agent_check=False))
    aci = ACI(load_task(t.path), tmp_path / "ws")
    try:
        assert not (aci.workspace / "hidden").exists()
        assert "FileNotFoundError" in aci.step("cat /task/hidden/test.csv || python3 -c 'open(\"/task/hidden/test.csv\")'").observation
        aci.step("python3 baseline.py")
        v, s = aci.step("validate"), aci.step("submit")
        assert v.score["accuracy"] > 0 and s.done and s.score == {"accuracy": report.baseline_score}
        assert "Baseline Score: {'accuracy'" in v.observation
    finally: aci.close()


def test_the_stage_goes_on_past_bad_tasks_and_the_funnel_counts_each_reason(iris_task, tmp_path):
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=v", "teacher.spec=scripted", "teacher.cache=off",
                                 "stages={validate: {k: 1, timeout_s: 20, eval_timeout_s: 20, agent_check: false}}"])
    run = Run("v", tmp_path)
    tasks = []
    for bug in (None, "crash", "wrong_metric"):
        d = tmp_path / (bug or "good")
        d.mkdir()
        t = variant(iris_task, d, bug)
        t.id = f"task-{bug or 'good'}"
        write_jsonl([t], run.unit_path("04_tasks", t.id)); tasks.append(t)
    run_validate(cfg)
    reports = {r.task_id: r for r in run.read("05_validated", ValidationReport)}
    assert {k: r.passed for k, r in reports.items()} == {"task-good": True, "task-crash": False, "task-wrong_metric": False}
    m = run.manifest["stages"]["05_validated"]
    assert m["status"] == "complete" and m["valid"] == 1
    f = m["funnel"]
    assert (f["coded"], f["valid"]) == (3, 1)
    assert f["rejections"] == {"validate:baseline_crash": 1, "validate:metric_missing": 1}
    assert len(read_attempts(run)) == 3
    table = funnel_table(task_funnel(run))
    assert table.loc["valid", "count"] == 1 and "baseline_crash 1" in table.loc["valid", "rejections"]
