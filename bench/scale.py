"""Rollouts and validation on a Ray cluster of three nodes beside the local pools, and the time to recover from losing a node.

Same machine, same tasks (the wine and diabetes fixture tasks), same rollouts (the scripted expert, seeded, so every
unit takes the same actions wherever it runs), same number of sandbox slots (3: the pool's workers, or one per node).
Each stage is driven by a process of its own, as `synthsci run` would drive it:

  pool     the local process pool, 3 workers
  cluster  a head and two worker nodes, each started with `ray start --num-cpus=1 --resources='{"synthsci_sandbox": 1}'`
  kill     the same cluster, a fresh run (both after a warm-up run of 4 rollouts), and worker node 2 killed (SIGKILL to its process group) once a third of the
           units are done and one is in flight on it

Figures: rollouts per hour of each (units / the driver's wall time, Ray's connection included); the cluster's start
(three `ray start`s); and the recovery: from the kill to the driver learning of it (the lost attempt's time), and from
the kill to the stage's end, beside the same stage without a kill from the same point (a third done, one in flight on
node 2). On this machine a lost node also frees a core for the others, so the stage may end no later than
without the loss: the redone rollout's cost is within the noise; what the kill shows is that nothing waits on the
lost node. Every run is checked: each unit done once, each trajectory submitted. This machine has 2 cores: three nodes
of one CPU each, with their Ray daemons, oversubscribe it, and the results say so beside the figures.

Validation (the validate stage, `stages.validate.ray_address`): the same tasks validated by the local thread pool
(3 workers) and by the same 3-node cluster (before the kill run): tasks validated per hour, each run's funnel (the
two must agree, as must every report), and how many teacher calls the nodes made. The tasks are the hand-written
fixtures (wine twice, diabetes, friedman) and a task of the scripted taskgen twice, one copy with a crashing baseline
that the teacher (called on the node) fixes; the checks are the sandboxed ones (baseline, evaluator, determinism,
signal, the agent's path), the quality checks left out.

`--quick` (under a minute): the pool and a one-node cluster (the head alone, 2 slots), 2 rollouts and 2 validated
tasks each, no kill; writes nothing. Full run: writes bench/results/scale.json.
Usage: python bench/scale.py [--quick]
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path
from _common import Bench, loadavg
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "fixtures"))
from staged_tasks import iris_task, stage_tasks   # the same staged tasks as tests/test_ray_cluster.py

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "tasks"
TASKS = ("wine", "diabetes")
EXPERT = "{attempts: [1, 1], p_slow: 0, run_timeout_s: 60}"
VALIDATE = "{k: 2, p_debug: 1.0, timeout_s: 60, eval_timeout_s: 30, quality: false}"
VAL_TASKS = ("wine", "wine-b", "diabetes", "friedman", "iris", "iris-crash")


def drive_validate(root: Path, run_id: str, names, iris: Path, workers: int, cluster=None):
    "Validate the tasks `names` in a driver process of its own (the local thread pool, or `cluster`); each task checked done once."
    stage_tasks(root, run_id, names, iris)
    over = [f"runs_dir={root}", f"run_id={run_id}", "seed=0", "teacher.spec=scripted", "stages.taskgen.p_bug=0", f"stages.validate={VALIDATE}",
            f"stages.validate.workers={workers}"]
    if cluster: over.append(f"stages.validate.ray_address={cluster.address}")
    code = ("import json, time; from synthsci.validate import run_validate; from synthsci.core import load_config; "
            f"t0 = time.time(); run_validate(load_config(overrides={over!r})); print(json.dumps(dict(t0=t0, t1=time.time())))")
    load0 = loadavg()[0]
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **(cluster.env if cluster else {})}, capture_output=True, text=True)
    if p.returncode: raise SystemExit(f"the {run_id} driver failed ({p.returncode}): {(p.stdout + p.stderr)[-2000:]}")
    t = json.loads(p.stdout.strip().splitlines()[-1])
    from synthsci.core import Run, ValidationReport
    run = Run(run_id, root)
    m = run.manifest["stages"]["05_validated"]
    reports = run.read("05_validated", ValidationReport)
    assert sorted(r.task_id for r in reports) == sorted(names) and (m["status"], m["errors"]) == ("complete", {}), (run_id, m["status"], m["errors"])
    n, wall = len(reports), t["t1"] - t["t0"]
    r = dict(tasks=n, wall_s=round(wall, 1), per_hour=round(n / wall * 3600), valid=m["valid"], teacher_calls=m["calls"], load_1min=[load0, loadavg()[0]])
    if cluster: r.update(slots=m["ray"]["slots"], resubmitted=m["ray"]["resubmitted"])
    funnel = {k: v for k, v in m["funnel"].items() if k in ("coded", "valid", "rejections", "fixes", "rewrites", "rescued_by_fix")}
    return r, funnel, sorted((x.to_dict() for x in reports), key=lambda x: x["id"])


def drive(root: Path, tasks: Path, run_id: str, n_per_task: int, workers: int, cluster=None, kill_node=None, kill_after=0):
    """Run the rollouts stage in a driver process of its own; with `kill_node`, kill that node of `cluster` once
    `kill_after` units are done and one is in flight on it. The moment that holds is noted with or without a kill."""
    over = [f"runs_dir={root}", f"run_id={run_id}", f"stages.rollouts.tasks_dir={tasks}", f"stages.rollouts.n_per_task={n_per_task}",
            "seed=0", f"stages.rollouts.workers={workers}", f"stages.rollouts.expert={EXPERT}"]
    if cluster: over.append(f"stages.rollouts.ray_address={cluster.address}")
    code = ("import json, time; from synthsci.rollouts import run_rollouts; from synthsci.core import load_config; "
            f"t0 = time.time(); run_rollouts(load_config(overrides={over!r}), progress=False); "
            "print(json.dumps(dict(t0=t0, t1=time.time())))")
    stage, load0 = root / run_id / "06_rollouts", loadavg()[0]
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **(cluster.env if cluster else {})},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    point = killed = None
    watch = cluster.node_tmp(2) if cluster and len(cluster.ports) > 2 else None
    while p.poll() is None:
        if watch is not None and point is None and len(list(stage.glob("*.jsonl"))) >= kill_after and list(watch.glob("synthsci-ray/*/work/*")):
            point = time.time()
            if kill_node is not None: cluster.kill_node(kill_node); killed = point
        time.sleep(0.05)
    out = p.stdout.read()
    if p.returncode: raise SystemExit(f"the {run_id} driver failed ({p.returncode}): {out[-2000:]}")
    t = json.loads(out.strip().splitlines()[-1])
    from synthsci.core import Run, Trajectory
    run = Run(run_id, root)
    trajs = run.read("06_rollouts", Trajectory)
    expected = sorted(f"{x}-s{i}" for x in TASKS for i in range(n_per_task))
    assert sorted(x.id for x in trajs) == expected and sorted(f.stem for f in stage.glob("*.jsonl")) == expected, run_id
    assert {x.exit_status for x in trajs} == {"submitted"}, {x.exit_status for x in trajs}
    n, wall = len(trajs), t["t1"] - t["t0"]
    r = dict(units=n, wall_s=round(wall, 1), per_hour=round(n / wall * 3600), load_1min=[load0, loadavg()[0]])
    if point is not None: r["point_to_done_s"] = round(t["t1"] - point, 1)
    if killed is not None:
        ray = run.manifest["stages"]["06_rollouts"]["ray"]
        lost_at = [l["at"] for x in trajs for l in x.provenance["ray"]["lost"]]
        assert lost_at and len(ray["nodes_lost"]) == 1, ray
        r.update(kill_to_detected_s=round(min(lost_at) - killed, 1), kill_to_done_s=r.pop("point_to_done_s"),
                 resubmitted=ray["resubmitted"], nodes_lost=ray["nodes_lost"])
    return r


def main(argv=None):
    p = argparse.ArgumentParser(); p.add_argument("--quick", action="store_true"); a = p.parse_args(argv)
    bench = Bench("scale", a.quick)
    from synthsci.cluster import LocalRayCluster
    n_per_task = 1 if a.quick else 6
    slots = 2 if a.quick else 3
    out = dict(tasks=list(TASKS), rollouts_per_task=n_per_task, units=n_per_task * len(TASKS), policy=f"scripted expert {EXPERT}", slots=slots)
    val_tasks = VAL_TASKS[:2] if a.quick else VAL_TASKS
    out["validation"] = dict(tasks=list(val_tasks), options=f"stages.validate={VALIDATE}, teacher.spec=scripted")
    work = Path(tempfile.mkdtemp(prefix="scale"))
    short = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))       # Ray's socket paths must stay short
    try:
        tasks = work / "tasks"
        for t in TASKS: shutil.copytree(FIXTURES / t, tasks / t)
        out["pool"] = drive(work, tasks, "pool", n_per_task, slots)
        print(json.dumps({"pool": out["pool"]}), flush=True)
        iris = iris_task(work / "gen")
        out["validation"]["pool"], funnel, reports = drive_validate(work, "vpool", val_tasks, iris, slots)
        out["validation"]["funnel"] = funnel
        print(json.dumps({"validation pool": out["validation"]["pool"]}), flush=True)
        t0 = time.time()
        with LocalRayCluster(short, workers=0 if a.quick else 2, cpus=slots if a.quick else 1, sandboxes=slots if a.quick else 1) as c:
            out["cluster_start_s"] = round(time.time() - t0, 1)
            out["cluster_shape"] = ("head only: ray start --head --num-cpus=2 --resources='{\"synthsci_sandbox\": 2}'" if a.quick else
                                    "head + 2 worker nodes, each: ray start --num-cpus=1 --resources='{\"synthsci_sandbox\": 1}'")
            if not a.quick:   # a warm-up, so that both timed runs find each node's Ray worker started
                out["warmup"] = drive(work, tasks, "warmup", 2, 1, c)
            out["cluster"] = drive(work, tasks, "cluster", n_per_task, 1, c, kill_after=out["units"] // 3)
            print(json.dumps({"cluster": out["cluster"]}), flush=True)
            v, vfunnel, vreports = drive_validate(work, "vcluster", val_tasks, iris, 1, c)
            assert (vfunnel, vreports) == (funnel, reports), "the cluster's validation differs from the pool's"
            out["validation"]["cluster"] = v
            out["validation"]["same_reports_as_pool"] = True
            print(json.dumps({"validation cluster": v}), flush=True)
            if not a.quick:
                out["kill"] = drive(work, tasks, "kill", n_per_task, 1, c, kill_node=2, kill_after=out["units"] // 3)
                out["kill"]["extra_s_over_no_kill"] = round(out["kill"]["kill_to_done_s"] - out["cluster"]["point_to_done_s"], 1)
                print(json.dumps({"kill": out["kill"]}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True); shutil.rmtree(short, ignore_errors=True)
    out["cluster_over_pool"] = round(out["cluster"]["per_hour"] / out["pool"]["per_hour"], 3)
    val = out["validation"]
    val["cluster_over_pool"] = round(val["cluster"]["per_hour"] / val["pool"]["per_hour"], 3)
    out["note"] = (f"{os.cpu_count()} cores: the pool runs {slots} rollouts at once on them; the cluster runs as many, one per node, beside "
                   "three raylets, the GCS and Ray's agents, so it is oversubscribed and its figures are a floor, not a cluster's speed")
    bench.write(out)
    k = out.get("kill")
    rec = (f"; node 2 killed with {out['units'] // 3} done: driver knew in {k['kill_to_detected_s']} s, stage done {k['kill_to_done_s']} s "
           f"after the kill vs {out['cluster']['point_to_done_s']} s from that point without a kill ({k['extra_s_over_no_kill']:+} s), "
           f"{sum(k['resubmitted'].values())} unit(s) submitted again, none lost or done twice") if k else ""
    print(f"scale: {out['units']} expert rollouts on {slots} slots: process pool {out['pool']['per_hour']}/h, "
          f"{'1-node' if a.quick else '3-node'} Ray cluster {out['cluster']['per_hour']}/h (x{out['cluster_over_pool']}; "
          f"cluster start {out['cluster_start_s']} s){rec}; validation of {len(val_tasks)} tasks: thread pool {val['pool']['per_hour']}/h, "
          f"cluster {val['cluster']['per_hour']}/h (x{val['cluster_over_pool']}, same reports) ({bench.load()}; oversubscribed)")


if __name__ == "__main__":
    sys.exit(main())
