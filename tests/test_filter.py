"""The filters and their funnel, truncation at turn boundaries, the filter stage's errors, on recorded trajectories, and the
range checks of the filter and SFT data options."""
import json, shutil
from pathlib import Path
import pytest
from synthsci.core import SynthsciError, Step, Task, Trajectory, load_config, read_jsonl, write_jsonl
from synthsci.filter import (OFF_NOTE, FilterOptions, action_signature, apply_filters, improves, make_filters, not_degenerate, read_funnel,
                             run_filter, sft_messages, sft_tools, truncate_messages, unique)
from synthsci.core import Run
from synthsci.sftdata import SFTDataOptions, run_sftdata
from synthsci.student import count_tokens, student_tokenizer

FIXTURES = Path(__file__).parent / "fixtures" / "trajectories"


@pytest.fixture(scope="module")
def trajs():
    return {t.id: t for p in sorted(FIXTURES.glob("traj-*.jsonl")) for t in read_jsonl(Trajectory, p)}


@pytest.fixture(scope="module")
def tasks():
    return {t.id: t for t in read_jsonl(Task, FIXTURES / "tasks.jsonl")}


@pytest.fixture(scope="module")
def tok():
    return student_tokenizer("local")


def test_funnel_counts_what_each_filter_drops(trajs, tasks, tok):
    filters = make_filters(FilterOptions(min_improvement=0.0), tasks, tok)
    left, dropped_by = list(trajs.values()), {}
    for name, keep in filters:  # replay the funnel one filter at a time to know who dropped what
        dropped_by[name] = sorted(t.id for t in left if keep(t) is not True)
        left = [t for t in left if t.id not in dropped_by[name]]
    # the loop only matched the baseline (58.31): not strictly better, so the improvement step drops it before the degenerate one
    assert dropped_by == {"integrity": [], "success": ["traj-iris-fail"], "improvement": ["traj-diabetes-loop", "traj-motions-a"], "degenerate": [],
                          "duplicate": ["traj-iris-b"], "max_tokens": []}
    kept, funnel = apply_filters(list(trajs.values()), make_filters(FilterOptions(min_improvement=0.0), tasks, tok))
    assert [t.id for t in kept] == [t.id for t in left]
    assert [(f["step"], f["kept"], f["dropped"]) for f in funnel] == [
        ("input", 7, 0), ("integrity", 7, 0), ("success", 6, 1), ("improvement", 4, 2), ("degenerate", 4, 0), ("duplicate", 3, 1), ("max_tokens", 3, 0)]
    assert funnel[3]["drops"]["traj-motions-a"] == "not better than the baseline: submitted accuracy 0.7 vs the baseline's 0.75 (max), a gain of -0.05 <= 0"


def test_filters_can_be_switched_off(trajs, tasks):
    opts = FilterOptions(require_success=False, dedupe=False, max_tokens=None, max_repeats=100, max_empty_thoughts=1.0)
    kept, funnel = apply_filters(list(trajs.values()), make_filters(opts, tasks))
    assert len(kept) == 7 and [f["step"] for f in funnel] == ["input", "integrity", "degenerate"]   # integrity cannot be switched off


def test_max_tokens_is_counted_in_student_tokens(trajs, tasks, tok):
    lengths = {k: count_tokens(tok, sft_messages(t), sft_tools(t)) for k, t in trajs.items()}
    limit = lengths["traj-iris-a"] - 1          # the longest run, one token over the limit
    assert limit >= max(v for k, v in lengths.items() if not k.startswith("traj-iris-a") and k != "traj-iris-b")
    kept, funnel = apply_filters(list(trajs.values()), make_filters(FilterOptions(max_tokens=limit), tasks, tok))
    assert "traj-iris-a" not in {t.id for t in kept} and funnel[-1]["step"] == "max_tokens" and funnel[-1]["dropped"] == 1
    # tools are part of what the student reads: the tool-call run is longer with its schemas than without
    d = trajs["traj-diabetes-a"]
    assert count_tokens(tok, sft_messages(d), sft_tools(d)) > count_tokens(tok, sft_messages(d)) + 50


