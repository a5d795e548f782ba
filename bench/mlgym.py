"""The MLGym adapter's costs, task by task, side by side in one run (a benchmark, not a test).

    python bench/mlgym.py                      # full run on the fixture checkout, writes bench/results/mlgym.json
    python bench/mlgym.py --quick              # under a minute; the headline is the last line
    python bench/mlgym.py --mlgym-root ~/MLGym --reps 1   # a real checkout (run `synthsci mlgym prepare` first), writes bench/results/mlgym_real.json

For each scored task of the checkout, interleaved across tasks, repeated:
1. one scored attempt through the real agent loop, in this process (a scripted policy: the command that makes a
   submission, `validate`, `submit`), split into: sandbox start (the agent interface: workspace copy, sandbox and
   shell, timed on its own), the agent's command, the evaluator (each sealed scoring: snapshot, checks, a fresh
   sandbox over the pristine task files, the evaluator), and bookkeeping (the rest: the loop, trajectory saves,
   results.json, Best Attempt@k);
2. the evaluator alone, bare (the host's python in a copy of the workspace, no sandbox), so that the sealing's own
   share of a scoring shows; an evaluator that opens /home/agent/workspace cannot run bare;
3. one measured baseline run (`measure_baseline`, k=1): the baseline script in the sandbox, then its sealed scoring.
"""
import argparse, json, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from _common import Bench
from synthsci.aci import ACI, prepare_workspace, task_yaml
from synthsci.mlgym import (AgentLimits, attempt, build_task, measure_baseline, mlgym_tasks, prepare_checkout, scripted_runner,
                            skip_reason, submission_files)

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mlgym_root"
say = lambda cmd: f"DISCUSSION\nNext.\n```\n{cmd}\n```"
MAKERS = {   # the command that makes a submission, by task key; others run their baseline script, or submit the starter strategy
    "titanic": ("python -c \"import pandas as pd; t = pd.read_csv('data/test.csv'); pd.DataFrame({'PassengerId': t.PassengerId, "
                "'Survived': (t.Sex == 'female').astype(int)}).to_csv('submission.csv', index=False)\""),
}

def med(xs): return round(statistics.median(xs), 4) if xs else None

def maker(task, cfg) -> str:
    if task.id in MAKERS: return MAKERS[task.id]
    evs = {Path(str(p)).name for p in cfg.get("evaluation_paths") or []}
    script = next((str(p) for p in cfg.get("baseline_paths") or [] if Path(str(p)).name not in evs), None)
    if script: return f"python {script}"
    return "cp sample_submission.csv submission.csv" if "sample_submission.csv" in cfg.get("starter_code", []) else "ls"

def sandbox_start(task, root: Path) -> float:
    "The agent interface's start and close: the workspace copy, the sandbox and its shell."
    ws = root / f"aci-{task.id}"
    t = time.perf_counter()
    ACI(task, ws).close()
    dt = time.perf_counter() - t
    shutil.rmtree(ws, ignore_errors=True)
    return dt

def one_attempt(task, cfg, root: Path, i: int) -> dict:
    "One scored attempt in this process; its wall time and its steps' times."
    cmd = maker(task, cfg)
    t = time.perf_counter()
    r = attempt(task, "scripted", 1, root / "runs" / f"{task.id}-{i}", "scripted", limits=AgentLimits(max_steps=5),
                runner=scripted_runner(lambda u: [say(cmd), say("validate"), say("submit")]))
    wall = time.perf_counter() - t
    traj = json.loads(next((root / "runs" / f"{task.id}-{i}" / "traj").glob("*/*.traj")).read_text())
    steps = traj["trajectory"]
    scoring = [s["execution_time"] for s in steps if s["action"].strip() in ("validate", "submit")]
    agent = [s["execution_time"] for s in steps if s["action"].strip() not in ("validate", "submit")]
    return dict(wall=wall, scoring=scoring, agent=sum(agent), steps=sum(s["execution_time"] for s in steps), score=r.best_submission,
                status=r.exit_statuses[0])

