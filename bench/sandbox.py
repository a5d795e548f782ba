"""Sandbox overheads, measured side by side in one run (a benchmark, not a test).

    python bench/sandbox.py          # full run, writes bench/results/sandbox.json
    python bench/sandbox.py --quick  # under a minute; the headline is the last line

1. start-to-exit of `python3 -c pass` inside bwrap (through `BwrapSandbox.run`, default limits: as root, run as an
   unprivileged user in its own user namespace) versus the bare process, interleaved; then with max_procs=None;
   then the same run with and without its cgroup (the totals; both set to None), interleaved, where the host gives one;
2. one `validate` of the same submission on the wine fixture: as before sealing (the host checks the path, the
   evaluator runs over the live workspace; reconstructed here, without and with today's cgroup) and sealed
   (`synthsci.seal.score_submission`: snapshot, checks, a fresh sandbox over pristine files), interleaved;
3. the round trip of a trivial command (`true`) in a persistent `ShellSession`;
4. sandboxes pickled into, and created inside, `ProcessPoolExecutor` workers.
"""
import argparse, json, os, pickle, statistics, subprocess, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from _common import Bench
from synthsci.sandbox import BwrapSandbox, SandboxLimits, get_sandbox
from synthsci.shell import ShellSession

def ms(xs): return round(statistics.median(xs) * 1000, 2)

def start_to_exit(sb, n):
    bare, boxed = [], []
    for _ in range(n):  # interleaved, so that both see the same machine state
        t = time.perf_counter(); subprocess.run([sys.executable, "-c", "pass"], check=True); bare.append(time.perf_counter() - t)
        t = time.perf_counter(); r = sb.run([sys.executable, "-c", "pass"]); boxed.append(time.perf_counter() - t)
        assert r.ok, r
    return bare, boxed

def cgroup_cost(sb, n):
    "The same run with its cgroup and without (both totals None: no cgroup is made), interleaved."
    nocg = BwrapSandbox(sb.workspace, SandboxLimits(timeout=60, total_memory_bytes=None, total_procs=None))
    with_cg, without = [], []
    for _ in range(n):
        t = time.perf_counter(); r = sb.run([sys.executable, "-c", "pass"]); with_cg.append(time.perf_counter() - t)
        t = time.perf_counter(); r2 = nocg.run([sys.executable, "-c", "pass"]); without.append(time.perf_counter() - t)
        assert r.ok and r2.ok, (r, r2)
    return with_cg, without

def unsealed_validate(task, cfg, ws, sb):
    "Scoring as it was before sealing (reconstructed for the comparison): the host checks the path, the evaluator runs over the live workspace."
    sub = Path(ws) / "submission.csv"
    if not sub.is_file(): return None
    r = sb.run(["python3", f"/task/{(cfg.get('evaluation_paths') or ['evaluate.py'])[0]}", "--submission_file", str(sub)], evaluator=True,
               cwd=str(ws), env={"SYNTHSCI_SPLIT": "validation", "SYNTHSCI_HIDDEN": "/task/hidden"})
    for line in reversed(r.output.strip().splitlines()):
        try: d = json.loads(line)
        except ValueError: continue
        if isinstance(d, dict) and d: return d
    return None

def sealed_cost(n):
    "One `validate` of the same submission: as before sealing (without and with the cgroup), and sealed, interleaved."
    from synthsci.aci import load_task, prepare_workspace, task_yaml
    from synthsci.seal import score_submission
    fix = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tasks" / "wine"
    task, cfg = load_task(fix), task_yaml(fix)
    ws = prepare_workspace(task, Path(tempfile.mkdtemp(prefix="synthsci-bench-")) / "ws")
    subprocess.run([sys.executable, "baseline.py"], cwd=ws, check=True, capture_output=True)
    lim = SandboxLimits(timeout=60)
    sb = BwrapSandbox(ws, lim, hidden={task.path: "/task"})
    without_cgroup = BwrapSandbox(ws, SandboxLimits(timeout=60, total_memory_bytes=None, total_procs=None), hidden={task.path: "/task"})
    before, old_t, new_t = [], [], []
    for _ in range(n):
        t = time.perf_counter(); first = unsealed_validate(task, cfg, ws, without_cgroup); before.append(time.perf_counter() - t)   # as before this change
        t = time.perf_counter(); old = unsealed_validate(task, cfg, ws, sb); old_t.append(time.perf_counter() - t)
        t = time.perf_counter(); new = score_submission(task, cfg, ws, "validation", backend="bwrap", limits=lim, timeout=60); new_t.append(time.perf_counter() - t)
        assert first == old == new.metrics, (first, old, new)   # the same score every way
    return before, old_t, new_t

def session_round_trip(sb, n):
    with ShellSession(sb) as sh:
        times = []
        for _ in range(n):
            t = time.perf_counter(); r = sh.run("true"); times.append(time.perf_counter() - t)
            assert r.ok, r
    return times

