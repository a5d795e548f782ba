"""Validation in the sandbox: each way a task can be bad (crash, hang, output flood, reading the test labels, labels in
the workspace, a nondeterministic evaluator, the wrong metric, no signal) is rejected with its reason; so is each way a
task cannot tell a better solution from a worse one (too few rows, no headroom, an unstable metric, a reference that is
not stronger, a task off its topic); the self-debugging loop fixes or rewrites; the stage goes on, the funnel counts every
reason and the ladder table ranks the tasks."""
import json, shutil
from pathlib import Path

import pandas as pd
import pytest

from synthsci.aci import ACI, load_task
from synthsci.cards import catalog_card
from synthsci.core import Proposal, Task, ValidationReport, load_config, Run, write_jsonl
from synthsci.llm import ScriptedLLM
from synthsci.taskgen import generate_task, teacher_file, write_code
from synthsci.templates import BUGS, scripted_taskgen, task_files
from synthsci.validate import (CHECKS, Failure, ValidateOptions, check_task, funnel_table, ladder_summary, ladder_table, read_attempts, run_validate,
                               task_funnel, validate_task)

FAST = ValidateOptions(timeout_s=20, eval_timeout_s=20, agent_check=False, k=1, quality=False)   # the checks that a task runs (iris has no headroom)
QUALITY = ValidateOptions(timeout_s=60, eval_timeout_s=20, agent_check=False, k=1)                # and that it is worth learning from
FRIEDMAN = Path(__file__).parent / "fixtures" / "tasks" / "friedman"   # hand-written fixture: a linear baseline, a boosted-trees reference
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
    files = {n: teacher_file(dest, n).read_text() for n in meta["files"]}
    if bug: files = BUGS[bug](files)
    if edit: files = edit(files)
    write_code(dest, meta["spec"], files, meta["layout"])
    return load_task(dest)


def failure(path, opts=FAST) -> Failure:
    with pytest.raises(Failure) as e: check_task(path, opts)
    return e.value


def test_a_good_task_passes_every_check_and_the_agent_path_agrees(iris_task, tmp_path):
    t = variant(iris_task, tmp_path)
    out = check_task(t.path, ValidateOptions(timeout_s=20, eval_timeout_s=20, quality=False))
    assert list(out["checks"]) == [c for c in CHECKS[:CHECKS.index("agent_path") + 1] if c != "enough_rows"] and all(out["checks"].values())
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
    report, attempts = validate_task(t, teacher, ValidateOptions(timeout_s=20, eval_timeout_s=20, agent_check=False, k=2, p_debug=p_debug, quality=False))
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
    report, attempts = validate_task(t, teacher, ValidateOptions(timeout_s=20, eval_timeout_s=20, agent_check=False, k=3, p_debug=0.0, quality=False))
    assert not report.passed and report.attempts == 3 and len(report.errors) == 3
    assert [a.action for a in attempts] == ["initial", "rewrite", "rewrite"] and {a.kind for a in attempts} == {"metric_missing"}
    assert load_task(t.path).baseline_scores == []


def test_a_malformed_fix_counts_as_a_failed_attempt(iris_task, tmp_path):
    t = variant(iris_task, tmp_path, "crash")
    report, attempts = validate_task(t, ScriptedLLM(["no files", "still none"]), ValidateOptions(timeout_s=20, agent_check=False, k=2, p_debug=1.0, quality=False))
    assert [a.kind for a in attempts] == ["baseline_crash", "malformed"] and not report.passed
    assert attempts[1].output == "still none" and "missed baseline.py and evaluate.py and reference.py" in attempts[1].reason   # the teacher's answer is kept


