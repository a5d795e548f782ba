"""Task synthesis benchmark: the offline quickstart's topics -> proposals -> grounded -> coded -> valid, timed, then the
same run replayed from the recorded teacher answers (cache: replay), side by side in one process.

Reports tasks validated per hour per core (valid tasks / (validate wall time x cores in use)), the funnel, and teacher tokens per valid task: the tokens of every recorded teacher request
and answer (prompts and answers counted with the SmolLM2 tokenizer when it is cached here, else ~1.3 tokens a word)
divided by the valid tasks; the replay must rebuild the same valid tasks without a single new teacher call.
--quick: 3 topics, no results file (about a minute). The full run writes bench/results/tasks.json. Last line: headline."""
import argparse, json, os, resource, sys, tempfile, time
os.environ["HF_HUB_OFFLINE"] = "1"
from pathlib import Path


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


def cached_tokens(cache: Path, count) -> dict:
    "Teacher tokens per stage-kind of request in the recorded cache: (input, output, calls)."
    out = {}
    for f in cache.rglob("*.json"):
        d = json.loads(f.read_text())
        prompt = "\n".join(str(m.get("content") or "") for m in d["messages"])
        kind = ("taskgen" if "Task spec:" in prompt else "proposals" if "propose" in prompt.lower() else "topics")
        e = out.setdefault(kind, dict(input_tokens=0, output_tokens=0, calls=0))
        e["input_tokens"] += count(prompt); e["output_tokens"] += count(d["completion"].get("text") or ""); e["calls"] += 1
    return out


def pipeline(cfg_path: str, overrides: list, cache: Path) -> dict:
    from synthsci.core import load_config, Run
    from synthsci.topics import run_topics
    from synthsci.proposals import run_proposals
    from synthsci.grounding import run_grounding
    from synthsci.taskgen import run_taskgen
    from synthsci.validate import run_validate, task_funnel
    import synthsci.llm as L
    cfg = load_config(cfg_path, overrides)
    real = L.llm_from_config
    L_patch = lambda c, role="teacher", ledger=None, cache_dir="data/cache/llm", scripted=None: real(c, role, ledger, str(cache), scripted)
    import synthsci.topics, synthsci.proposals, synthsci.grounding, synthsci.taskgen
    for m in (synthsci.topics, synthsci.proposals, synthsci.grounding, synthsci.taskgen): m.llm_from_config = L_patch
    times = {}
    for name, fn in (("topics", run_topics), ("proposals", run_proposals), ("grounding", run_grounding), ("taskgen", run_taskgen), ("validate", run_validate)):
        t0, c0 = time.perf_counter(), cpu_s()
        fn(cfg)
        times[name] = dict(wall_s=round(time.perf_counter() - t0, 2), cpu_s=round(cpu_s() - c0, 2))
    for m in (synthsci.topics, synthsci.proposals, synthsci.grounding, synthsci.taskgen): m.llm_from_config = real
    run = Run(cfg.run_id, cfg.runs_dir)
    stages = run.manifest["stages"]
    return dict(times=times, funnel=task_funnel(run), workers=cfg.stages.get("validate", {}).get("workers", 2),
                teacher_calls=sum(s.get("calls", 0) for s in stages.values()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="3 topics, no results file")
    ap.add_argument("--config", default="configs/quickstart.yaml")
    args = ap.parse_args(argv)
    import datasets
    datasets.disable_progress_bars()
    n_topics = 3 if args.quick else 12
    with tempfile.TemporaryDirectory() as d:
        d, cache = Path(d), Path(d) / "cache"
        base = [f"runs_dir={d}/runs", f"stages.topics.n_topics={n_topics}"]
        rec = pipeline(args.config, base + ["run_id=record", "teacher.cache=record"], cache)
        rep = pipeline(args.config, base + ["run_id=replay", "teacher.cache=replay"], cache)
        how, count = counter()
        tokens = cached_tokens(cache, count)
    cores = min(rec["workers"], os.cpu_count() or 1)
    valid = rec["funnel"]["valid"]
    v = rec["times"]["validate"]
    total_in, total_out = sum(t["input_tokens"] for t in tokens.values()), sum(t["output_tokens"] for t in tokens.values())
    result = dict(
        topics=n_topics, cores=cores, valid=valid, valid_kinds=rec["funnel"]["valid_kinds"], funnel=rec["funnel"],
        validate_wall_s=v["wall_s"], pipeline_wall_s=round(sum(t["wall_s"] for t in rec["times"].values()), 2),
        stage_times=rec["times"],
        tasks_validated_per_hour_per_core=round(valid / (v["wall_s"] / 3600) / cores, 1),
        attempts_per_valid_task=round((rec["funnel"]["fixes"] + rec["funnel"]["rewrites"] + rec["funnel"]["validated"]) / max(valid, 1), 2),
        token_counter=how, teacher_tokens=tokens,
        teacher_tokens_per_valid_task=round((total_in + total_out) / max(valid, 1)),
        teacher_output_tokens_per_valid_task=round(total_out / max(valid, 1)),
        replay=dict(valid=rep["funnel"]["valid"], same_funnel=rep["funnel"] == rec["funnel"], new_teacher_calls=rep["teacher_calls"],
                    pipeline_wall_s=round(sum(t["wall_s"] for t in rep["times"].values()), 2), validate_wall_s=rep["times"]["validate"]["wall_s"]),
    )
    result["replay_vs_record_wall"] = round(result["replay"]["pipeline_wall_s"] / result["pipeline_wall_s"], 2)
    for k in ("valid", "valid_kinds", "pipeline_wall_s", "validate_wall_s", "attempts_per_valid_task", "teacher_tokens"):
        print(f"{k:38s} {result[k]}")
    print(f"{'funnel':38s} " + " -> ".join(f"{k} {rec['funnel'][k]}" for k in ("topics", "proposals", "grounded", "coded", "valid")))
    print(f"{'rejections':38s} {rec['funnel']['rejections']}")
    print(f"{'replay':38s} {result['replay']} (replay/record wall {result['replay_vs_record_wall']})")
    if not args.quick:
        out = Path("bench/results/tasks.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"tasks: {valid} valid tasks of {len(result['valid_kinds'])} kinds from {n_topics} topics in {result['pipeline_wall_s']} s; "
          f"{result['tasks_validated_per_hour_per_core']} tasks validated per hour per core; "
          f"{result['teacher_tokens_per_valid_task']} teacher tokens per valid task ({how}); replay identical: {result['replay']['same_funnel']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