def in_worker(args):
    "Run in a worker: use the pickled sandbox, and make a new one there too."
    sb, ws = args
    made = get_sandbox("bwrap", ws)
    return sb.run("echo $$").output.strip(), made.run(["python3", "-c", "print(6 * 7)"]).output.strip(), os.getpid()

def workers(sb, n):
    t = time.perf_counter()
    with ProcessPoolExecutor(2) as pool: out = list(pool.map(in_worker, [(sb, str(sb.workspace))] * n))
    assert all(o[:2] == ("2", "42") for o in out), out   # pid 2: the command's sandbox has its own pid namespace
    return dict(tasks=n, worker_pids=len({o[2] for o in out}), seconds=round(time.perf_counter() - t, 3),
                pickled_bytes=len(pickle.dumps(sb)))

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions; writes no results file")
    a = ap.parse_args(argv)
    bench = Bench("sandbox", a.quick)
    n_start, n_rt, n_work, n_seal = (30, 200, 4, 8) if a.quick else (150, 2000, 16, 40)
    ws = tempfile.mkdtemp(prefix="synthsci-bench-")
    sb = BwrapSandbox(ws, SandboxLimits(timeout=60))
    sb.run("true"); subprocess.run([sys.executable, "-c", "pass"])  # warm the caches
    bare, boxed = start_to_exit(sb, n_start)
    extra = ms(boxed) - ms(bare)
    root = os.geteuid() == 0
    how = (f"as root: bwrap, then setpriv to uid {sb.user[0]}, its own user namespace, prlimit with RLIMIT_NPROC"
           if root else "bwrap with its user namespace, prlimit with RLIMIT_NPROC")
    print(f"python3 -c pass: bare median {ms(bare)} ms, in bwrap median {ms(boxed)} ms, extra {extra:.2f} ms "
          f"({n_start} each, interleaved; {how})")
    # the same without a process limit: as root that also drops the nested user namespace, which shows its cost
    nolimit = BwrapSandbox(ws, SandboxLimits(timeout=60, max_procs=None))
    bare2, boxed2 = start_to_exit(nolimit, n_start)
    extra2 = ms(boxed2) - ms(bare2)
    print(f"  the same with max_procs=None: bare {ms(bare2)} ms, in bwrap {ms(boxed2)} ms, extra {extra2:.2f} ms")
    cg_extra = None
    if sb.cgroup:
        with_cg, without = cgroup_cost(sb, n_start)
        cg_extra = round(ms(with_cg) - ms(without), 2)
        print(f"  the same with its cgroup ({sb.cgroup}) {ms(with_cg)} ms, without (totals None) {ms(without)} ms: "
              f"the cgroup adds {cg_extra:.2f} ms")
    else:
        print("  no cgroup can be made here: the totals are not enforced, and cost nothing")
    before, unsealed, sealed = sealed_cost(n_seal)
    seal_extra, seal_own = round(ms(sealed) - ms(before), 2), round(ms(sealed) - ms(unsealed), 2)
    print(f"validate on the wine fixture: before this change {ms(before)} ms, unsealed with today's sandbox {ms(unsealed)} ms, "
          f"sealed {ms(sealed)} ms: {seal_extra:.2f} ms more than before, of which the sealing itself {seal_own:.2f} ms ({n_seal} each, interleaved)")
    rt = session_round_trip(sb, n_rt)
    print(f"session round trip of `true`: median {ms(rt)} ms, p90 {round(sorted(rt)[int(0.9 * len(rt))] * 1000, 2)} ms ({n_rt} commands)")
    w = workers(sb, n_work)
    print(f"workers: {w['tasks']} sandbox runs in {w['worker_pids']} worker processes in {w['seconds']} s; a sandbox pickles to {w['pickled_bytes']} bytes")
    res = dict(bare_median_ms=ms(bare), bwrap_median_ms=ms(boxed), bwrap_extra_median_ms=round(extra, 2),
               bwrap_extra_median_ms_without_process_limit=round(extra2, 2), cgroup=sb.cgroup, cgroup_extra_median_ms=cg_extra, root=root,
               root_runs_as_uid=sb.user[0] if root else None,
               session_round_trip_median_ms=ms(rt), workers=w, repetitions=dict(start=n_start, round_trip=n_rt, validate=n_seal),
               validate_median_ms=dict(before=ms(before), unsealed_today=ms(unsealed), sealed=ms(sealed)),
               sealed_validate_extra_median_ms=seal_extra, sealing_own_extra_median_ms=seal_own)
    bench.write(res)
    print(f"sealed validate extra median: {seal_extra:.1f} ms over before (target < 50 ms); "
          f"bwrap extra median{' (as root)' if root else ''}: {extra:.1f} ms over bare {ms(bare)} ms (target <= 20 ms); "
          f"session round trip median: {ms(rt)} ms (target < 5 ms) ({bench.load()}: the medians grow with it)")

if __name__ == "__main__": main()