def test_degenerate_needs_the_same_action_failing_repeatedly():
    def run(actions, observations, thought="think"):
        return Trajectory(id="x", task_id="t", steps=[Step(thought=thought, action=a, observation=o) for a, o in zip(actions, observations)])
    keep = not_degenerate(max_repeats=3)
    err = "Traceback (most recent call last):\nValueError: bad"
    assert keep(run(["ls", "ls", "ls"], ["a.py"] * 3))                                  # repeating a working command is fine
    assert keep(run(["python a.py", "python b.py", "python a.py"], [err] * 3))          # different actions
    assert not keep(run(["python a.py"] * 3, [err] * 3))
    assert keep(run(["python a.py"] * 2 + ["ls"] + ["python a.py"] * 2, [err] * 2 + ["a.py"] + [err] * 2))  # the run resets
    assert not keep(run(["ls", "cat a", "ls"], ["a"] * 3, thought=""))                  # empty thoughts
    assert not keep(Trajectory(id="x", task_id="t"))                                    # no steps at all


def _with_actions(t, tid, task_id, f):
    d = t.to_dict()
    return Trajectory.from_dict({**d, "id": tid, "task_id": task_id, "steps": [{**s, "action": f(s["action"])} for s in d["steps"]]})


def test_near_duplicates_across_tasks_are_dropped_naming_the_kept_run(trajs):
    "Hand-written variants of one fixture run: another task's id, absolute paths and numbers (a near-duplicate), and one changed action (not)."
    a = _with_actions(trajs["traj-iris-a"], "traj-iris-a", "task-iris",
                      lambda x: x.replace("ls -a", "ls -a task-iris").replace('"data/', '"/home/agent/workspace/data/'))
    other_task = _with_actions(a, "copy", "task-other", lambda x: x.replace("ls -a task-iris", "ls -a task-other").replace("16", "40")
                               .replace("/home/agent/workspace/data/", "/runs/r1/task-other/data/").replace("n_estimators=100", "n_estimators=300"))
    same_task = Trajectory.from_dict({**a.to_dict(), "id": "copy2"})
    different = _with_actions(a, "diff", "task-other", lambda x: x.replace("python baseline.py", "python train.py").replace("task-iris", "task-other"))
    assert action_signature(other_task) == action_signature(a) and action_signature(different) != action_signature(a)
    assert action_signature(other_task)[0] == "ls -a TASK" and "n_estimators=N" in action_signature(a)[2] and 'pd.read_csv("PATH")' in action_signature(a)[2]
    keep = unique()
    verdicts = [keep(t) for t in (a, other_task, same_task, different)]
    assert verdicts[0] is True and verdicts[3] is True
    assert verdicts[1] == verdicts[2] == "duplicate: of traj-iris-a (the same actions once task ids, paths and numbers are normalized)"
    # the old rule (task, assistant turns) kept the copy on another task; a similarity threshold also drops the one-action variant
    loose = unique(0.8)
    assert [loose(t) is True for t in (a, different)] == [True, False]
    assert loose(different).startswith("duplicate: of traj-iris-a (0.83 alike")
    kept, funnel = apply_filters([a, other_task, same_task, different], [("duplicate", unique())])
    assert [t.id for t in kept] == ["traj-iris-a", "diff"] and funnel[1]["reasons"] == {"duplicate": 2}
    assert set(funnel[1]["drops"]) == {"copy", "copy2"} and all("of traj-iris-a" in w for w in funnel[1]["drops"].values())


def test_improvement_is_the_submission_against_the_measured_baseline(trajs, tasks):
    "A hand-written run that validated better than the baseline but submitted worse (MAE 298 -> 745 in the quickstart) is dropped."
    d = trajs["traj-diabetes-a"]       # rmse, lower is better, baseline 58.31
    worse = Trajectory.from_dict({**d.to_dict(), "id": "worse", "score": [{"rmse": 50.0}, {"rmse": 75.0}]})
    unsubmitted = Trajectory.from_dict({**d.to_dict(), "id": "nosub", "exit_status": "exit_cost", "score": [{"rmse": 50.0}]})
    keep = improves(tasks, 0.0)
    assert keep(d) is True
    assert keep(worse) == "not better than the baseline: submitted rmse 75 vs the baseline's 58.31 (min), a gain of -16.69 <= 0"
    assert keep(unsubmitted) == "no scored submission: the run ended exit_cost"
    assert improves(tasks, 4.0)(d) is True and improves(tasks, 4.5)(d) is not True      # 58.31 - 54.07 = 4.24
    no_base = {**tasks, "task-diabetes": Task.from_dict({**tasks["task-diabetes"].to_dict(), "baseline_scores": []})}
    kept, funnel = apply_filters([d, trajs["traj-iris-a"]], [("improvement", improves(no_base, 0.0))])
    assert [t.id for t in kept] == ["traj-iris-a"] and funnel[1]["reasons"] == {"no measured baseline": 1}
    assert funnel[1]["drops"]["traj-diabetes-a"].startswith("no measured baseline: task task-diabetes's baseline_scores hold no rmse")