def test_after_a_malformed_fix_the_next_fix_still_quotes_the_tasks_own_failure(iris_task, tmp_path, monkeypatch):
    "A real teacher's half-formed answer must not replace the task's failure in the next fix prompt, nor in the funnel."
    import synthsci.validate as validate_mod
    from synthsci.core import Run
    from synthsci.llm import Completion
    t = variant(iris_task, tmp_path, "wrong_metric")
    teacher = ScriptedLLM(["File: baseline.py\n```python\nimport pandas", Completion(text="File: evaluate.py\n```python\nimport num", finish_reason="length"),
                           "still nothing", "and again nothing"])
    report, attempts = validate_task(t, teacher, ValidateOptions(timeout_s=20, eval_timeout_s=20, agent_check=False, k=3, p_debug=1.0, quality=False), max_tokens=64)
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
    report, _ = validate_task(t, None, ValidateOptions(timeout_s=20, eval_timeout_s=20, agent_check=False, quality=False))
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
                                 "stages={validate: {k: 1, timeout_s: 20, eval_timeout_s: 20, agent_check: false, quality: false}}"])
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


# --- tasks worth learning from: each check on a task built to fail it, and one task that passes them all ---------------
def fixture_copy(tmp_path, edit=None, name="friedman") -> Path:
    "A copy of the hand-written fixture task `friedman`, its files edited by `edit(folder)`."
    d = tmp_path / name
    shutil.copytree(FRIEDMAN, d)
    if edit: edit(d)
    return d


def test_a_task_worth_learning_from_passes_every_check_and_reports_its_ladder(tmp_path):
    t = load_task(fixture_copy(tmp_path))
    report, attempts = validate_task(t, None, QUALITY)
    s = report.scores
    assert report.passed and all(report.checks[c] for c in CHECKS if c != "agent_path"), report
    assert s["constant_test"] > s["test"] > s["reference"] and report.reference_score == s["reference"] and s["tau"] == 1.0   # rmse: lower is better
    assert s["gain_baseline"][0] > 0 and s["gain_reference"][0] > 0 and s["ci_test"][0] < s["test"] < s["ci_test"][1]
    assert 0 < s["headroom"] < 1 and attempts[0].scores == s
    assert "reference" not in (tmp_path / "friedman/task.yaml").read_text().split("reference_paths")[0].split("secret_files")[0]   # not starter code


def test_a_saturated_baseline_is_rejected_for_no_headroom_at_once(iris_task, tmp_path):
    t = variant(iris_task, tmp_path)                          # iris: the baseline scores accuracy 1.0
    teacher = ScriptedLLM(scripted_taskgen(p_bug=0))
    report, attempts = validate_task(t, teacher, ValidateOptions(timeout_s=20, eval_timeout_s=20, agent_check=False, k=3))
    assert [a.kind for a in attempts] == ["no_headroom"] and teacher.calls == []   # a failure of the data: no fix asked for
    assert "saturated" in attempts[0].reason and attempts[0].scores["headroom"] < 0.02 and not report.passed


def test_two_test_rows_are_too_few(tmp_path):
    def cut(d):
        for s in ("validation", "test"): pd.read_csv(d / f"hidden/{s}.csv").head(2).to_csv(d / f"hidden/{s}.csv", index=False)
    f = failure(fixture_copy(tmp_path, cut), QUALITY)
    assert f.kind == "too_few_rows" and "2 validation and 2 test rows" in f.reason


def test_an_interval_wider_than_the_headroom_is_an_unstable_metric(tmp_path):
    f = failure(fixture_copy(tmp_path), ValidateOptions(timeout_s=60, eval_timeout_s=20, agent_check=False, max_ci_share=0.1))
    assert f.kind == "unstable_metric" and "bootstrap interval" in f.reason and f.scores["headroom"] > 0.4


def test_a_stronger_solution_that_is_not_stronger_is_not_discriminative(tmp_path):
    f = failure(fixture_copy(tmp_path, lambda d: shutil.copy(d / "baseline.py", d / "reference/reference.py")), QUALITY)
    assert f.kind == "not_discriminative" and "gain of the reference over the baseline" in f.reason
    assert f.scores["reference"] == f.scores["test"] and f.scores["tau"] < 1
    f = failure(fixture_copy(tmp_path / "none", lambda d: shutil.rmtree(d / "reference")), QUALITY)
    assert f.kind == "not_discriminative" and "no reference solution" in f.reason


