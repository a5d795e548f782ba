"""Training throughput of the quickstart student (SmolLM2-135M-Instruct) on the CPU, through the real training path
(synthsci.train.build_trainer -> TRL SFTTrainer, assistant-only loss), packed versus padded batches, measured side by
side in one run. Tokens are the real (non-padding) tokens TRL counts. The GPU part is bench/sft_gpu.py.

    python bench/sft.py --quick     # < 1 minute; prints the headline last
    python bench/sft.py             # writes bench/results/sft.json
"""
import argparse, json, os, platform, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "trajectories"


def examples(tok, max_tokens):
    "SFT examples from the recorded trajectories, cut at several turn boundaries to get a spread of lengths."
    from synthsci.core import read_jsonl, Trajectory
    from synthsci.sftdata import to_sft_example
    trajs = [t for p in sorted(FIXTURES.glob("traj-*.jsonl")) for t in read_jsonl(Trajectory, p)]
    out = []
    for frac in (1.0, 0.75, 0.55):
        for t in trajs:
            e = to_sft_example(t, tok, int(max_tokens * frac))
            if e: out.append(e)
    return out


class StepTimes:
    "A TrainerCallback that records the wall time at the end of every optimizer step."
    def __init__(self): self.t = {}
    def __getattr__(self, name): return lambda *a, **k: None
    def on_step_end(self, args, state, control, **kw): self.t[state.global_step] = time.perf_counter()


def measure(dd, batching, max_length, steps, batch_size):
    "Tokens per second of the training step, skipping the first step (warm-up)."
    from synthsci.train import TrainOptions, build_trainer
    opts = TrainOptions(base_model="local", max_length=max_length, batching=batching, max_steps=steps + 1, learning_rate=1e-5,
                        grad_accum=1, batch_size=batch_size, eval=False, save_steps=10_000, logging_steps=1)
    with tempfile.TemporaryDirectory() as d:
        trainer = build_trainer(dd, d, opts)
        times = StepTimes()
        trainer.add_callback(times)
        trainer.train()
    seen = {h["step"]: h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h}
    tokens = seen[steps + 1] - seen[1]
    wall = times.t[steps + 1] - times.t[1]
    return dict(batching=batching, max_length=max_length, batch_size=batch_size, steps_timed=steps, tokens=int(tokens),
                seconds=round(wall, 2), tokens_per_s=round(tokens / wall, 1), seconds_per_step=round(wall / steps, 2))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short sequences, 2 timed steps each, no results file")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sft.json"))
    a = ap.parse_args(argv)
    import datasets, torch
    from synthsci.filter import student_tokenizer
    from synthsci.sftdata import to_hf_dataset
    max_length, steps, bs = (768, 1, 1) if a.quick else (1536, 3, 2)
    tok = student_tokenizer("local")
    exs = examples(tok, max_length)
    dd = datasets.DatasetDict({"train": to_hf_dataset(exs * 4)})
    load0 = round(os.getloadavg()[0], 2)  # other jobs on the machine slow every figure down alike
    runs = [measure(dd, b, max_length, steps, bs) for b in ("packed", "padded")]
    packed, padded = runs
    ratio = packed["tokens_per_s"] / padded["tokens_per_s"]
    for r in runs: print(json.dumps(r))
    if not a.quick:
        result = dict(
            benchmark="sft", model="SmolLM2-135M-Instruct (full fine-tuning, fp32, assistant-only loss, TRL SFTTrainer)",
            cpu=dict(machine=platform.processor() or platform.machine(), threads=torch.get_num_threads(), torch=torch.__version__,
                     load_average_1min=dict(before=load0, after=round(os.getloadavg()[0], 2)),
                     examples=len(exs), example_tokens=dict(min=min(e.n_tokens for e in exs), max=max(e.n_tokens for e in exs)),
                     runs=runs, packed_over_padded=round(ratio, 2)),
            gpu=dict(status="not run: no GPU was available in this session (the task was not lent a device machine)",
                     script="bench/sft_gpu.py", how="python bench/sft_gpu.py  # one H100, under 8 minutes; writes bench/results/sft_gpu.json",
                     target="MFU >= 35% packed, Qwen3-4B-shaped model, 8K and 32K sequence length, vs 989 TFLOP/s dense bf16"))
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {a.out}")
    print(f"SmolLM2-135M CPU training: packed {packed['tokens_per_s']:.0f} tok/s, padded {padded['tokens_per_s']:.0f} tok/s, packed/padded {ratio:.2f}x (load {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
