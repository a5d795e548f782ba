"""Does the scripted expert improve on the baseline? On a fixed set of scripted tasks of every kind the scripted teacher
makes (built as bench/ladder_sweep.py builds them: synthsci.taskgen.generate_task with synthsci.templates' files, from the
catalog's training datasets; the evaluation suite's datasets skipped), the baseline is run once and scored on the test
split (written into the task's YAML as validation writes it: `baseline_scores`), then the expert runs on the real rollout
path (synthsci.rollouts.run_in_process: a RolloutUnit with the `expert` policy, in the sandbox) with n seeds per task.

Records per rollout: whether its submission beats the task's measured baseline (synthsci.filter.improves with
min_improvement 0, the predicate the effect run's filter uses), the gain normalized by the baseline (|gain| / |baseline|,
signed in the metric's direction), steps, wall seconds; and per kind and overall the share that beats the baseline.
Node classification has no catalog dataset with enough rows for a scripted task (networkx/karate_club: too_few_rows),
so it is not in the set; the rows say which tasks could not be built.

Last line: the headline. Full run (2 seeds per task) writes bench/results/expert.json; --quick: 3 tasks, 1 seed, no file.
Usage: python bench/expert.py [--quick] [--seeds N] [--workers N] [--only DATASET:TARGET ...]"""
import argparse, json, os, shutil, subprocess, sys, tempfile, threading, time
os.environ["HF_HUB_OFFLINE"] = "1"
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Bench

TASKS = [  # (dataset, target): every kind the catalog can make a scripted task of, the fast ones
    ("statsmodels/anes96", "vote"), ("statsmodels/grunfeld", "invest"), ("statsmodels/engel", "foodexp"), ("sklearn/digits", "label"),
    ("sktime/GunPoint", "label"), ("sktime/ArrowHead", "label"), ("sktime/Tecator", "fat"),
    ("statsmodels/co2", "co2"), ("sktime/Airline", "Passengers"), ("statsmodels/macrodata", "cpi"), ("statsmodels/elnino", "temperature"),
    ("networkx/les_miserables", "label"), ("networkx/davis_southern_women", "label"), ("vaderSentiment/lexicon", "valence"),
    ("networkx/karate_club", "club")]
QUICK = [("statsmodels/co2", "co2"), ("sktime/GunPoint", "label"), ("networkx/les_miserables", "label")]
LOADING = threading.Lock()
EXPERT = dict(attempts=[2, 3], run_timeout_s=120)   # configs/effect.yaml's stages.rollouts.expert
MAX_STEPS = 30                                       # configs/effect.yaml's stages.rollouts.max_steps


def build(dataset_id: str, target: str, root: Path):
    "The scripted task on (dataset, target), its baseline run and scored on the test split; (task, None) or (None, why)."
    from synthsci.aci import load_task, task_yaml
    from synthsci.cards import catalog_card
    from synthsci.catalog import CATALOG
    from synthsci.core import Proposal, make_id
    from synthsci.llm import ScriptedLLM
    from synthsci.proposals import METRICS
    from synthsci.sandbox import SandboxLimits
    from synthsci.seal import score_submission
    from synthsci.taskgen import TaskgenOptions, generate_task
    from synthsci.templates import scripted_taskgen
    from synthsci.validate import write_baseline_scores
    e = CATALOG[dataset_id]
    metric, direction, idea = METRICS[e.task_kind]
    p = Proposal(id=make_id("proposal", "expert-bench", dataset_id, target), parent_id="topic-expert-bench", topic=f"A study of {e.title}",
                 dataset_id=dataset_id, target=target, metric=metric, direction=direction, task_kind=e.task_kind, baseline_idea=idea,
                 resources={"cpu_minutes": 2})
    with LOADING: t = generate_task(p, catalog_card(dataset_id), ScriptedLLM(scripted_taskgen(p_bug=0)), root, TaskgenOptions(min_eval_rows=30))
    if not hasattr(t, "path"): return None, f"taskgen:{t.kind}: {t.reason[:200]}"
    task = load_task(t.path)
    ws = root / "baseline-runs" / task.id
    shutil.copytree(t.path, ws, ignore=shutil.ignore_patterns("hidden", "reference", "reference.py"))
    r = subprocess.run([sys.executable, "baseline.py"], cwd=ws, capture_output=True, text=True, timeout=600)
    if r.returncode: return None, f"baseline failed: {r.stderr.strip()[-200:]}"
    cfg = task_yaml(t.path)
    s = {split: score_submission(task, cfg, ws, split, limits=SandboxLimits(timeout=120)).metrics for split in ("validation", "test")}
    if not all(s.values()): return None, f"baseline not scored: {s}"
    write_baseline_scores(t.path, metric, {k: v[metric] for k, v in s.items()})
    return load_task(t.path), None