def test_a_reference_that_reads_the_labels_and_an_evaluator_off_its_metric_are_caught(tmp_path):
    peek = lambda d: (d / "reference/reference.py").write_text((d / "reference/reference.py").read_text() + "\nopen('/task/hidden/test.csv')\n")
    assert failure(fixture_copy(tmp_path, peek), QUALITY).kind == "reads_test_labels"
    off = lambda d: (d / "evaluate.py").write_text((d / "evaluate.py").read_text().replace(".mean() ** 0.5", ".mean() ** 0.5 * 1.1"))
    f = failure(fixture_copy(tmp_path / "off", off), QUALITY)
    assert f.kind == "metric_mismatch" and "host computes" in f.reason


def test_a_weak_reference_goes_back_to_the_teacher_who_fixes_it(tmp_path):
    "A generated task (digits: logistic regression on pixels) whose draft has the scripted teacher's weak reference."
    p = Proposal(id="proposal-digits", parent_id="topic-digits", topic="Handwritten digit recognition with hyperparameter search", dataset_id="sklearn/digits",
                 target="label", metric="accuracy", direction="max", task_kind="image-classification", baseline_idea="logistic regression on raw pixels",
                 resources={"cpu_minutes": 2})
    teacher = ScriptedLLM(scripted_taskgen(p_bug=1.0, bugs=("weak_reference",)))
    t = generate_task(p, catalog_card("sklearn/digits"), teacher, tmp_path)
    report, attempts = validate_task(t, teacher, ValidateOptions(timeout_s=120, eval_timeout_s=30, agent_check=False, k=2, p_debug=1.0))
    assert [(a.action, a.kind) for a in attempts] == [("initial", "not_discriminative"), ("fix", "")], [a.reason for a in attempts]
    assert report.passed and report.reference_score > report.baseline_score and report.scores["tau"] == 1.0


def test_the_reviewer_rejects_a_task_off_its_topic_and_its_verdict_is_recorded(tmp_path):
    p = Proposal(id="proposal-ope", parent_id="topic-ope", topic="Offline policy evaluation from logged decisions", dataset_id="sklearn/wine",
                 target="cultivar", metric="accuracy", direction="max", task_kind="tabular-classification", baseline_idea="logistic regression",
                 resources={"cpu_minutes": 1})
    t = generate_task(p, catalog_card("sklearn/wine"), ScriptedLLM(scripted_taskgen(p_bug=0)), tmp_path)
    teacher = ScriptedLLM(scripted_taskgen(p_bug=0))          # its review: the task's dataset does not fit its topic
    report, attempts = validate_task(t, teacher, ValidateOptions(timeout_s=20, eval_timeout_s=20, agent_check=False, k=1, quality=False, review="on"))
    (a,) = attempts
    assert a.kind == "off_topic" and a.review["verdict"] == "off_topic" and "sklearn/wine" in a.reason and not report.passed
    ask = teacher.calls[-1]["messages"][-1]["content"]
    assert ask.startswith("Review this task") and "Topic: Offline policy evaluation" in ask and "Reference solution" in ask
    unsure = ScriptedLLM(["I think it is fine."])           # an answer without a verdict is recorded, not a rejection
    report, attempts = validate_task(t, unsure, ValidateOptions(timeout_s=20, eval_timeout_s=20, agent_check=False, k=1, quality=False, review="on"))
    assert report.passed and attempts[0].review == {"verdict": "unreadable", "reason": "I think it is fine."} and "on_topic" in report.checks


def test_the_stage_writes_the_ladder_table_and_its_summary(iris_task, tmp_path):
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=q", "teacher.spec=scripted", "teacher.cache=off",
                                 "stages={validate: {k: 1, timeout_s: 60, eval_timeout_s: 20, agent_check: false}}"])
    run = Run("q", tmp_path)
    good, weak = load_task(fixture_copy(tmp_path / "a")), load_task(fixture_copy(tmp_path / "b", lambda d: shutil.copy(d / "baseline.py", d / "reference/reference.py")))
    weak.id, saturated = "friedman-weak", variant(iris_task, tmp_path)
    for t in (good, weak, saturated): write_jsonl([t], run.unit_path("04_tasks", t.id))
    out = run_validate(cfg)
    f = run.manifest["stages"]["05_validated"]["funnel"]
    assert f["valid"] == 1 and f["rejections"] == {"validate:no_headroom": 1, "validate:not_discriminative": 1}
    assert f["valid_datasets"] == {good.dataset_id: 1}
    table = pd.read_csv(out / "ladder.csv")
    assert sorted(table["task_id"]) == sorted([good.id, weak.id])   # iris never reached the ladder
    row = table.set_index("task_id").loc[good.id]
    assert row["ordered"] and row["beyond_noise"] and row["valid"] and row["tau"] == 1.0
    summary = json.loads((out / "ladder_summary.json").read_text())
    weak_tau = table.set_index("task_id").loc[weak.id, "tau"]     # baseline and reference tie: tau-b below 1
    assert summary["all"] == dict(tasks=2, ordered=0.5, beyond_noise=0.5, mean_tau=pytest.approx((1 + weak_tau) / 2, abs=1e-4), valid=1) and weak_tau < 1
    assert summary == ladder_summary(ladder_table(run), task_funnel(run))