def test_filter_off_keeps_failed_runs_and_says_so(trajs, tasks):
    kept, funnel = apply_filters(list(trajs.values()), make_filters(FilterOptions(enabled=False, min_improvement=0.0), tasks))
    assert len(kept) == 7 and "traj-iris-fail" in {t.id for t in kept}
    assert [f["step"] for f in funnel] == ["input", "integrity", "filter off"] and funnel[-1]["note"] == OFF_NOTE
    assert "failed" in OFF_NOTE and "integrity" in OFF_NOTE


def test_truncation_is_maximal_and_ends_on_an_assistant_turn(trajs, tok):
    for tid in ("traj-iris-a", "traj-diabetes-a"):
        t = trajs[tid]
        msgs, tools = sft_messages(t), sft_tools(t)
        n = lambda ms: count_tokens(tok, ms, tools)
        ends = [i + 1 for i, m in enumerate(msgs) if m["role"] == "assistant"]
        for limit in range(n(msgs[:ends[0]]) - 5, n(msgs) + 10, 97):
            cut = truncate_messages(msgs, n, limit)
            if not cut:
                assert n(msgs[:ends[0]]) > limit; continue
            assert cut == msgs[:len(cut)] and cut[-1]["role"] == "assistant" and n(cut) <= limit
            later = [e for e in ends if e > len(cut)]
            assert not later or n(msgs[:later[0]]) > limit          # the next turn boundary would not fit