def bare_evaluator(task, cfg, root: Path) -> float | None:
    "The task's evaluator run by the host's python, no sandbox, over a workspace where the submission was made (None when it cannot run bare)."
    ws = prepare_workspace(task, root / f"bare-{task.id}")
    try:
        cmd = maker(task, cfg)
        if cmd.startswith("python "): cmd = f"{sys.executable} {cmd[len('python '):]}"   # the host's python: no venv on PATH here
        if cmd != "ls" and subprocess.run(cmd, shell=True, cwd=ws, capture_output=True).returncode != 0: return None
        ev = str((cfg.get("evaluation_paths") or ["evaluate.py"])[-1])     # the task's own evaluator (the first is our wrapper)
        args = ["--submission_file", "submission.csv"] if task.task_entrypoint == "CSVSubmissionTasks" else []
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-E", "-s", ev, *args], cwd=ws, capture_output=True, text=True)   # no user site nor PYTHON* variables, as in the sandbox
        dt = time.perf_counter() - t
        return dt if r.returncode == 0 and r.stdout.strip() else None
    finally:
        for p in ws.rglob("*"): p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(ws, ignore_errors=True)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repetition, four tasks; writes no results file")
    ap.add_argument("--mlgym-root", help="a real checkout instead of the fixture (its prepared data is used as it is)")
    ap.add_argument("--reps", type=int, help="repetitions (default: 1 with --quick, else 5)")
    a = ap.parse_args(argv)
    bench = Bench("mlgym" if not a.mlgym_root else "mlgym_real", a.quick)
    reps = a.reps or (1 if a.quick else 5)
    tmp = Path(tempfile.mkdtemp(prefix="synthsci-bench-mlgym-"))
    root = Path(a.mlgym_root) if a.mlgym_root else tmp / "MLGym"
    if not a.mlgym_root:
        shutil.copytree(FIXTURE, root)
        prepare_checkout(root)                 # the fixture's House Price stand-in needs its split
    found = [t for t in mlgym_tasks(root) if skip_reason(t, gpu=False) is None]
    if a.quick: found = [t for t in found if t.key in ("tinyBattle", "tinyBlotto", "tinyHouse", "titanic")] or found[:4]
    tasks = [build_task(t, tmp / "tasks") for t in found]
    cfgs = {t.id: task_yaml(t.path) for t in tasks}
    rows = {t.id: dict(entrypoint=t.task_entrypoint, start=[], agent=[], scoring=[], bookkeeping=[], wall=[], bare=[], baseline=[], status=[])
            for t in tasks}
    for i in range(reps):                     # interleaved: every task sees the same machine state
        for t in tasks:
            r = rows[t.id]
            r["start"].append(sandbox_start(t, tmp))
            at = one_attempt(t, cfgs[t.id], tmp, i)
            r["wall"].append(at["wall"]); r["agent"].append(at["agent"]); r["scoring"] += at["scoring"]; r["status"].append(at["status"])
            r["bookkeeping"].append(at["wall"] - r["start"][-1] - at["steps"])
            b = bare_evaluator(t, cfgs[t.id], tmp)
            if b is not None: r["bare"].append(b)
            m = measure_baseline(t, 1, tmp / "baselines" / f"{t.id}-{i}")
            r["baseline"].append(dict(seconds=m["seconds"][0] if m["seconds"] else None, value=m["mean"], error=(m["errors"] or [None])[0]))
    res = dict(checkout=str(a.mlgym_root or "tests/fixtures/mlgym_root"), repetitions=reps, tasks={})
    head = f"{'task':<28}{'attempt s':>10}{'start':>8}{'agent':>8}{'scoring':>9}{'bare ev':>9}{'sealing':>9}{'bookkeep':>10}{'baseline s':>12}  baseline run"
    print(head)
    for key, r in rows.items():
        score = med(r["scoring"]); bare = med(r["bare"])
        secs = [b["seconds"] for b in r["baseline"] if b["seconds"] is not None and b["value"] is not None]
        base = r["baseline"][0]
        d = dict(entrypoint=r["entrypoint"], attempt_s=med(r["wall"]), sandbox_start_s=med(r["start"]), agent_command_s=med(r["agent"]),
                 scoring_s=score, scorings_per_attempt=2, evaluator_bare_s=bare, sealing_overhead_s=None if bare is None else round(score - bare, 4),
                 bookkeeping_s=med(r["bookkeeping"]), baseline_run_s=med(secs),
                 baseline_value=base["value"], baseline_error=base["error"], exit_statuses=sorted(set(r["status"])),
                 scored=all(s == "submitted" for s in r["status"]))
        res["tasks"][key] = d
        show = lambda v, w: f"{'-' if v is None else f'{v:.3f}':>{w}}"
        print(f"{key:<28}{show(d['attempt_s'], 10)}{show(d['sandbox_start_s'], 8)}{show(d['agent_command_s'], 8)}{show(score, 9)}"
              f"{show(bare, 9)}{show(d['sealing_overhead_s'], 9)}{show(d['bookkeeping_s'], 10)}{show(d['baseline_run_s'], 12)}  "
              f"{'value ' + format(base['value'], '.6g') if base['value'] is not None else (base['error'] or '')[:60]}")
    t = [x for x in res["tasks"].values() if x["scored"]]   # seconds per *scored* attempt
    pick = lambda k: med([x[k] for x in t if x[k] is not None])
    res["median_over_tasks"] = {k: pick(k) for k in ("attempt_s", "sandbox_start_s", "agent_command_s", "scoring_s", "evaluator_bare_s",
                                                     "sealing_overhead_s", "bookkeeping_s", "baseline_run_s")}
    bench.write(res)
    shutil.rmtree(tmp, ignore_errors=True)
    m = res["median_over_tasks"]
    f = lambda v: "-" if v is None else f"{v:.2f}"
    print(f"mlgym: a scored attempt {f(m['attempt_s'])} s (median over {len(t)} tasks whose attempts scored): sandbox start {f(m['sandbox_start_s'])} s, "
          f"agent command {f(m['agent_command_s'])} s, 2 sealed scorings of {f(m['scoring_s'])} s each (bare evaluator {f(m['evaluator_bare_s'])} s, "
          f"sealing {f(m['sealing_overhead_s'])} s), bookkeeping {f(m['bookkeeping_s'])} s (the rest; below the timers' noise when about 0); "
          f"a measured baseline run {f(m['baseline_run_s'])} s ({bench.load()}: the times grow with it)")

if __name__ == "__main__": main()
