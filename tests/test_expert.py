"""The scripted expert submits its best attempt, not its last: it keeps the best validation score in the metric's
direction, puts that attempt's submission back before submitting, checks it by validating, and re-runs the best
script when its predictions were lost or overwritten. One run on a fixture task in the sandbox, and scripted
observations (hand-written) for the recovery paths."""
import filecmp
from pathlib import Path
import pytest
from synthsci.aci import load_task
from synthsci.agent import AgentConfig, run_agent
from synthsci.expert import ScriptedExpert, score_of, task_direction
from synthsci.sandbox import SandboxLimits
from synthsci.seal import score_submission
from synthsci.aci import task_yaml

FIX = Path(__file__).parent / "fixtures" / "tasks"
DIABETES = load_task(FIX / "diabetes")     # rmse, lower is better, baseline (test split) 57.3034
GOOD = ("linear_model.Ridge(alpha=1.0)", "preprocessing.StandardScaler(), ")
BAD = ("linear_model.Lasso(alpha=100000.0)", "")   # every coefficient zero: predicts the mean, far worse than the baseline
CALM = dict(p_typo=0.0, p_runtime_error=0.0, p_slow=0.0, run_timeout_s=60)


def _validations(t):
    return [(s.action.splitlines()[0], s.score["rmse"]) for s in t.steps if s.score and s.action == "validate"]


def test_a_worse_later_attempt_is_not_submitted(tmp_path):
    t = run_agent(DIABETES, ScriptedExpert(0, candidates=[GOOD, BAD], **CALM), tmp_path / "ws", AgentConfig(max_steps=40),
                  traj_id="best", limits=SandboxLimits(timeout=120))
    assert t.exit_status == "submitted", t.exit_status
    vals = [v for _, v in _validations(t)]
    baseline, good, bad, check = vals            # the baseline, attempt 1, attempt 2, the check before submitting
    assert good < baseline < bad, vals           # the fixture does what it is for: the later attempt is worse
    assert check == good                         # the submission in place validates as the best attempt, not the last
    assert [s.action for s in t.steps][-3:] == ["cp best_submission.csv submission.csv", "validate", "submit"]
    # the submitted file is the best attempt's predictions, and its test score is theirs: score them again on the test split
    ws = tmp_path / "ws"
    again = tmp_path / "again"; again.mkdir()
    (again / "submission.csv").write_bytes((ws / "best_submission.csv").read_bytes())
    assert filecmp.cmp(ws / "submission.csv", ws / "best_submission.csv", shallow=False)
    s = score_submission(DIABETES, task_yaml(DIABETES.path), again, "test", backend=t.provenance.get("sandbox"), limits=SandboxLimits(timeout=120))
    assert s.metrics is not None and t.score[-1]["rmse"] == s.metrics["rmse"]
    assert t.score[-1]["rmse"] < DIABETES.baseline_scores[0]["rmse"]       # and it beats the baseline on the test split


class FakeEnv:
    "Hand-written observations: validate answers from a queue of scores; `cp` of the best submission can be made to fail."
    def __init__(self, scores, cp_fails=False):
        self.scores, self.cp_fails, self.actions = list(scores), cp_fails, []

    def __call__(self, action):
        self.actions.append(action)
        if action == "validate": return f"Evaluation Score: {{'rmse': {self.scores.pop(0)}}}\n(Current Step: 1, Remaining Steps: 30)"
        if action.startswith("cp best_submission.csv submission.csv") and self.cp_fails:
            return "cp: cannot stat 'best_submission.csv': No such file or directory\n(Remaining Steps: 30)"
        if "python" in action: return "wrote submission.csv\n(Remaining Steps: 30)"
        if action == "ls -a": return "baseline.py data evaluate.py sample_submission.csv\n(Remaining Steps: 30)"
        return "(Remaining Steps: 30)"


def drive(expert, env, task_text="Predict y. See sample_submission.csv. The metric is rmse (lower is better).", limit=60):
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": task_text}]
    for _ in range(limit):
        c = expert.complete(msgs)
        action = c.text.split("```\n")[1].rsplit("\n```", 1)[0]
        if action == "submit": return env.actions
        msgs += [{"role": "assistant", "content": c.text}, {"role": "user", "content": env(action)}]
    raise AssertionError("the expert never submitted")


def test_best_is_kept_in_the_metric_direction():
    # lower is better: attempt 1 (50) is the best, attempt 2 (70) worse; the check before submitting sees 50
    e = ScriptedExpert(0, candidates=[GOOD, BAD], **CALM)
    acts = drive(e, FakeEnv([60, 50, 70, 50]))
    assert (e.best, e.best_script, e.validations) == (50, "best_train.py", [("the baseline", 60), ("attempt 1", 50), ("attempt 2", 70)])
    assert acts[-2:] == ["cp best_submission.csv submission.csv", "validate"]
    # the same scores when higher is better: attempt 2 (70) is the best
    e = ScriptedExpert(0, candidates=[GOOD, BAD], **CALM)
    drive(e, FakeEnv([60, 50, 70, 70]), "Predict y. See sample_submission.csv. The metric is r2 (higher is better).")
    assert (e.best, e.best_label.split(" (")[0]) == (70, "attempt 2")


