"""Rollout throughput: a simulated teacher that answers after a fixed delay, N rollouts in flight at once.

Prints trajectories per hour at each concurrency against the ideal (concurrency x 3600 / (steps x delay)), the
orchestration overhead per agent step (loop + interface + sandboxed shell, the teacher's delay excluded), and the
same workload through a Ray local cluster against the local process pool. `--quick` (< 1 min) skips Ray and 64.
Full run: writes bench/results/rollouts.json. Usage: python bench/rollouts.py [--quick]
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path

TASK_YAML = """id: bench
name: bench
description: A task for benchmarks; any submission scores 1.
task_entrypoint: CSVSubmissionTasks
training_timeout: 60
starter_code: [submission.csv]
evaluation_paths: [evaluate.py]
baseline_scores: [{score: 0.0}]
"""

def make_task(root: Path) -> Path:
    t = root / "tasks" / "bench"
    t.mkdir(parents=True)
    (t / "task.yaml").write_text(TASK_YAML)
    (t / "submission.csv").write_text("id,y\n0,1\n")
    (t / "evaluate.py").write_text('import json\nprint(json.dumps({"score": 1.0}))\n')
    return t.parent


def measure(root, tasks_dir, concurrency, n, delay, steps, ray_address=None, cpus=1.0):
    from synthsci.core import load_config, Run, Trajectory
    from synthsci.rollouts import run_rollouts
    run_id = f"c{concurrency}-{ray_address or 'pool'}"
    over = [f"runs_dir={root}", f"run_id={run_id}", f"stages.rollouts.tasks_dir={tasks_dir}", "stages.rollouts.policy=simulated",
            f"stages.rollouts.n_per_task={n}", f"stages.rollouts.workers={concurrency}",
            f"stages.rollouts.simulated={{delay_s: {delay}, steps: {steps}}}", f"stages.rollouts.cpus_per_rollout={cpus}"]
    if ray_address: over.append(f"stages.rollouts.ray_address={ray_address}")
    t0 = time.perf_counter()
    run_rollouts(load_config(overrides=over), progress=False)
    wall = time.perf_counter() - t0
    trajs = Run(run_id, root).read("06_rollouts", Trajectory)
    assert len(trajs) == n and all(t.exit_status == "submitted" for t in trajs), {t.exit_status for t in trajs}
    per_hour, ideal = n / wall * 3600, concurrency * 3600 / (steps * delay)
    # overhead per step: the wall time of a trajectory minus the teacher's thinking, over its steps
    overhead_ms = (sum(t.provenance["wall_s"] for t in trajs) / n - steps * delay) / steps * 1000
    return dict(concurrency=concurrency, trajectories=n, wall_s=round(wall, 2), per_hour=round(per_hour), ideal_per_hour=round(ideal),
                ratio_to_ideal=round(per_hour / ideal, 3), overhead_ms_per_step=round(overhead_ms, 1))


def step_overhead_ms(tasks_dir, steps=41) -> float:
    "Loop + interface + sandboxed shell per step, with a teacher that answers at once: (T(n steps) - T(1 step)) / (n - 1)."
    from synthsci.aci import load_task
    from synthsci.agent import AgentConfig, run_agent
    from synthsci.rollouts import SimulatedTeacher
    task = load_task(Path(tasks_dir) / "bench")
    def wall(n):
        with tempfile.TemporaryDirectory() as w:
            t0 = time.perf_counter()
            t = run_agent(task, SimulatedTeacher(0.0, n, command="true"), Path(w) / "ws", AgentConfig(max_steps=n + 1))
            assert t.exit_status == "submitted" and len(t.steps) == n
            return time.perf_counter() - t0
    wall(1)  # warm up
    return (min(wall(steps) for _ in range(2)) - min(wall(1) for _ in range(2))) / (steps - 1) * 1000


def main(argv=None):
    p = argparse.ArgumentParser(); p.add_argument("--quick", action="store_true"); a = p.parse_args(argv)
    delay, steps, rounds = (0.5, 4, 1) if a.quick else (2.0, 5, 2)
    levels = [1, 4, 16] if a.quick else [1, 4, 16, 64]
    out = dict(delay_s=delay, steps=steps, cores=os.cpu_count(), levels=[])
    with tempfile.TemporaryDirectory() as d:
        root = Path(d); tasks = make_task(root)
        out["step_overhead_ms"] = round(step_overhead_ms(tasks), 2)
        print(json.dumps({"step_overhead_ms": out["step_overhead_ms"]}), flush=True)
        for c in levels:
            r = measure(root / "runs", tasks, c, c * rounds, delay, steps)
            out["levels"].append(r); print(json.dumps(r), flush=True)
        if not a.quick:
            try:
                import ray
                c = 16
                ray.init(num_cpus=c, include_dashboard=False, log_to_driver=False)   # a local cluster with 16 logical CPUs
                t0 = time.perf_counter(); ray_r = measure(root / "runs", tasks, c, c * rounds, delay, steps, ray_address="auto", cpus=1.0)
                ray.shutdown()
                pool_r = next(x for x in out["levels"] if x["concurrency"] == c)
                out["ray"] = dict(ray=ray_r, pool=pool_r, ray_over_pool=round(ray_r["per_hour"] / pool_r["per_hour"], 3))
                print(json.dumps(out["ray"]), flush=True)
            except ImportError:
                out["ray"] = "ray not installed"
    step_ms = out["step_overhead_ms"]
    if not a.quick:
        Path(__file__).parent.joinpath("results").mkdir(exist_ok=True)
        Path(__file__).parent.joinpath("results/rollouts.json").write_text(json.dumps(out, indent=1))
    ratios = " ".join(f"c{x['concurrency']}={x['ratio_to_ideal']}" for x in out["levels"])
    extra = f"; ray/pool at c16 = {out['ray']['ray_over_pool']}" if isinstance(out.get("ray"), dict) else ""
    print(f"rollouts: throughput/ideal {ratios}; orchestration overhead {step_ms} ms/step (target < 10){extra}")


if __name__ == "__main__":
    sys.exit(main())