def test_validate_options_out_of_range_are_one_line_errors():
    from synthsci.core import SynthsciError
    with pytest.raises(SynthsciError, match=r"^stages\.validate\.min_headroom must be between 0 and 1, not 2$"): ValidateOptions(min_headroom=2)
    with pytest.raises(SynthsciError, match=r"^stages\.validate\.review must be one of auto, on, off, not 'always'$"): ValidateOptions(review="always")


# --- Ray: the validate stage's units on a cluster (synthsci.cluster), here with a stand-in for the `ray` module ----------
# (tests/test_ray_cluster.py runs it on a real head + two worker nodes and kills one)
class LosingRay:
    """Just enough of the `ray` module for ValidateRunner: each Ray task runs here, in this process, but the first submission
    of each unit in `lose` runs to its end (or not at all: `run_lost=False`) and then its node dies before the driver has the result (`NodeDiedError`)."""
    def __init__(self, lose=(), run_lost=True):
        import ray
        self.exceptions, self.lose, self.run_lost, self.calls, self.remotes = ray.exceptions, set(lose), run_lost, {}, []
    def nodes(self):
        return [dict(NodeID=n * 56, Alive=True, NodeManagerAddress="10.0.0.1", NodeManagerPort=i, Resources={"CPU": 1.0, "synthsci_sandbox": 1.0})
                for i, n in enumerate("ab")]
    def put(self, x): return x
    def remote(self, **resources):
        self.remotes.append(resources)
        return _Remote
    def wait(self, refs, num_returns, timeout):
        for fn, a in refs: fn(*a)          # the scratch folders, cleared
        return refs, []
    def get(self, ref):
        fn, a = ref
        task = a[0]
        n = self.calls[task.id] = self.calls.get(task.id, 0) + 1
        out = fn(*a) if self.run_lost or not (n == 1 and task.id in self.lose) else None
        if n == 1 and task.id in self.lose:
            raise self.exceptions.NodeDiedError(f"Task failed because the node it was running on is dead. Node IP: 10.0.0.1, node ID: {'a' * 56}.")
        return out


class _Remote:
    "A Ray remote function whose ref is the call itself (LosingRay.get runs it)."
    def __init__(self, fn): self.fn = fn
    def options(self, **kw): return self
    def remote(self, *a): return self.fn, a


def _stage_tasks(iris_task, run, tmp_path, bugs=("crash",)):
    "Tasks in a run's 04_tasks: copies of the generated iris task with `bugs` (a crashing baseline: the teacher fixes it), and the wine fixture (hand-written, no teacher files)."
    tasks = []
    for bug in bugs:
        d = tmp_path / (bug or "good"); d.mkdir(parents=True)
        t = variant(iris_task, d, bug); t.id = f"task-{bug or 'good'}"; tasks.append(t)
    shutil.copytree(Path(__file__).parent / "fixtures" / "tasks" / "wine", tmp_path / "wine")
    tasks.append(load_task(tmp_path / "wine"))
    for t in tasks: write_jsonl([t], run.unit_path("04_tasks", t.id))
    return tasks