def test_overwritten_predictions_are_regenerated_by_the_best_script():
    # the check before submitting validates 70, not the best 50: the predictions were overwritten, so best_train.py runs again
    e = ScriptedExpert(0, candidates=[GOOD, BAD], **CALM)
    acts = drive(e, FakeEnv([60, 50, 70, 70, 50]))
    assert acts[-4:] == ["cp best_submission.csv submission.csv", "validate", 'timeout 60 python best_train.py || echo "exit status $?"', "validate"]
    # the saved submission is gone: the best script (here the baseline, no attempt beat it) regenerates it before the check
    e = ScriptedExpert(0, candidates=[BAD], **CALM)
    acts = drive(e, FakeEnv([60, 70, 60], cp_fails=True))
    assert acts[-3:] == ["cp best_submission.csv submission.csv", "python baseline.py", "validate"]


def test_direction_comes_from_the_task_text_first():
    assert task_direction("The metric is accuracy (higher is better).", "error_rate") == "max"
    assert task_direction("no words about it", "rmse") == "min" and task_direction("", "accuracy") == "max"
    assert score_of("Evaluation Score: {'rmse': 2.5}") == {"rmse": 2.5}


# --- other kinds of task: the expert tells the kind and tries candidates in that kind's data format ---

def _forecast_task(root):
    "A time-series-forecasting task (statsmodels/co2) built by the scripted teacher's code path, its baseline's test score beside it."
    import shutil, subprocess, sys
    from synthsci.cards import catalog_card
    from synthsci.catalog import CATALOG
    from synthsci.core import Proposal
    from synthsci.llm import ScriptedLLM
    from synthsci.proposals import METRICS
    from synthsci.taskgen import TaskgenOptions, generate_task
    from synthsci.templates import scripted_taskgen
    e = CATALOG["statsmodels/co2"]
    metric, direction, idea = METRICS[e.task_kind]
    p = Proposal(id="proposal-expert-co2", parent_id="topic-x", topic=f"A study of {e.title}", dataset_id=e.id, target="co2", metric=metric,
                 direction=direction, task_kind=e.task_kind, baseline_idea=idea, resources={"cpu_minutes": 2})
    t = generate_task(p, catalog_card(e.id), ScriptedLLM(scripted_taskgen(p_bug=0)), root / "tasks", TaskgenOptions(min_eval_rows=30))
    task = load_task(t.path)
    ws = root / "baseline"
    shutil.copytree(t.path, ws, ignore=shutil.ignore_patterns("hidden", "reference*"))
    subprocess.run([sys.executable, "baseline.py"], cwd=ws, check=True, capture_output=True)
    base = score_submission(task, task_yaml(t.path), ws, "test", limits=SandboxLimits(timeout=120)).metrics[task.metric]
    return task, base


def test_the_expert_beats_the_baseline_on_a_forecasting_task(tmp_path):
    task, base = _forecast_task(tmp_path)
    assert task.metric == "mae" and task.direction == "min"
    t = run_agent(task, ScriptedExpert(0, attempts=(1, 1), **CALM), tmp_path / "ws", AgentConfig(max_steps=30), traj_id="co2", limits=SandboxLimits(timeout=120))
    assert t.exit_status == "submitted", t.exit_status
    created = next(s.action for s in t.steps if s.action.startswith("edit 1:1"))
    assert "def backtest" in created and "CONFIG" not in created     # its own forecasting script, not the tabular one
    assert any("time-series-forecasting task (the description names it)" in s.thought for s in t.steps)
    assert t.score[-1]["mae"] < base, (t.score[-1], base)            # the submission beats the baseline on the test split


def test_seeds_differ_and_the_kind_comes_from_the_columns():
    text = "Predict y. See sample_submission.csv. The metric is accuracy (higher is better)."
    class Env(FakeEnv):   # hand-written observations: a series task whose description does not name its kind
        def __call__(self, action):
            if action.startswith("head"): self.actions.append(action); return "id,c0_t0,c0_t1,c0_t2,y\n1,0.5,0.7,0.1,a\n(Remaining Steps: 30)"
            return super().__call__(action)
    runs = []
    for seed in (0, 1):
        e = ScriptedExpert(seed, attempts=(2, 2), **CALM)
        runs.append(drive(e, Env([0.5, 0.6, 0.7, 0.7]), text))
        assert e.kind == "time-series-classification" and "columns" in e.kind_reason
        assert "def rocket" in next(a for a in runs[-1] if a.startswith("edit 1:1"))
    assert runs[0] != runs[1]