def test_foreign_messages_are_refused():
    anthropic_blocks = Trajectory(id="ant", task_id="t", messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    with pytest.raises(SynthsciError, match="trajectory ant is not a chat"):
        sft_messages(anthropic_blocks)
    bad_call = Trajectory(id="call", task_id="t", messages=[{"role": "assistant", "content": "", "tool_calls": [{"name": "ls"}]}])
    with pytest.raises(SynthsciError, match="trajectory call is not a chat"):
        sft_messages(bad_call)


def _run_dir(tmp_path, tasks, names):
    rdir = tmp_path / "r"
    write_jsonl(list(tasks.values()), rdir / "04_tasks" / "tasks.jsonl")
    (rdir / "06_rollouts").mkdir(parents=True)
    for n in names: shutil.copy(FIXTURES / n, rdir / "06_rollouts" / (n if n.endswith(".jsonl") else "foreign.jsonl"))
    return load_config(overrides=[f"runs_dir={tmp_path}", "run_id=r"]), rdir


def test_stage_errors_come_before_any_work(tmp_path, tasks):
    cfg, rdir = _run_dir(tmp_path, tasks, ["traj-iris-a.jsonl", "mlgym_foreign.traj.json"])
    with pytest.raises(SynthsciError, match="foreign.jsonl does not hold synthsci Trajectory records .it looks like an MLGym .traj file"):
        run_filter(cfg)
    assert not list((rdir / "07_filtered").glob("*.jsonl")) if (rdir / "07_filtered").exists() else True
    (rdir / "06_rollouts" / "foreign.jsonl").unlink(); (rdir / "06_rollouts" / "traj-iris-a.jsonl").unlink()
    with pytest.raises(SynthsciError, match="no trajectories in .*06_rollouts: the rollouts stage has not run; run it first"):
        run_filter(cfg)


def test_stage_says_when_everything_is_filtered(tmp_path, tasks):
    cfg, rdir = _run_dir(tmp_path, tasks, ["traj-iris-fail.jsonl", "traj-diabetes-loop.jsonl"])
    with pytest.raises(SynthsciError, match=r'every trajectory was filtered out \(\{"integrity": 0, "success": 1, "degenerate": 1'):
        run_filter(cfg)


def test_stage_writes_kept_trajectories_and_the_funnel(tmp_path, tasks):
    names = [p.name for p in FIXTURES.glob("traj-*.jsonl")]
    cfg, rdir = _run_dir(tmp_path, tasks, names)
    cfg.stages = {"filter": {"min_improvement": 0.0}}
    out = run_filter(cfg)
    kept = sorted(t.id for p in out.glob("*.jsonl") for t in read_jsonl(Trajectory, p))
    assert kept == ["traj-diabetes-a", "traj-iris-a", "traj-motions-b"]
    funnel = json.loads((rdir / "manifest.json").read_text())["stages"]["07_filtered"]["funnel"]
    assert [f["kept"] for f in funnel] == [7, 7, 6, 4, 4, 3, 3]
    assert funnel[3]["reasons"] == {"not better than the baseline": 2} and "drops" not in funnel[3]    # ids stay in the unit files
    assert read_funnel(Run("r", tmp_path), drops=True)[5]["drops"] == {"traj-iris-b": "duplicate: of traj-iris-a (the same actions once task ids, paths and numbers are normalized)"}
    assert run_filter(cfg) == out   # a second run resumes: nothing to redo, same result


def test_stage_reads_the_baselines_validation_wrote(tmp_path, tasks):
    """The taskgen records hold no baseline (validation writes it into each task's YAML later): the stage reads the YAML.
    Hand-written task folders: diabetes measured (58.31), iris not measured."""
    recs = {}
    for tid, t in tasks.items():
        folder = tmp_path / "tasks" / tid; folder.mkdir(parents=True)
        measured = {"baseline_scores": [{t.metric: t.baseline_scores[0][t.metric]}]} if tid == "task-diabetes" else {}
        (folder / "task.yaml").write_text(json.dumps({"id": tid, "description": "d", "metric": t.metric, "direction": t.direction, **measured}))
        recs[tid] = Task.from_dict({**t.to_dict(), "path": str(folder), "baseline_scores": []})
    cfg, rdir = _run_dir(tmp_path, recs, ["traj-diabetes-a.jsonl", "traj-iris-a.jsonl"])
    cfg.stages = {"filter": {"min_improvement": 0.0}}
    run_filter(cfg)
    funnel = read_funnel(Run("r", tmp_path), drops=True)
    imp = next(f for f in funnel if f["step"] == "improvement")
    assert (imp["kept"], imp["reasons"]) == (1, {"no measured baseline": 1})     # diabetes kept on its YAML's baseline
    assert imp["drops"]["traj-iris-a"].startswith("no measured baseline: task task-iris's baseline_scores hold no accuracy")


def test_stage_with_the_filter_off_keeps_failed_runs(tmp_path, tasks):
    cfg, rdir = _run_dir(tmp_path, tasks, ["traj-iris-fail.jsonl", "traj-diabetes-loop.jsonl"])
    cfg.stages = {"filter": {"enabled": False}}
    out = run_filter(cfg)
    assert sorted(t.id for p in out.glob("*.jsonl") for t in read_jsonl(Trajectory, p)) == ["traj-diabetes-loop", "traj-iris-fail"]
    entry = json.loads((rdir / "manifest.json").read_text())["stages"]["07_filtered"]
    assert entry["enabled"] is False and entry["funnel"][-1] == dict(step="filter off", kept=2, dropped=0, note=OFF_NOTE)


@pytest.mark.parametrize("cls,stage,field,value,rule", [
    (FilterOptions, "filter", "max_repeats", -3, ">= 2"), (FilterOptions, "filter", "max_tokens", -1, ">= 1"),
    (FilterOptions, "filter", "max_empty_thoughts", -0.5, "between 0 and 1"),
    (SFTDataOptions, "sftdata", "max_tokens", -2048, ">= 1"), (SFTDataOptions, "sftdata", "keep_observations", -1, ">= 0"),
    (SFTDataOptions, "sftdata", "eval_fraction", -0.1, "between 0 and 1")])
def test_negative_counts_are_refused_naming_the_field(tmp_path, cls, stage, field, value, rule):
    with pytest.raises(SynthsciError, match=f"^{field} must be {rule}, not {value}$"):
        cls(**{field: value})
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=r", f"stages.{stage}.{field}={value}"])
    run_stage = {"filter": run_filter, "sftdata": run_sftdata}[stage]
    with pytest.raises(SynthsciError, match=f"^stages.{stage}.{field} must be {rule}, not {value}$"):
        run_stage(cfg)                     # refused when the stage reads its options, before it looks for its input
