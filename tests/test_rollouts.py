"""The rollouts stage: resume after SIGKILL, tasks from the validate stage, crashing workers and garbage policies,
the expert end to end, and Ray (when installed)."""
import json, os, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path
import pytest
from synthsci.core import Run, Task, Trajectory, ValidationReport, load_config, write_jsonl, SynthsciError
from synthsci.rollouts import run_rollouts

from conftest import two_tasks

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"


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


@pytest.mark.serial
def test_ray_local_cluster(tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (the optional extra 'ray')")
    try:   # a cluster whose nodes were started without the sandbox resource is refused, with the command that fixes it
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        with pytest.raises(SynthsciError, match=r"""no node with the 'synthsci_sandbox' resource: start each node with `ray start ... --resources='\{"synthsci_sandbox": N\}'`"""):
            run_rollouts(cfg_for(tmp_path, "stages.rollouts.ray_address=auto"), progress=False)
    finally:
        ray.shutdown()
    cfg = cfg_for(tmp_path, "stages.rollouts.n_per_task=2", "stages.rollouts.ray_address=local", "stages.rollouts.cpus_per_rollout=0.5",
                  "stages.rollouts.simulated={delay_s: 0.01, steps: 4, crash_at: 3}")
    try:
        run_rollouts(cfg, progress=False)
        node = ray.get_runtime_context().get_node_id()
    finally:
        ray.shutdown()
    trajs = Run("r", tmp_path).read("06_rollouts", Trajectory)
    assert len(trajs) == 4 and all(t.exit_status.startswith("worker_crashed (ray: ") for t in trajs), [t.exit_status for t in trajs]
    assert all(len(t.steps) == 2 for t in trajs)          # the crashed rollouts' last saves, read back from this machine's scratch
    assert all(t.provenance["ray"] == dict(node=None, attempts=1, lost=[]) for t in trajs)
    m = Run("r", tmp_path).manifest["stages"]["06_rollouts"]["ray"]
    assert (m["slots"], list(m["nodes"]), m["nodes_lost"], m["resubmitted"]) == (2, [node], [], {})   # 'local': `workers` sandboxes
    assert not (tmp_path / "r" / "06_rollouts" / "work").exists()
    assert m["scratch"].startswith("synthsci-ray/") and not (Path(tempfile.gettempdir()) / m["scratch"]).exists()   # cleared at the end


class FakeRay:
    "Just enough of the `ray` module for RayRunner: every rollout's node (a) dies `lose` times, then the rollout runs on node b."
    def __init__(self, lose: int, nodes_after_loss: int = 1):
        import ray
        self.exceptions, self.lose, self.calls, self.after, self.remotes = ray.exceptions, lose, {}, nodes_after_loss, []
    def nodes(self):
        alive = 2 if not self.calls else self.after
        return [dict(NodeID=n * 56, Alive=i < alive, NodeManagerAddress="10.0.0.1", NodeManagerPort=i,
                     Resources={"CPU": 1.0, "synthsci_sandbox": 1.0}) for i, n in enumerate("ab")]
    def put(self, x): return x
    def remote(self, **resources):
        self.remotes.append(resources)
        class Remote:
            def options(self, **kw): return self
            def remote(self, first, *rest): return first     # a rollout's ref is its unit
        return lambda fn: Remote()
    def wait(self, refs, num_returns, timeout): self.cleaned = len(refs); return refs, []
    def get(self, unit):
        n = self.calls[unit.id] = self.calls.get(unit.id, 0) + 1
        if n <= self.lose: raise self.exceptions.NodeDiedError(f"Task failed because the node it was running on is dead or unavailable. Node IP: 10.0.0.1, node ID: {'a' * 56}.")
        return Trajectory(id=unit.id, parent_id=unit.task.id, task_id=unit.task.id, exit_status="submitted", provenance={"ray_node": "b" * 56})


def test_a_rollout_whose_node_dies_is_submitted_again_up_to_node_retries(tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="ray is not installed (the optional extra 'ray')")
    import synthsci.rollouts as r
    fake = FakeRay(lose=2)
    monkeypatch.setattr(r, "ray_connect", lambda opts, **kw: fake)
    run_rollouts(cfg_for(tmp_path, "stages.rollouts.n_per_task=1", "stages.rollouts.ray_address=auto", "stages.rollouts.node_retries=2"), progress=False)
    trajs = Run("r", tmp_path).read("06_rollouts", Trajectory)
    assert sorted(t.id for t in trajs) == ["diabetes-s0", "wine-s0"] and fake.calls == {"diabetes-s0": 3, "wine-s0": 3}
    for t in trajs:
        assert (t.provenance["ray"]["node"], t.provenance["ray"]["attempts"]) == ("b" * 56, 3)
        assert [l["node"] for l in t.provenance["ray"]["lost"]] == ["a" * 56] * 2
    m = Run("r", tmp_path).manifest["stages"]["06_rollouts"]
    assert (m["status"], m["ray"]["nodes_lost"], m["ray"]["resubmitted"]) == ("complete", ["a" * 56], {"diabetes-s0": 2, "wine-s0": 2})
    assert fake.remotes == [dict(num_cpus=1.0, num_gpus=0.0, resources={"synthsci_sandbox": 1}, max_retries=0),   # a rollout: one sandbox slot
                            dict(num_cpus=0, max_retries=0)] and fake.cleaned == 1   # then the scratch of the node left, cleared
    # one loss more than node_retries allows: the unit is not done (the next run does it), and the stage says so
    monkeypatch.setattr(r, "ray_connect", lambda opts, **kw: FakeRay(lose=3))
    run_rollouts(cfg_for(tmp_path, "run_id=s", "stages.rollouts.n_per_task=1", "stages.rollouts.ray_address=auto", "stages.rollouts.node_retries=2"), progress=False)
    m = Run("s", tmp_path).manifest["stages"]["06_rollouts"]
    assert m["units_done"] == 0 and m["status"].startswith("incomplete: 2 unit(s) failed")
    assert m["errors"]["wine-s0"] == "SynthsciError: rollout wine-s0: its Ray node was lost 3 times (node_retries: 2)"
    # no node left that could take it: a one-line error at once, not a wait for a node that will not come
    monkeypatch.setattr(r, "ray_connect", lambda opts, **kw: FakeRay(lose=1, nodes_after_loss=0))
    run_rollouts(cfg_for(tmp_path, "run_id=t", "stages.rollouts.n_per_task=1", "stages.rollouts.ray_address=auto"), progress=False)
    assert Run("t", tmp_path).manifest["stages"]["06_rollouts"]["errors"]["wine-s0"].startswith("SynthsciError: no live Ray node can run a rollout")