def roll(task, seed: int, folder: Path) -> dict:
    "One expert rollout on the real rollout path; the row."
    from synthsci.filter import improves, measured_baseline, submission_score
    from synthsci.rollouts import RolloutOptions, RolloutUnit, run_in_process, unit_id
    opts = RolloutOptions(policy="expert", max_steps=MAX_STEPS, expert=dict(EXPERT), wall_time_s=1800)
    unit = RolloutUnit(id=unit_id(task.id, seed), task=task, seed=seed, temperature=0.0, options=opts, folder=str(folder))
    t0 = time.perf_counter()
    traj = run_in_process(unit)
    wall = round(time.perf_counter() - t0, 1)
    base, _ = measured_baseline(task)
    sub = submission_score(traj, task.metric)
    verdict = improves({task.id: task}, 0.0)(traj)
    gain = None if sub is None else (sub - base if task.direction == "max" else base - sub) / max(abs(base), 1e-12)
    kinds = [s.thought.split("This is a ")[1].split(" task")[0] for s in traj.steps if "This is a " in (s.thought or "")]
    return dict(seed=seed, beats_baseline=verdict is True, why_not=None if verdict is True else verdict, baseline=base, submitted=sub,
                gain_normalized=None if gain is None else round(gain, 4), steps=len(traj.steps), wall_s=wall, exit_status=traj.exit_status,
                kind_seen=kinds[0] if kinds else None, actions_head=[s.action.splitlines()[0][:80] for s in traj.steps][:12])


def share(rows):
    ok = [r for r in rows if r.get("beats_baseline") is not None]
    gains = sorted(r["gain_normalized"] for r in ok if r["gain_normalized"] is not None)
    return dict(rollouts=len(ok), beats_baseline=round(sum(r["beats_baseline"] for r in ok) / max(len(ok), 1), 4),
                median_gain_normalized=gains[len(gains) // 2] if gains else None,
                median_steps=sorted(r["steps"] for r in ok)[len(ok) // 2] if ok else None,
                median_wall_s=sorted(r["wall_s"] for r in ok)[len(ok) // 2] if ok else None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="3 tasks, 1 seed, no results file")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per task (default 2; --quick 1)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", nargs="*", help="DATASET:TARGET pairs (no results file)")
    args = ap.parse_args(argv)
    bench = Bench("expert", args.quick or bool(args.only))
    import datasets
    datasets.disable_progress_bars()
    from synthsci.catalog import CATALOG
    todo = QUICK if args.quick else [tuple(x.split(":", 1)) for x in args.only] if args.only else TASKS
    from synthsci.catalog import training_datasets
    allowed = {e.id for e in training_datasets()}   # the evaluation suite's datasets are never trained on: skipped
    todo = [(d, t) for d, t in todo if d in allowed]
    seeds = list(range(args.seeds or (1 if args.quick else 2)))
    rows = []
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        built = list(ThreadPoolExecutor(args.workers).map(lambda dt: (dt, *build(*dt, root / "tasks")), todo))
        jobs = [(dt, task, s) for dt, task, why in built if task is not None for s in seeds]
        for dt, task, why in built:
            if task is None: rows.append(dict(dataset=dt[0], target=dt[1], kind=CATALOG[dt[0]].task_kind, skipped=why))
        def one(job):
            (ds, tg), task, seed = job
            r = dict(dataset=ds, target=tg, kind=CATALOG[ds].task_kind, metric=task.metric, **roll(task, seed, root / "rollouts"))
            print(f"{ds + ':' + tg:36s} {r['kind']:28s} seed {seed}: {'beats' if r['beats_baseline'] else 'MISSES'} the baseline "
                  f"({task.metric} {r['submitted']} vs {r['baseline']}, gain {r['gain_normalized']}), {r['steps']} steps, {r['wall_s']} s", flush=True)
            return r
        with ThreadPoolExecutor(args.workers) as pool: rows += list(pool.map(one, jobs))
    done = [r for r in rows if "skipped" not in r]
    by_kind = {k: share([r for r in done if r["kind"] == k]) for k in sorted({r["kind"] for r in done})}
    per_task = {f"{r['dataset']}:{r['target']}": share([x for x in done if (x["dataset"], x["target"]) == (r["dataset"], r["target"])]) for r in done}
    total = share(done)
    for k, v in by_kind.items(): print(f"  {k:28s} beats the baseline on {v['beats_baseline']:.0%} of {v['rollouts']} rollouts, median gain {v['median_gain_normalized']}")
    for r in rows:
        if "skipped" in r: print(f"  skipped {r['dataset']}:{r['target']} ({r['kind']}): {r['skipped']}")
    bench.write(dict(summary=dict(overall=total, by_kind=by_kind, per_task=per_task, seeds=len(seeds), expert=EXPERT, max_steps=MAX_STEPS,
                                  skipped=[f"{r['dataset']}:{r['target']}: {r['skipped']}" for r in rows if "skipped" in r]), rows=rows))
    print(f"expert bench: the submission beats the baseline on {total['beats_baseline']:.0%} of {total['rollouts']} rollouts over {len(by_kind)} kinds "
          f"(median normalized gain {total['median_gain_normalized']}, median {total['median_steps']} steps, {total['median_wall_s']} s per rollout); "
          f"{bench.wall_s()} s; {bench.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
