"""Rollout throughput: a simulated teacher that answers after a fixed delay, N rollouts in flight at once.

Prints trajectories per hour at each concurrency against the ideal (concurrency x 3600 / (steps x delay)) and the
orchestration overhead per agent step of every trajectory: its wall time less the teacher's delays, over its steps
(the sandbox's start and close, the commands, the scoring of the submission, the loop and the trajectory saves, and
whatever waiting the other rollouts on the machine cause). The headline gives the median and p90 of those per-step
figures, exactly as the JSON records them, with the machine's load. Beside them, the marginal cost of one more step
in a single rollout whose teacher answers at once (no sandbox start nor scoring in it), and the same workload
through a Ray local cluster against the local process pool.
`--quick` (< 1 min) skips Ray and 64, and writes nothing. Full run: writes bench/results/rollouts.json.
Usage: python bench/rollouts.py [--quick]
"""
import argparse, json, sys, tempfile, time
from pathlib import Path
import numpy as np
from _common import Bench

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
    # each trajectory's overhead per step: its wall time less the teacher's thinking, over its steps; and the part of
    # it spent in the interface's steps (the commands and the scoring of the submission)
    per_step = [round((t.provenance["wall_s"] - steps * delay) / steps * 1000, 1) for t in trajs]
    in_steps = [round(sum(s.execution_time for s in t.steps) / steps * 1000, 1) for t in trajs]
    return dict(concurrency=concurrency, trajectories=n, wall_s=round(wall, 2), per_hour=round(per_hour), ideal_per_hour=round(ideal),
                ratio_to_ideal=round(per_hour / ideal, 3), overhead_ms_per_step=per_step, of_which_in_interface_steps_ms=in_steps,
                overhead_ms_per_step_median=round(float(np.median(per_step)), 1), overhead_ms_per_step_p90=round(float(np.percentile(per_step, 90)), 1))


def marginal_step_ms(tasks_dir, steps=41) -> float:
    "One more step of one rollout alone, with a teacher that answers at once: (T(n steps) - T(1 step)) / (n - 1), best of 2."
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
    bench = Bench("rollouts", a.quick)
    delay, steps, rounds = (0.5, 4, 1) if a.quick else (2.0, 5, 2)
    levels = [1, 4, 16] if a.quick else [1, 4, 16, 64]
    out = dict(delay_s=delay, steps=steps, levels=[])
    with tempfile.TemporaryDirectory() as d:
        root = Path(d); tasks = make_task(root)
        out["marginal_step_ms_one_rollout"] = round(marginal_step_ms(tasks), 2)
        print(json.dumps({"marginal_step_ms_one_rollout": out["marginal_step_ms_one_rollout"]}), flush=True)
        for c in levels:
            r = measure(root / "runs", tasks, c, c * rounds, delay, steps)
            out["levels"].append(r); print(json.dumps(r), flush=True)
        if not a.quick:
            try:
                import ray
                c = 16
                ray.init(num_cpus=c, resources={"synthsci_sandbox": c}, include_dashboard=False, log_to_driver=False)   # a local cluster with 16 logical CPUs
                ray_r = measure(root / "runs", tasks, c, c * rounds, delay, steps, ray_address="auto", cpus=1.0)
                ray.shutdown()
                pool_r = next(x for x in out["levels"] if x["concurrency"] == c)
                out["ray"] = dict(ray=ray_r, pool_per_hour=pool_r["per_hour"], ray_over_pool=round(ray_r["per_hour"] / pool_r["per_hour"], 3))
                print(json.dumps(out["ray"]), flush=True)
            except ImportError:
                out["ray"] = "ray not installed"
    # the headline's figures: every trajectory's per-step overhead, at every concurrency level, as the levels record them
    every = [x for lv in out["levels"] for x in lv["overhead_ms_per_step"]]
    out["overhead_ms_per_step"] = dict(trajectories=len(every), median=round(float(np.median(every)), 1), p90=round(float(np.percentile(every, 90)), 1),
                                       over="every trajectory of the process-pool levels: (its wall time - steps x delay) / steps")
    bench.write(out)
    o = out["overhead_ms_per_step"]
    ratios = " ".join(f"c{x['concurrency']}={x['ratio_to_ideal']}" for x in out["levels"])
    by_level = " ".join(f"c{x['concurrency']}={x['overhead_ms_per_step_median']:.0f}" for x in out["levels"])
    extra = f"; ray/pool at c16 = {out['ray']['ray_over_pool']}" if isinstance(out.get("ray"), dict) else ""
    print(f"rollouts: orchestration overhead per agent step median {o['median']:.1f} ms, p90 {o['p90']:.1f} ms over {o['trajectories']} trajectories "
          f"(median by concurrency {by_level} ms; target < 10 ms); one more step of a lone rollout {out['marginal_step_ms_one_rollout']:.1f} ms; "
          f"throughput/ideal {ratios}{extra} ({bench.load()})")


if __name__ == "__main__":
    sys.exit(main())
