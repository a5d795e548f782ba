"""The rollouts stage: resume after SIGKILL, tasks from the validate stage, crashing workers and garbage policies,
the expert end to end, and Ray (when installed)."""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest
from synthsci.core import Run, Task, Trajectory, ValidationReport, load_config, write_jsonl, SynthsciError
from synthsci.rollouts import run_rollouts

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"


def two_tasks(tmp_path) -> Path:
    "A folder with two of the fixture tasks (hand-written fixtures: wine, classification; diabetes, regression)."
    d = tmp_path / "tasks"
    if not d.exists():
        for t in ("wine", "diabetes"): shutil.copytree(FIXTURES / t, d / t)
    return d
ROOT = Path(__file__).parent.parent


def overrides(tmp_path, *over):
    return [f"runs_dir={tmp_path}", "run_id=r", f"stages.rollouts.tasks_dir={two_tasks(tmp_path)}", "stages.rollouts.policy=simulated",
            "stages.rollouts.simulated={delay_s: 0.02, steps: 2}", *over]

def cfg_for(tmp_path, *over): return load_config(overrides=overrides(tmp_path, *over))


def test_resume_after_sigkill_keeps_finished_and_duplicates_none(tmp_path):
    over = ["stages.rollouts.n_per_task=3", "stages.rollouts.workers=1", "stages.rollouts.simulated={delay_s: 0.3, steps: 3}"]
    code = ("from synthsci.rollouts import run_rollouts; from synthsci.core import load_config; "
            f"run_rollouts(load_config(overrides={overrides(tmp_path, *over)!r}), progress=False)")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    stage = tmp_path / "r" / "06_rollouts"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(stage.glob("*.jsonl"))) < 2: time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    done = {f.name: f.stat().st_mtime_ns for f in stage.glob("*.jsonl")}
    assert 2 <= len(done) < 6
    time.sleep(1.5)   # the killed run's rollout child notices and exits
    run_rollouts(cfg_for(tmp_path, *over), progress=False)
    after = {f.name: f.stat().st_mtime_ns for f in stage.glob("*.jsonl")}
    assert len(after) == 6 and all(after[k] == v for k, v in done.items())   # finished units untouched
    trajs = Run("r", tmp_path).read("06_rollouts", Trajectory)
    assert sorted(t.id for t in trajs) == sorted(f"{t}-s{i}" for t in ("wine", "diabetes") for i in range(3))
    assert all(len(t.steps) == 3 and t.exit_status for t in trajs)
    assert sorted(p.name for p in (stage / "traj").iterdir()) == sorted(t.id for t in trajs)
    assert Run("r", tmp_path).manifest["stages"]["06_rollouts"]["status"] == "complete"


def test_reads_validated_tasks_from_the_run(tmp_path):
    from synthsci.aci import load_task
    wine, diab = load_task(FIXTURES / "wine"), load_task(FIXTURES / "diabetes")
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=r", "stages.rollouts.policy=simulated",
                                 "stages.rollouts.simulated={delay_s: 0.01, steps: 1}", "stages.rollouts.n_per_task=1"])
    with pytest.raises(SynthsciError, match="no validated tasks"): run_rollouts(cfg, progress=False)
    run = Run("r", tmp_path)
    import dataclasses
    wine_recorded = dataclasses.replace(wine, baseline_scores=[])   # taskgen records a Task before validation scores its baseline
    write_jsonl([wine_recorded], run.unit_path("04_tasks", "wine")); write_jsonl([diab], run.unit_path("04_tasks", "diabetes"))
    write_jsonl([ValidationReport(id="v1", task_id="wine", passed=True)], run.unit_path("05_validated", "wine"))
    write_jsonl([ValidationReport(id="v2", task_id="diabetes", passed=False)], run.unit_path("05_validated", "diabetes"))
    run_rollouts(cfg, progress=False)
    assert [t.id for t in Run("r", tmp_path).read("06_rollouts", Trajectory)] == ["wine-s0"]
    from synthsci.rollouts import RolloutOptions, rollout_tasks
    assert [t.baseline_scores for t in rollout_tasks(run, RolloutOptions())] == [wine.baseline_scores] != [[]]   # read back from the YAML


def test_crashing_workers_and_garbage_policies_end_their_trajectory_and_the_run_goes_on(tmp_path):
    cfg = cfg_for(tmp_path, "stages.rollouts.n_per_task=2", "stages.rollouts.simulated={delay_s: 0.01, steps: 4, crash_at: 2}")
    run_rollouts(cfg, progress=False)
    trajs = Run("r", tmp_path).read("06_rollouts", Trajectory)
    assert len(trajs) == 4 and {t.exit_status for t in trajs} == {"worker_crashed (exit code 3)"}
    assert all(len(t.steps) == 1 for t in trajs)
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=g", f"stages.rollouts.tasks_dir={two_tasks(tmp_path)}", "stages.rollouts.policy=llm",
                                 "teacher.spec=scripted", "teacher.cache='off'", "stages.rollouts.n_per_task=1"])
    run_rollouts(cfg, progress=False)   # the scripted teacher has no script: every call fails
    trajs = Run("g", tmp_path).read("06_rollouts", Trajectory)
    assert {t.exit_status for t in trajs} == {"submission_not_found (exit_api)"}
    assert Run("g", tmp_path).manifest["stages"]["06_rollouts"]["status"] == "complete"


def test_expert_rollouts_end_to_end(tmp_path):
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=e", f"stages.rollouts.tasks_dir={two_tasks(tmp_path)}", "stages.rollouts.n_per_task=1",
                                 "stages.rollouts.expert={attempts: [1, 1], p_slow: 0, run_timeout_s: 60}", "seed=7"])
    folder = run_rollouts(cfg, progress=False)
    trajs = Run("e", tmp_path).read("06_rollouts", Trajectory)
    assert sorted(t.id for t in trajs) == ["diabetes-s7", "wine-s7"]
    for t in trajs:
        assert t.exit_status == "submitted" and t.provenance["model"] == "expert" and t.provenance["seed"] == 7
        assert t.provenance["sandbox"] == "bwrap" and t.provenance["prompt_hash"]
        r = json.loads((folder / "traj" / t.id / "results.json").read_text())
        assert r["agent"] == t.score and r["baseline"]


def test_ray_local_cluster(tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (the optional extra 'ray')")
    cfg = cfg_for(tmp_path, "stages.rollouts.n_per_task=2", "stages.rollouts.ray_address=local", "stages.rollouts.cpus_per_rollout=0.5",
                  "stages.rollouts.simulated={delay_s: 0.01, steps: 4, crash_at: 3}")
    try:
        run_rollouts(cfg, progress=False)
    finally:
        ray.shutdown()
    trajs = Run("r", tmp_path).read("06_rollouts", Trajectory)
    assert len(trajs) == 4 and all(t.exit_status.startswith("worker_crashed (ray: ") for t in trajs), [t.exit_status for t in trajs]
    assert all(len(t.steps) == 2 for t in trajs)
