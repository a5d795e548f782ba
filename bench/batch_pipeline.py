"""The same small pipeline with its teacher called interactively and through the provider's batch interface, side by side.

Both runs go through `synthsci serve --spec scripted` (the offline teacher behind the providers' wire formats, batches
included), one server per run so that each counts its own requests and batches, with `teacher.spec` a priced provider
model (default openai:gpt-5, the paper's GPT-5-class teacher) whose SDK is pointed at the server by its environment, so
that the ledger prices the calls as that model. The runs are sequential, not concurrent, so that their wall times compare.
Recorded per run: wall time (the run's summary.json), teacher calls paid for, requests the server answered, batches it
created, tokens and ledger cost per stage; and the funnel (units, kept, rejected, task ids) of both, which must be equal.
The server's batch queue answers at once (--batch-delay 0): a real provider takes minutes to 24 h, so the batch run's
wall time here is the floor that batching itself adds (collection windows and polls), not a provider's latency.

--quick: topics and proposals on 3 topics, under a minute, writes nothing. The full run: topics -> validate on 6 topics
(validation's fixes and review are teacher calls too), writes bench/results/batch_pipeline.json.
Last line: the headline (cost ratio batch/interactive, wall times, calls and batches, funnel equal), with the load."""
import argparse, json, os, re, subprocess, sys, tempfile, threading
from pathlib import Path
from _common import Bench
from synthsci.core import STAGES
from synthsci.llm import BATCH_DISCOUNT
from synthsci.pipeline import kept_rejected

CLI = [sys.executable, "-m", "synthsci.cli"]
CONFIG = """run_id: {run_id}
runs_dir: {runs}
teacher: {{spec: "{spec}", cache: record, max_retries: 0, batch: {batch}}}
pipeline: [{stages}]
stages:
  topics: {{n_topics: {n_topics}, areas: [tabular]}}
  taskgen: {{workers: 2}}
  validate: {{k: 2, timeout_s: 60, workers: 2, quality: false}}
"""


def serve() -> tuple[subprocess.Popen, str, list, threading.Thread]:
    "`synthsci serve --spec scripted` on a free port: its process, URL, the lines it logs (one per answer, one per batch created) and their reader."
    p = subprocess.Popen(CLI + ["serve", "--spec", "scripted", "--port", "0", "--p-bug", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    m = re.search(r"at (http://127\.0\.0\.1:\d+)/v1 ", p.stdout.readline())
    if not m: p.kill(); raise SystemExit("synthsci serve did not start: " + p.stderr.read()[-2000:])
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(p.stderr), daemon=True)
    reader.start()
    return p, m[1], lines, reader


def provider_env(spec: str, url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "SYNTHSCI_TEACHER"))}
    if spec.startswith("openai:"): return {**env, "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": url + "/v1"}
    return {**env, "ANTHROPIC_API_KEY": "sk-ant-bench", "ANTHROPIC_BASE_URL": url}


def run_once(tmp: Path, name: str, spec: str, batch: bool, stages: list, n_topics: int) -> dict:
    "One `synthsci run` through its own server: what the run's summary and manifest say, and what the server saw."
    proc, url, lines, reader = serve()
    try:
        d = tmp / name; d.mkdir()
        (d / "c.yaml").write_text(CONFIG.format(run_id=name, runs=d / "runs", spec=spec, batch=str(batch).lower(), stages=", ".join(stages), n_topics=n_topics))
        r = subprocess.run(CLI + ["run", "c.yaml"], cwd=d, env=provider_env(spec, url), capture_output=True, text=True, timeout=1800)
        if r.returncode != 0: raise SystemExit(f"{name}: synthsci run failed:\n{(r.stdout + r.stderr)[-3000:]}")
    finally:
        proc.kill(); proc.wait(); reader.join(10)   # every line the server wrote, read
    run_dir = d / "runs" / name
    summary, manifest = json.loads((run_dir / "summary.json").read_text()), json.loads((run_dir / "manifest.json").read_text())["stages"]
    per_stage, funnel = {}, {}
    for s in stages:
        folder, e = STAGES[s].folder, manifest[STAGES[s].folder]
        per_stage[s] = dict(paid_calls=e["calls"] - e["cached_calls"], cached_calls=e["cached_calls"], input_tokens=e["input_tokens"], output_tokens=e["output_tokens"],
                            cost_usd=e["cost_usd"], status=e["status"])
        rej = sorted(p.stem for p in (run_dir / folder / "rejected").glob("*.jsonl"))
        funnel[s] = dict(units=[e["units_done"], e["units_total"]], kept_rejected=list(kept_rejected(folder, e)),
                         ids=sorted(p.stem for p in (run_dir / folder).glob("*.jsonl")), rejected=rej)
    if "taskgen" in stages: funnel["tasks"] = sorted(p.name for p in (run_dir / "04_tasks" / "tasks").iterdir() if not p.name.startswith("."))
    return dict(spec=spec, batch=batch, wall_s=summary["wall_s"]["pipeline"], stage_wall_s={s: summary["stages"][s]["wall_s"] for s in stages},
                teacher_calls=sum(v["paid_calls"] for v in per_stage.values()), server_requests=sum(l.startswith("200 ") for l in lines),
                batches=sum(l.startswith("batch ") for l in lines), cost_usd=round(sum(v["cost_usd"] for v in per_stage.values()), 6),
                stages=per_stage, funnel=funnel)


def main(quick: bool, spec: str):
    bench = Bench("batch_pipeline", quick)
    stages = ["topics", "proposals"] if quick else ["topics", "proposals", "grounding", "taskgen", "validate"]
    n_topics = 3 if quick else 6
    with tempfile.TemporaryDirectory(prefix="synthsci-bench-") as tmp:
        inter = run_once(Path(tmp), "interactive", spec, False, stages, n_topics)
        batch = run_once(Path(tmp), "batch", spec, True, stages, n_topics)
    same_funnel, same_calls = inter["funnel"] == batch["funnel"], inter["teacher_calls"] == batch["teacher_calls"]
    ratio = batch["cost_usd"] / inter["cost_usd"] if inter["cost_usd"] else None
    result = dict(spec=spec, stages=stages, n_topics=n_topics, batch_discount=BATCH_DISCOUNT, interactive=inter, batch=batch,
                  cost_ratio_batch_over_interactive=ratio and round(ratio, 4),
                  wall_ratio_batch_over_interactive=round(batch["wall_s"] / inter["wall_s"], 3), same_funnel=same_funnel, same_teacher_calls=same_calls,
                  server_batch_delay_s=0.0, pythonpath=os.environ.get("PYTHONPATH"))   # anything put in front of the package is on record
    bench.write(result)
    tasks = len(batch["funnel"].get("tasks", []))
    print(f"batch_pipeline: {'+'.join(stages)} on {n_topics} topics ({spec}): interactive ${inter['cost_usd']:.4f} in {inter['wall_s']:.0f} s, "
          f"batch ${batch['cost_usd']:.4f} in {batch['wall_s']:.0f} s ({batch['batches']} batches, {batch['teacher_calls']} calls); "
          f"cost ratio {ratio:.3f}; funnel equal: {'yes' if same_funnel else 'NO'} ({tasks} tasks); {bench.load()}")
    if not (same_funnel and same_calls): sys.exit(1)


if __name__ == "__main__":
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--quick", action="store_true", help="topics and proposals on 3 topics; writes nothing")
    a.add_argument("--spec", default="openai:gpt-5", help="the priced provider model the teacher is named as (openai:... or anthropic:...)")
    args = a.parse_args()
    main(args.quick, args.spec)
