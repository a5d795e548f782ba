"""One evaluator for every task (issue 10, items 5 and 6): the generated tasks' and the held-out suite's evaluators come
from the same template, which checks a submission before it scores it. Each bad submission (repeated ids, the attack
that lifted a suite score from 0.86 to 0.9994; missing or extra ids or columns; NaN or infinite predictions; an empty or
binary file) is refused with its reason on one line and no score; an honest submission scores exactly as before."""
import gzip, json, os, shutil, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from synthsci.aci import load_task
from synthsci.cards import catalog_card
from synthsci.evaluate import SUITE_VERSION, make_suite_task
from synthsci.llm import ScriptedLLM
from synthsci.taskgen import generate_task
from synthsci.templates import BUGS, EVALUATE, METRIC_CODE, REJECTIONS, evaluate_code, scripted_taskgen, task_files
from synthsci.validate import ValidateOptions, validate_task
from synthsci.catalog import CATALOG
from synthsci.core import Proposal
from synthsci.proposals import METRICS

# the evaluators as they were before this change, verbatim: the honest scores must not move
OLD_SUITE_EVALUATE = '''"""Score submission.csv on one split's hidden labels; print a JSON dict of metrics."""
import argparse, json, os
import pandas as pd

TARGET, METRIC = {target!r}, {metric!r}
p = argparse.ArgumentParser()
p.add_argument("--submission_file", default="submission.csv")
args = p.parse_args()
split = os.environ.get("SYNTHSCI_SPLIT", "test")   # 'validation' for validate, 'test' for submit
truth = pd.read_csv(os.path.join(os.environ.get("SYNTHSCI_HIDDEN", "hidden"), f"{{split}}.csv"))
sub = pd.read_csv(args.submission_file)
if "id" not in sub.columns or TARGET not in sub.columns:
    raise SystemExit(f"submission.csv needs the columns id and {{TARGET}}; it has {{list(sub.columns)}}")
m = truth.merge(sub[["id", TARGET]], on="id", how="left", suffixes=("", "_pred"))
if m[TARGET + "_pred"].isna().any():
    raise SystemExit(f"submission.csv misses {{int(m[TARGET + '_pred'].isna().sum())}} of the ids in data/test.csv")
y, pred = m[TARGET].to_numpy(), m[TARGET + "_pred"].to_numpy()
if METRIC == "accuracy": score = float((y == pred).mean())
else: score = float(1 - ((y - pred.astype(float)) ** 2).sum() / ((y - y.mean()) ** 2).sum())
print(json.dumps({{METRIC: round(score, 4)}}))
'''

OLD_GENERATED_EVALUATE = '''"""Score a submission on one split's hidden labels and print a JSON dict of metrics."""
import argparse, json, os
import numpy as np, pandas as pd

TARGET = "__TARGET__"
p = argparse.ArgumentParser()
p.add_argument("--submission_file", default="submission.csv")
args = p.parse_args()
split = os.environ.get("SYNTHSCI_SPLIT", "validation")   # 'validation' for validate, 'test' for the final submission
truth = pd.read_csv(os.path.join(os.environ.get("SYNTHSCI_HIDDEN", "hidden"), f"{split}.csv"))
sub = pd.read_csv(args.submission_file)
if "id" not in sub.columns or TARGET not in sub.columns:
    raise SystemExit(f"submission.csv must have the columns id,{TARGET}; got {list(sub.columns)}")
m = truth.merge(sub[["id", TARGET]].drop_duplicates("id"), on="id", how="left", suffixes=("", "_pred"))
if m[TARGET + "_pred"].isna().any():
    raise SystemExit(f"submission.csv has no prediction for {int(m[TARGET + '_pred'].isna().sum())} of the {len(m)} ids scored")

def labels(a):
    "Class labels compared as numbers when they look like numbers (1 == 1.0), else as text."
    n = pd.to_numeric(pd.Series(a), errors="coerce")
    return n.to_numpy(float) if n.notna().all() else pd.Series(a).astype(str).to_numpy()

y, p = m[TARGET].to_numpy(), m[TARGET + "_pred"].to_numpy()
__SCORE__
print(json.dumps({"__METRIC__": round(float(score), 6)}))
'''


def old_evaluator(kind: str, target: str, metric: str) -> str:
    if kind == "suite": return OLD_SUITE_EVALUATE.format(target=target, metric=metric)
    return OLD_GENERATED_EVALUATE.replace("__TARGET__", target).replace("__METRIC__", metric).replace("__SCORE__", METRIC_CODE[metric])