def _validated(run_id, root):
    "What a validate stage left: reports, attempts (less their timing), the manifest's funnel and ledger, and each task folder's files."
    run = Run(run_id, root)
    m = run.manifest["stages"]["05_validated"]
    tasks = run.read("04_tasks", Task)
    folders = {t.id: {p.relative_to(t.path).as_posix(): p.read_bytes() for p in sorted(Path(t.path).rglob("*")) if p.is_file()} for t in tasks}
    return dict(reports=sorted((r.to_dict() for r in run.read("05_validated", ValidationReport)), key=lambda r: r["id"]),
                attempts=[{**a.to_dict(), "seconds": None} for a in read_attempts(run)], funnel=m["funnel"], ladder=m["ladder"],
                ledger={k: m[k] for k in ("calls", "input_tokens", "output_tokens", "cost_usd")}, folders=folders), m


def test_ray_validation_matches_the_local_pool_and_a_lost_result_is_redone_once(iris_task, tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="ray is not installed (the optional extra 'ray')")
    import tempfile
    import synthsci.cluster as cluster
    stages = "stages={validate: {k: 2, p_debug: 1.0, timeout_s: 20, eval_timeout_s: 20, agent_check: false, quality: false}, taskgen: {p_bug: 0}}"
    base = [f"runs_dir={tmp_path}", "teacher.spec=scripted", stages]
    _stage_tasks(iris_task, Run("local", tmp_path), tmp_path / "l")
    run_validate(load_config(overrides=base + ["run_id=local"]))
    fake = LosingRay(lose={"task-crash"})
    monkeypatch.setattr(cluster, "ray_connect", lambda spec, **kw: fake)
    _stage_tasks(iris_task, Run("ray", tmp_path), tmp_path / "r")
    run_validate(load_config(overrides=base + ["run_id=ray", "stages.validate.ray_address=auto", "stages.validate.node_retries=1"]))
    local, ml = _validated("local", tmp_path)
    ray, mr = _validated("ray", tmp_path)
    assert ml["funnel"]["valid"] == 2 and ml["funnel"]["rescued_by_fix"] == 1 and local["ledger"]["calls"] >= 1   # the teacher fixed one
    for k in ("reports", "attempts", "funnel", "ladder", "ledger"): assert ray[k] == local[k], k
    assert sorted(ray["folders"]) == sorted(local["folders"])
    for tid in ray["folders"]:                        # each task folder as the loop left it (the fix, the baseline's scores), swapped in
        assert ray["folders"][tid] == local["folders"][tid], tid
    assert fake.calls == {"task-crash": 2, "wine": 1}      # the lost one again; none twice after it was done
    assert fake.remotes[0] == dict(num_cpus=1.0, num_gpus=0.0, resources={"synthsci_sandbox": 1}, max_retries=0)
    assert (mr["status"], mr["units_done"], mr["ray"]["resubmitted"], mr["ray"]["nodes_lost"]) == ("complete", 2, {"task-crash": 1}, ["a" * 56])
    assert not (Path(tempfile.gettempdir()) / mr["ray"]["scratch"]).exists()   # the copies on the "nodes", cleared
    # more losses than node_retries: the unit is not done (a rerun does it), and the stage says so
    monkeypatch.setattr(cluster, "ray_connect", lambda spec, **kw: LosingRay(lose={"wine"}, run_lost=False))
    _stage_tasks(iris_task, Run("ray0", tmp_path), tmp_path / "r0", bugs=())
    run_validate(load_config(overrides=base + ["run_id=ray0", "stages.validate.ray_address=auto", "stages.validate.node_retries=0"]))
    m = Run("ray0", tmp_path).manifest["stages"]["05_validated"]
    assert m["units_done"] == 0 and m["errors"] == {"wine": "SynthsciError: validation wine: its Ray node was lost 1 times (node_retries: 0)"}


def test_ray_validation_options():
    from synthsci.core import SynthsciError
    spec = ValidateOptions(ray_address="auto", node_retries=5, ship_tasks=False, sandbox_resource=None, workers=4).ray_spec()
    assert (spec.address, spec.node_retries, spec.ship_tasks, spec.resource, spec.workers, spec.stage, spec.unit) == ("auto", 5, False, None, 4, "validate", "validation")
    with pytest.raises(SynthsciError, match=r"^stages\.validate\.node_retries must be >= 0, not -1$"): ValidateOptions(node_retries=-1)
