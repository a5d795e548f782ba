"""Task synthesis benchmark: the offline quickstart's topics -> proposals -> grounded -> coded -> valid, timed, with the
checks that a task is worth learning from (headroom, a stable metric, a ladder constant < baseline < reference beyond
noise, one task per dataset, target and metric, topics only on datasets that fit them) and without them, side by side
in one process on the same topics and the same recorded teacher answers.

Reports: valid tasks before and after the new checks; each rejection reason's count; the share of tasks whose ladder
(constant, baseline, reference on the test rows) is ordered (target >= 90 %), and Kendall's tau, per kind of task;
distinct datasets among the valid tasks and any (dataset, target, metric) kept twice (target: none); the validation
time the new checks add per task; tasks validated per hour per core; teacher tokens per valid task (the SmolLM2
tokenizer when it is cached here, else ~1.3 tokens a word). The full run also replays the run from the recorded
teacher answers (cache: replay), which must rebuild the same valid tasks without a new teacher call.
--quick: 3 topics of two fast areas (forecasting, language), no replay, no results file (about a minute on an idle machine). The full run writes bench/results/tasks.json with the
machine's load beside the figures. Last line: the headline. Usage: python bench/tasks.py [--quick] [--topics N]"""
import argparse, json, os, resource, sys, tempfile, time
os.environ["HF_HUB_OFFLINE"] = "1"
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Bench

QUICK_AREAS = ["stages.topics.areas=[time-series forecasting, language]"]   # --quick: areas whose tasks validate in seconds
NEW_CHECKS_OFF = ["stages.validate.quality=false", "stages.taskgen.dedupe=false", "stages.taskgen.min_eval_rows=0",
                  "stages.grounding.spread=false"]   # the checks before issue 16 (and no re-proposal of a task the run already has)


def cpu_s() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def counter():
    "A token counter: the SmolLM2 tokenizer when it is cached, else words x 1.3."
    try:
        from transformers import AutoTokenizer
        from synthsci.llm import model_cache_dir
        tok = AutoTokenizer.from_pretrained(str(model_cache_dir() / "SmolLM2-135M-Instruct"))
        return "SmolLM2 tokenizer", lambda s: len(tok(s or "", add_special_tokens=False)["input_ids"])
    except Exception:
        return "words x 1.3", lambda s: int(round(1.3 * len((s or "").split())))


def request_kind(prompt: str) -> str:
    "Which stage asked: the task-code prompt holds the task spec, the reviewer's starts 'Review this task', a proposal's names its topic and area."
    if "Task spec:" in prompt: return "taskgen"
    if "Review this task" in prompt: return "review"
    if "Topic: " in prompt and "Area: " in prompt: return "proposals"
    return "topics"


def cached_tokens(cache: Path, count) -> dict:
    "Teacher tokens per stage-kind of request in the recorded cache: (input, output, calls)."
    out = {}
    for f in cache.rglob("*.json"):
        d = json.loads(f.read_text())
        prompt = "\n".join(str(m.get("content") or "") for m in d["messages"])
        e = out.setdefault(request_kind(prompt), dict(input_tokens=0, output_tokens=0, calls=0))
        e["input_tokens"] += count(prompt); e["output_tokens"] += count(d["completion"].get("text") or ""); e["calls"] += 1
    return out


