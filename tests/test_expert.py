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
