"""Rollouts on a Ray cluster of three nodes (a head and two workers, each started with `ray start`, one CPU and one
sandbox slot each) that loses a worker node half-way through the stage: the stage finishes on what is left, every
unit is done exactly once, and the units that were on the lost node are the ones submitted again.

The same for validation: five tasks validated on such a cluster that loses a worker node half-way give the reports,
attempts, funnel, teacher calls and task folders of the local thread pool, every task validated exactly once.

The driver runs in a process of its own, as `synthsci run` would, joined to the cluster by its address and token."""
import json, os, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import pytest

pytestmark = pytest.mark.serial   # runs alone: see pyproject.toml

pytest.importorskip("ray", reason="ray is not installed (the optional extra 'ray')")
from synthsci.core import Run, Trajectory
from synthsci.cluster import LocalRayCluster
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from staged_tasks import iris_task, stage_tasks

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


# --- validation on the same kind of cluster -------------------------------------------------------------------------
def make_tasks(root, run_id, iris_dir):
    """Five tasks in the 04_tasks of run `run_id`, each in a folder of its own (validation writes into it): the hand-written
    fixtures wine and diabetes (wine twice), and a task of the scripted taskgen twice, once good and once with a baseline
    that crashes (the teacher, called on the node, fixes it)."""
    return stage_tasks(root, run_id, ("wine", "wine-b", "diabetes", "iris", "iris-crash"), iris_dir)


def validated(run_id, root):
    "What a validate stage left: its reports, attempts (less their timing), funnel, ledger and each task folder's files."
    from synthsci.core import Task, ValidationReport
    from synthsci.validate import read_attempts
    run = Run(run_id, root)
    m = run.manifest["stages"]["05_validated"]
    folders = {t.id: {p.relative_to(t.path).as_posix(): p.read_bytes() for p in sorted(Path(t.path).rglob("*")) if p.is_file()}
               for t in run.read("04_tasks", Task)}
    return dict(reports=sorted((r.to_dict() for r in run.read("05_validated", ValidationReport)), key=lambda r: r["id"]),
                attempts=[{**a.to_dict(), "seconds": None} for a in read_attempts(run)], funnel=m["funnel"],
                calls=m["calls"], folders=folders), m


VALIDATE = ["teacher.spec=scripted", "seed=0", "stages.taskgen.p_bug=0",
            "stages.validate={k: 2, p_debug: 1.0, timeout_s: 60, eval_timeout_s: 30, agent_check: false, quality: false, workers: 1}"]


def test_validation_on_a_cluster_that_loses_a_worker_node(tmp_path):
    from synthsci.core import load_config
    from synthsci.validate import run_validate
    iris_dir = iris_task(tmp_path / "gen")
    # the local thread pool first: the results the cluster must give
    make_tasks(tmp_path, "local", iris_dir)
    run_validate(load_config(overrides=[f"runs_dir={tmp_path}", "run_id=local", *VALIDATE, "stages.validate.workers=2"]))
    local, _ = validated("local", tmp_path)
    assert local["funnel"]["valid"] == 5 and local["funnel"]["rescued_by_fix"] == 1     # the teacher fixed the crashing baseline

    make_tasks(tmp_path, "c", iris_dir)
    stage = tmp_path / "c" / "05_validated"
    short = Path(tempfile.mkdtemp(prefix="rv", dir="/tmp"))
    log = open(tmp_path / "driver.log", "w+")
    over = [f"runs_dir={tmp_path}", "run_id=c", *VALIDATE]
    try:
        with LocalRayCluster(short, workers=2, cpus=1, sandboxes=1) as cluster:
            code = ("from synthsci.validate import run_validate; from synthsci.core import load_config; "
                    f"run_validate(load_config(overrides={over + [f'stages.validate.ray_address={cluster.address}']!r}))")
            driver = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **cluster.env}, stdout=log, stderr=subprocess.STDOUT)
            on_node2, deadline = [], time.time() + 240     # half-way: a task validated, one in flight on worker node 2
            while time.time() < deadline and driver.poll() is None:
                on_node2 = [p.name.rsplit("-", 1)[0] for p in cluster.node_tmp(2).glob("synthsci-ray/*/work/*")]
                if on_node2 and len(list(stage.glob("*.jsonl"))) >= 1: break
                time.sleep(0.1)
            done_before = {p.stem for p in stage.glob("*.jsonl")}
            assert on_node2 and driver.poll() is None, f"no task was validated on node 2 while the stage ran: {done_before}"
            cluster.kill_node(2)
            assert driver.wait(timeout=240) == 0, (log.seek(0), log.read()[-3000:])[1]
            m = Run("c", tmp_path).manifest["stages"]["05_validated"]
            assert [(cluster.node_tmp(i) / m["ray"]["scratch"]).exists() for i in range(3)] == [False, False, True]   # cleared where nodes live
        assert not cluster.pids()
    finally:
        log.close()
        shutil.rmtree(short, ignore_errors=True)

    mine, m = validated("c", tmp_path)
    assert (m["status"], m["units_total"], m["units_done"], m["errors"]) == ("complete", 5, 5, {})
    assert sorted(p.stem for p in stage.glob("*.jsonl")) == sorted(local["folders"])            # every task exactly once
    assert sorted(p.stem for p in (stage / "attempts").glob("*.jsonl")) == sorted(local["folders"])
    for k in ("reports", "attempts", "funnel", "calls"): assert mine[k] == local[k], k        # what the local pool found, and its teacher calls
    assert mine["folders"] == local["folders"]                                                  # the fixed code and baseline scores, swapped in
    assert list((tmp_path / "c" / "cache" / "llm").rglob("*"))                                  # the nodes' teacher answered through the run's cache
    ray = m["ray"]
    killed_id = next(i for i, n in ray["nodes"].items() if n["address"].endswith(f":{cluster.ports[2]}"))
    assert ray["slots"] == 3 and ray["nodes_lost"] == [killed_id]
    assert set(on_node2) <= set(ray["resubmitted"]) and not set(ray["resubmitted"]) & done_before
    print(f"validation: resubmitted {ray['resubmitted']} after node 2 was lost")