def pipeline(cfg_path: str, overrides: list, cache: Path) -> dict:
    "The five stages of the config, timed, with the teacher's answers cached in `cache`; the funnel and the ladder summary."
    from synthsci.core import load_config, Run
    from synthsci.topics import run_topics
    from synthsci.proposals import run_proposals
    from synthsci.grounding import run_grounding
    from synthsci.taskgen import run_taskgen
    from synthsci.validate import run_validate, task_funnel
    cfg = load_config(cfg_path, overrides + [f"teacher.cache_dir={cache}"])
    times = {}
    for name, fn in (("topics", run_topics), ("proposals", run_proposals), ("grounding", run_grounding), ("taskgen", run_taskgen), ("validate", run_validate)):
        t0, c0 = time.perf_counter(), cpu_s()
        fn(cfg)
        times[name] = dict(wall_s=round(time.perf_counter() - t0, 2), cpu_s=round(cpu_s() - c0, 2))
    run = Run(cfg.run_id, cfg.runs_dir)
    stages, summary = run.manifest["stages"], run.path / "05_validated" / "ladder_summary.json"
    from synthsci.core import Task, ValidationReport
    valid = {r.task_id for r in run.read("05_validated", ValidationReport) if r.passed}
    keys = [(t.dataset_id, Path(t.path).joinpath("taskgen.json").exists() and json.loads(Path(t.path, "taskgen.json").read_text())["spec"]["target"], t.metric)
            for t in run.read("04_tasks", Task) if t.id in valid]
    g = stages.get("03_grounded", {})
    return dict(times=times, funnel=task_funnel(run), workers=cfg.stages.get("validate", {}).get("workers", 2),
                spread=dict(re_proposed=g.get("spread", 0), none_left=g.get("spread_none_left", 0)),
                teacher_calls=sum(s.get("calls", 0) - s.get("cached_calls", 0) for s in stages.values()),   # calls the cache did not answer
                ladder=json.loads(summary.read_text()) if summary.exists() else None,
                repeated_keys=sorted({str(k) for k in keys if keys.count(k) > 1}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="3 topics of two fast areas, no replay, no results file")
    ap.add_argument("--config", default="configs/quickstart.yaml")
    ap.add_argument("--topics", type=int, default=None, help="topics (default: the config's; 3 with --quick)")
    args = ap.parse_args(argv)
    bench = Bench("tasks", args.quick)
    import datasets, yaml
    datasets.disable_progress_bars()
    n_topics = args.topics or (3 if args.quick else yaml.safe_load(Path(args.config).read_text())["stages"]["topics"]["n_topics"])
    with tempfile.TemporaryDirectory() as d:
        d, cache = Path(d), Path(d) / "cache"
        base = [f"runs_dir={d}/runs", f"stages.topics.n_topics={n_topics}"] + (QUICK_AREAS if args.quick else [])
        after = pipeline(args.config, base + ["run_id=after", "teacher.cache=record"], cache)
        before = pipeline(args.config, base + ["run_id=before", "teacher.cache=record"] + NEW_CHECKS_OFF, cache)
        rep = None if args.quick else pipeline(args.config, base + ["run_id=replay", "teacher.cache=replay"], cache)
        how, count = counter()
        tokens = cached_tokens(cache, count)
    f, fb = after["funnel"], before["funnel"]
    cores = min(after["workers"], os.cpu_count() or 1)
    valid, v = f["valid"], after["times"]["validate"]
    per_task = lambda r: r["times"]["validate"]["wall_s"] / max(r["funnel"]["validated"], 1)
    total_in, total_out = sum(t["input_tokens"] for t in tokens.values()), sum(t["output_tokens"] for t in tokens.values())
    ladder = (after["ladder"] or {}).get("all") or {}
    result = dict(
        topics=n_topics, cores=cores, valid_before=fb["valid"], valid_after=valid,
        rejections_after=f["rejections"], rejections_before=fb["rejections"], funnel_after=f, funnel_before=fb,
        ladder=after["ladder"], ladder_ordered_share=ladder.get("ordered"), ladder_beyond_noise_share=ladder.get("beyond_noise"),
        ladder_mean_tau=ladder.get("mean_tau"), ladder_target_ordered_share=0.9,
        valid_kinds=f["valid_kinds"], valid_datasets=f.get("valid_datasets", {}), distinct_valid_datasets=len(f.get("valid_datasets", {})),
        repeated_dataset_target_metric_after=after["repeated_keys"], repeated_dataset_target_metric_before=before["repeated_keys"],
        spread_after=after["spread"],   # grounding re-proposed a task the run already had on another dataset (or found none left)
        validate_s_per_task_before=round(per_task(before), 2), validate_s_per_task_after=round(per_task(after), 2),
        added_validate_s_per_task=round(per_task(after) - per_task(before), 2),
        validate_wall_s=v["wall_s"], pipeline_wall_s=round(sum(t["wall_s"] for t in after["times"].values()), 2), stage_times=after["times"],
        stage_times_before=before["times"], tasks_validated_per_hour_per_core=round(valid / (v["wall_s"] / 3600) / cores, 1),
        attempts_per_valid_task=round((f["fixes"] + f["rewrites"] + f["validated"]) / max(valid, 1), 2),
        token_counter=how, teacher_tokens=tokens, teacher_tokens_per_valid_task=round((total_in + total_out) / max(valid, 1)),
        teacher_output_tokens_per_valid_task=round(total_out / max(valid, 1)),
        load_avg_1_5_15=[round(x, 2) for x in os.getloadavg()], cpu_count=os.cpu_count(),
    )
    if rep:
        result["replay"] = dict(valid=rep["funnel"]["valid"], same_funnel=rep["funnel"] == f, new_teacher_calls=rep["teacher_calls"],
                                pipeline_wall_s=round(sum(t["wall_s"] for t in rep["times"].values()), 2), validate_wall_s=rep["times"]["validate"]["wall_s"])
    for k in ("valid_before", "valid_after", "spread_after", "valid_kinds", "valid_datasets", "ladder_ordered_share", "ladder_beyond_noise_share", "ladder_mean_tau",
              "validate_s_per_task_before", "validate_s_per_task_after", "pipeline_wall_s", "teacher_tokens"):
        print(f"{k:38s} {result[k]}")
    print(f"{'ladder by kind':38s} {(after['ladder'] or {}).get('by_kind')}")
    print(f"{'funnel after':38s} " + " -> ".join(f"{k} {f[k]}" for k in ("topics", "proposals", "grounded", "coded", "valid")))
    print(f"{'funnel before':38s} " + " -> ".join(f"{k} {fb[k]}" for k in ("topics", "proposals", "grounded", "coded", "valid")))
    print(f"{'rejections after':38s} {f['rejections']}")
    print(f"{'repeated (dataset, target, metric)':38s} before {before['repeated_keys']}, after {after['repeated_keys']}")
    if rep: print(f"{'replay':38s} {result['replay']}")
    bench.write(result)
    pct = lambda x: "-" if x is None else f"{x:.0%}"
    print(f"tasks: {fb['valid']} valid tasks before the new checks, {valid} after, from {n_topics} topics; ladder ordered on "
          f"{pct(ladder.get('ordered'))} of {ladder.get('tasks', 0)} tasks (target 90%), "
          f"beyond noise on {pct(ladder.get('beyond_noise'))}, mean tau {ladder.get('mean_tau')}; "
          f"{result['distinct_valid_datasets']} distinct datasets, {len(after['repeated_keys'])} repeated (dataset, target, metric); "
          f"+{result['added_validate_s_per_task']} s validation per task; {bench.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