def evaluate(folder, submission, split: str = "test", script: str = "evaluate.py") -> subprocess.CompletedProcess:
    "The task's evaluator as a plain process in the task folder (its pristine starter files), on `split`'s hidden labels."
    return subprocess.run([sys.executable, script, "--submission_file", str(submission)], cwd=folder, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "SYNTHSCI_SPLIT": split, "SYNTHSCI_HIDDEN": str(Path(folder) / "hidden")})


def json_dicts(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        try: d = json.loads(line)
        except json.JSONDecodeError: continue
        if isinstance(d, dict): out.append(d)
    return out


def score_of(r: subprocess.CompletedProcess) -> dict:
    assert r.returncode == 0, r.stderr
    (d,) = json_dicts(r.stdout)
    return d


def assert_rejected(r: subprocess.CompletedProcess, reason: str, what: str = "submission"):
    "Refused: a non-zero status, one line on stderr `<what> rejected: <reason>: <explanation>`, no score anywhere."
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{what} rejected: {reason}: ") and len(lines[0]) > len(f"{what} rejected: {reason}: ") + 10, lines[0]
    assert json_dicts(r.stdout + r.stderr) == [] and r.stdout.strip() == ""


def proposal(dataset_id: str) -> Proposal:
    e = CATALOG[dataset_id]
    metric, direction, idea = METRICS[e.task_kind]
    return Proposal(id=f"proposal-{dataset_id.replace('/', '-')}", parent_id="topic-x", topic=f"A study of {e.title}", dataset_id=dataset_id,
                    target=e.target, metric=metric, direction=direction, task_kind=e.task_kind, baseline_idea=idea, resources={"cpu_minutes": 2})


class T:
    "A built task: its folder, kind ('generated' or 'suite'), target, metric, recorded baseline score, baseline submission."
    def __init__(self, path, kind, tmp):
        self.path, self.kind = Path(path), kind
        task = load_task(path)
        self.metric, self.recorded = task.metric, task.baseline_scores[0]
        self.target = [c for c in pd.read_csv(self.path / "hidden/test.csv").columns if c != "id"][0]
        subprocess.run([sys.executable, "baseline.py"], cwd=path, check=True, capture_output=True, timeout=300)
        self.baseline = Path(tmp) / f"{self.path.name}-baseline.csv"
        shutil.move(self.path / "submission.csv", self.baseline)
        self.honest = pd.read_csv(self.baseline)
        self.truth = pd.concat([pd.read_csv(self.path / "hidden/validation.csv"), pd.read_csv(self.path / "hidden/test.csv")])

    def __repr__(self): return f"{self.kind}:{self.path.name}"


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    "Two generated tasks (classification, regression; validated, which records their baseline) and two suite tasks."
    d = tmp_path_factory.mktemp("evaluator")
    out = {}
    for dataset_id in ("sklearn/digits", "sklearn/diabetes"):
        t = generate_task(proposal(dataset_id), catalog_card(dataset_id), ScriptedLLM(scripted_taskgen(p_bug=0)), d / "gen")
        report, _ = validate_task(t, None, ValidateOptions(timeout_s=60, eval_timeout_s=60, agent_check=False, k=1, quality=False))
        assert report.passed, report.errors
        out[dataset_id] = T(t.path, "generated", d)
    for dataset_id, metric in (("sklearn/breast_cancer", "accuracy"), ("statsmodels/fair", "r2")):
        out[dataset_id] = T(make_suite_task(dataset_id, metric, d / "suite", max_rows=300).path, "suite", d)
    return out


NAMES = ("sklearn/digits", "sklearn/diabetes", "sklearn/breast_cancer", "statsmodels/fair")


def test_the_suite_and_the_generated_tasks_share_one_evaluator_template(tasks):
    for t in tasks.values():
        assert (t.path / "evaluate.py").read_text() == evaluate_code(t.target, t.metric), t
    assert {t.metric for t in tasks.values()} == {"accuracy", "rmse", "r2"} and SUITE_VERSION >= 2
    head = EVALUATE[:EVALUATE.index("__SCORE__")]
    assert all(evaluate_code(t.target, t.metric).startswith(head.replace("__TARGET__", t.target)) for t in tasks.values())


@pytest.mark.parametrize("name", NAMES)
def test_the_baseline_scores_its_recorded_score_exactly_as_the_old_evaluators_did(tasks, name, tmp_path):
    t = tasks[name]
    assert t.recorded == score_of(evaluate(t.path, t.baseline))            # what the task recorded is what the evaluator says
    for split in ("validation", "test"):
        new = score_of(evaluate(t.path, t.baseline, split))[t.metric]
        (t.path / "_old.py").write_text(old_evaluator(t.kind, t.target, t.metric))
        old = score_of(evaluate(t.path, t.baseline, split, "_old.py"))[t.metric]
        if t.kind == "suite":   # the suite printed 4 decimals; the shared evaluator prints 6 (as validation records them)
            exact = OLD_SUITE_EVALUATE.replace("round(score, 4)", "score").format(target=t.target, metric=t.metric)
            (t.path / "_old.py").write_text(exact)
            assert round(new, 4) == old and new == round(score_of(evaluate(t.path, t.baseline, split, "_old.py"))[t.metric], 6)
        else: assert new == old
        (t.path / "_old.py").unlink()
    # the same rows in another order, or with the ids written as floats, are the same submission
    shuffled = t.honest.sample(frac=1, random_state=0)
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    shuffled.assign(id=shuffled["id"].astype(float)).to_csv(tmp_path / "float_ids.csv", index=False)
    assert score_of(evaluate(t.path, tmp_path / "shuffled.csv")) == score_of(evaluate(t.path, tmp_path / "float_ids.csv")) == t.recorded


def best_rows(t: T) -> pd.DataFrame:
    "The baseline's most accurate rows: those it gets right (a classifier), its best quarter (a regressor)."
    m = t.honest.merge(t.truth, on="id", suffixes=("", "_true"))
    if t.metric == "accuracy": return m[m[t.target] == m[t.target + "_true"]][["id", t.target]]
    err = (m[t.target] - m[t.target + "_true"]).abs()
    return m[err <= err.quantile(0.25)][["id", t.target]]


def naive_accuracy(t: T, sub: pd.DataFrame) -> float:
    "The old suite evaluator's way: merge on id without checking it."
    truth = pd.read_csv(t.path / "hidden/test.csv")
    m = truth.merge(sub, on="id", how="left", suffixes=("", "_pred"))
    return float((m[t.target] == m[t.target + "_pred"]).mean())


def _csv(df: pd.DataFrame, **kw) -> bytes: return df.to_csv(index=False, **kw).encode()


CASES = {   # name -> (the bad file's bytes from the task, the reason)
    "repeated_confident_rows": (lambda t: _csv(pd.concat([t.honest] + [best_rows(t)] * 1000)), "duplicate_ids"),
    "repeated_true_labels": (lambda t: _csv(pd.concat([t.honest] + [pd.read_csv(t.path / "hidden/test.csv")] * 1000)), "duplicate_ids"),
    "one_repeat": (lambda t: _csv(pd.concat([t.honest, t.honest.tail(1)])), "duplicate_ids"),
    "missing_ids": (lambda t: _csv(t.honest.iloc[3:]), "missing_ids"),
    "header_only": (lambda t: f"id,{t.target}\n".encode(), "empty"),
    "extra_ids": (lambda t: _csv(pd.concat([t.honest, t.honest.head(2).assign(id=t.honest["id"].max() + 1 + pd.Series([0, 1]).values)])), "extra_ids"),
    "replaced_ids": (lambda t: _csv(t.honest.assign(id=t.honest["id"] + 10 ** 6)), "missing_ids"),
    "extra_column": (lambda t: _csv(t.honest.assign(confidence=1.0)), "columns"),
    "index_column": (lambda t: t.honest.to_csv().encode(), "columns"),
    "missing_column": (lambda t: _csv(t.honest[["id"]]), "columns"),
    "renamed_target": (lambda t: _csv(t.honest.rename(columns={t.target: "prediction"})), "columns"),
    "empty_prediction": (lambda t: _csv(t.honest.astype({t.target: object}).assign(**{t.target: [None] + list(t.honest[t.target][1:])})), "missing_values"),
    "empty_id": (lambda t: _csv(t.honest.astype({"id": object}).assign(id=[None] + list(t.honest["id"][1:]))), "missing_values"),
    "nan_prediction": (lambda t: _csv(t.honest.astype({t.target: float}).assign(**{t.target: [float("nan")] + list(t.honest[t.target][1:])}), na_rep="nan"), "non_finite"),
    "inf_prediction": (lambda t: _csv(t.honest.astype({t.target: float}).assign(**{t.target: list(t.honest[t.target][:-1]) + [float("inf")]})), "non_finite"),
    "minus_inf_prediction": (lambda t: _csv(t.honest.astype({t.target: float}).assign(**{t.target: [-float("inf")] + list(t.honest[t.target][1:])})), "non_finite"),
    "empty_file": (lambda t: b"", "empty"),
    "blank_lines": (lambda t: b"\n \n", "empty"),
    "gzipped_csv": (lambda t: gzip.compress(t.baseline.read_bytes(), mtime=0), "unparseable"),
    "binary_bytes": (lambda t: bytes(range(128, 256)) * 8, "unparseable"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", NAMES)
def test_a_bad_submission_is_rejected_with_its_reason_and_no_score(tasks, name, case, tmp_path):
    t = tasks[name]
    make, reason = CASES[case]
    f = tmp_path / "submission.csv"
    f.write_bytes(make(t))
    assert_rejected(evaluate(t.path, f, "validation" if case == "one_repeat" else "test"), reason)   # the checks come before any labels


@pytest.mark.parametrize("name", ("sklearn/digits", "sklearn/breast_cancer"))
def test_the_repeated_rows_attack_would_have_lifted_a_naive_score(tasks, name):
    "The attack the duplicate check stops is real: merged on id without a check, the repeats lift the accuracy."
    t = tasks[name]
    honest = naive_accuracy(t, t.honest)
    assert honest == t.recorded["accuracy"] or round(honest, 6) == t.recorded["accuracy"]
    assert honest < 1 and naive_accuracy(t, pd.concat([t.honest] + [best_rows(t)] * 1000)) > max(0.99, honest)


def test_a_non_finite_metric_is_never_printed(tasks, tmp_path):
    t = tasks["statsmodels/fair"]                      # r2 of constant labels divides by zero
    work = tmp_path / "task"; shutil.copytree(t.path, work)
    (work / "hidden/test.csv").write_text(pd.read_csv(t.path / "hidden/test.csv").assign(**{t.target: 1.0}).to_csv(index=False))
    assert_rejected(evaluate(work, t.baseline), "non_finite", what="score")


def test_a_missing_submission_file_is_rejected(tasks, tmp_path):
    assert_rejected(evaluate(tasks["sklearn/digits"].path, tmp_path / "nothing.csv"), "unreadable")


def test_every_reason_is_named_and_the_seeded_evaluator_bugs_still_bite(tasks, tmp_path):
    assert set(r for _, r in CASES.values()) | {"unreadable", "row_count"} == set(REJECTIONS)
    t = tasks["statsmodels/fair"]                      # a regression: an unseeded subsample scores differently each time
    files = task_files({"kind": "tabular-regression", "target": t.target, "metric": t.metric})
    work = tmp_path / "task"; shutil.copytree(t.path, work)
    for name in BUGS: assert BUGS[name](files) != files, name
    (work / "evaluate.py").write_text(BUGS["wrong_metric"](files)["evaluate.py"])
    assert list(score_of(evaluate(work, t.baseline))) == [f"score_{t.metric}"]
    (work / "evaluate.py").write_text(BUGS["nondeterministic"](files)["evaluate.py"])
    scores = {score_of(evaluate(work, t.baseline))[t.metric] for _ in range(3)}
    assert len(scores) > 1


def scores_over_runs(folder, submission, n: int = 4) -> list[dict]:
    """The score of one submission in `n` runs of the task's evaluator, each a fresh process with its own
    PYTHONHASHSEED (a nondeterminism in string hashing or set order shows only across processes)."""
    out = []
    for seed in range(1, n + 1):
        r = subprocess.run([sys.executable, "evaluate.py", "--submission_file", str(submission)], cwd=folder, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONHASHSEED": str(seed), "SYNTHSCI_SPLIT": "test", "SYNTHSCI_HIDDEN": str(Path(folder) / "hidden")})
        out.append(score_of(r))
    return out


def deterministic(scores: list[dict]) -> bool: return len(scores) > 2 and all(s == scores[0] for s in scores)


@pytest.mark.parametrize("name", ("sklearn/digits", "statsmodels/fair"))
def test_the_evaluator_gives_the_same_score_every_run_and_the_check_catches_planted_noise(tasks, name, tmp_path):
    t = tasks[name]
    runs = scores_over_runs(t.path, t.baseline)
    assert deterministic(runs) and runs[0] == t.recorded                      # four processes, four hash seeds, one score
    # planted nondeterminism, each added to the score before it is printed (rounded to 6 decimals, so each moves the 6th
    # decimal at least): the machine's randomness, the clock, and string hashing (the same within one process)
    noise = {"urandom": "int.from_bytes(__import__('os').urandom(2), 'big') * 1e-6",
             "clock": "(__import__('time').time_ns() // 1000 % 1000) * 1e-6",
             "hash_seed": "(hash('synthsci') % 1000) * 1e-6"}
    for kind, expr in noise.items():
        work = tmp_path / kind
        shutil.copytree(t.path, work)
        code = (work / "evaluate.py").read_text()
        assert code.count("print(json.dumps(") == 1
        (work / "evaluate.py").write_text(code.replace("print(json.dumps(", f"score = float(score) + {expr}\nprint(json.dumps("))
        assert not deterministic(scores_over_runs(work, t.baseline)), kind
