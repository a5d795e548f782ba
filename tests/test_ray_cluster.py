"""Rollouts on a Ray cluster of three nodes (a head and two workers, each started with `ray start`, one CPU and one
sandbox slot each) that loses a worker node half-way through the stage: the stage finishes on what is left, every
unit is done exactly once, and the units that were on the lost node are the ones submitted again.

The driver runs in a process of its own, as `synthsci run` would, joined to the cluster by its address and token."""
import json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import pytest

pytest.importorskip("ray", reason="ray is not installed (the optional extra 'ray')")
from synthsci.core import Run, Trajectory
from synthsci.rollouts import LocalRayCluster

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "tasks"
TASKS, N = ("wine", "diabetes"), 3


def start_driver(cluster, runs, tasks, log):
    over = [f"runs_dir={runs}", "run_id=r", f"stages.rollouts.tasks_dir={tasks}", f"stages.rollouts.n_per_task={N}", "seed=0",
            f"stages.rollouts.ray_address={cluster.address}", "stages.rollouts.workers=1",   # in flight: the cluster's 3 slots
            "stages.rollouts.expert={attempts: [1, 1], p_slow: 0, run_timeout_s: 60}"]
    code = ("from synthsci.rollouts import run_rollouts; from synthsci.core import load_config; "
            f"run_rollouts(load_config(overrides={over!r}), progress=False)")
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **cluster.env}, stdout=log, stderr=subprocess.STDOUT)


def test_a_worker_node_lost_half_way(tmp_path):
    tasks = tmp_path / "tasks"
    for t in TASKS: shutil.copytree(FIXTURES / t, tasks / t)
    stage = tmp_path / "r" / "06_rollouts"
    short = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))     # Ray's socket paths must stay short: not under pytest's tmp_path
    log = open(tmp_path / "driver.log", "w+")
    try:
        with LocalRayCluster(short, workers=2, cpus=1, sandboxes=1) as cluster:
            driver = start_driver(cluster, tmp_path, tasks, log)
            # half-way: some units done, and one in flight on worker node 2 (its workspace is in that node's own temp folder)
            on_node2, deadline = [], time.time() + 240
            while time.time() < deadline and driver.poll() is None:
                on_node2 = [p.name for p in cluster.node_tmp(2).glob("synthsci-ray/*/work/*")]
                if on_node2 and len(list(stage.glob("*.jsonl"))) >= 2: break
                time.sleep(0.1)
            done_before = {p.stem for p in stage.glob("*.jsonl")}
            assert on_node2 and driver.poll() is None, f"no unit ran on node 2 while the stage ran: {done_before}"
            cluster.kill_node(2); killed = time.time()
            assert driver.wait(timeout=240) == 0, (log.seek(0), log.read()[-3000:])[1]
            recovered_s = time.time() - killed
            assert cluster.pids()                                   # the head and node 1 still run
            scratch = [(cluster.node_tmp(i) / Run("r", tmp_path).manifest["stages"]["06_rollouts"]["ray"]["scratch"]).exists() for i in range(3)]
            assert scratch == [False, False, True]                  # cleared on the nodes left; the lost node keeps its own
        left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:120] for pid in cluster.pids()}
        assert not left, f"processes of the stopped cluster: {left}"      # stopped: nothing of this cluster is left
    finally:
        log.close()
        shutil.rmtree(short, ignore_errors=True)

    expected = sorted(f"{t}-s{i}" for t in TASKS for i in range(N))
    trajs = Run("r", tmp_path).read("06_rollouts", Trajectory)
    assert sorted(t.id for t in trajs) == expected                 # every unit exactly once in the run store
    assert sorted(p.stem for p in stage.glob("*.jsonl")) == expected
    assert sorted(p.name for p in (stage / "traj").iterdir()) == expected
    assert all({f.name for f in (stage / "traj" / u).iterdir()} == {"results.json", f"{u}.traj"} for u in expected)
    assert not (stage / "work").exists()                            # the workspaces were on the nodes, never in the run folder
    assert {t.exit_status for t in trajs} == {"submitted"}
    m = Run("r", tmp_path).manifest["stages"]["06_rollouts"]
    assert (m["status"], m["units_total"], m["units_done"], m["errors"]) == ("complete", 6, 6, {})

    ray = m["ray"]
    killed_id = next(i for i, n in ray["nodes"].items() if n["address"].endswith(f":{cluster.ports[2]}"))
    assert ray["slots"] == 3 and ray["nodes_lost"] == [killed_id]
    assert set(on_node2) <= set(ray["resubmitted"]) and not set(ray["resubmitted"]) & done_before
    for t in trajs:
        r = t.provenance["ray"]
        if t.id in ray["resubmitted"]:   # lost with node 2, then done again in a fresh workspace on a node that stayed
            assert r["attempts"] == 2 and [l["node"] for l in r["lost"]] == [killed_id] and r["node"] != killed_id
            assert killed <= r["lost"][0]["at"] <= killed + 60
        else:
            assert r["attempts"] == 1 and r["lost"] == []
    print(f"recovered in {recovered_s:.1f} s after the kill; resubmitted: {ray['resubmitted']}")
