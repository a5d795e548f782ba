"""Training throughput of the quickstart student (SmolLM2-135M-Instruct) on the CPU, through the real training path
(synthsci.train.build_trainer -> TRL SFTTrainer, assistant-only loss), packed versus padded batches, measured side by
side in one run (--quick: a tiny two-layer model of SmolLM2's family through the same path, to check it in under a minute). Tokens are the real (non-padding) tokens TRL counts. A GPU figure is bench/sft_gpu.py's.

    python bench/sft.py --quick     # < 1 minute; prints the headline last, writes nothing
    python bench/sft.py             # writes bench/results/sft.json
"""
import argparse, json, sys, tempfile, time
from pathlib import Path
from _common import Bench

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


def tiny_student(folder) -> str:
    "A two-layer model of SmolLM2's family with random weights and SmolLM2's tokenizer, saved as a base model folder (--quick)."
    from transformers import AutoConfig, AutoModelForCausalLM
    from synthsci.student import resolve_student, student_tokenizer
    c = AutoConfig.from_pretrained(resolve_student("local"))
    c.num_hidden_layers, c.hidden_size, c.intermediate_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim = 2, 64, 128, 4, 2, 16
    AutoModelForCausalLM.from_config(c).save_pretrained(folder)
    student_tokenizer("local").save_pretrained(folder)
    return str(folder)


def measure(dd, base_model, batching, max_length, steps, batch_size):
    "Tokens per second of the training step, skipping the first step (warm-up)."
    from synthsci.train import TrainOptions, build_trainer
    opts = TrainOptions(base_model=base_model, max_length=max_length, batching=batching, max_steps=steps + 1, learning_rate=1e-5,
                        grad_accum=1, batch_size=batch_size, eval=False, logging_steps=1, sft_config=dict(save_strategy="no"))
    with tempfile.TemporaryDirectory() as d:
        trainer = build_trainer(dd, d, opts)
        times = StepTimes()
        trainer.add_callback(times)
        trainer.train()
    seen = {h["step"]: h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h}
    tokens = seen[steps + 1] - seen[1]
    wall = times.t[steps + 1] - times.t[1]
    return dict(batching=batching, device=trainer.args.device.type, max_length=max_length, batch_size=batch_size, steps_timed=steps, tokens=int(tokens),
                seconds=round(wall, 2), tokens_per_s=round(tokens / wall, 1), seconds_per_step=round(wall / steps, 2))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a tiny two-layer stand-in, short sequences, 1 timed step each, no results file")
    a = ap.parse_args(argv)
    bench = Bench("sft", a.quick)
    import datasets, torch
    from synthsci.student import student_tokenizer
    from synthsci.sftdata import to_hf_dataset
    max_length, steps, bs = (768, 1, 1) if a.quick else (1536, 3, 2)
    tok = student_tokenizer("local")
    exs = examples(tok, max_length)
    dd = datasets.DatasetDict({"train": to_hf_dataset(exs * 4)})
    with tempfile.TemporaryDirectory() as d:
        base = tiny_student(Path(d) / "tiny") if a.quick else "local"
        runs = [measure(dd, base, b, max_length, steps, bs) for b in ("packed", "padded")]
    packed, padded = runs
    ratio = packed["tokens_per_s"] / padded["tokens_per_s"]
    for r in runs: print(json.dumps(r))
    bench.write(dict(model="SmolLM2-135M-Instruct (full fine-tuning, fp32, assistant-only loss, TRL SFTTrainer)", device=packed["device"],
                     threads=torch.get_num_threads(), torch=torch.__version__, examples=len(exs),
                     example_tokens=dict(min=min(e.n_tokens for e in exs), max=max(e.n_tokens for e in exs)),
                     runs=runs, packed_over_padded=round(ratio, 2)))
    model = "a tiny 2-layer SmolLM2-shaped stand-in (--quick)" if a.quick else "SmolLM2-135M"
    print(f"{model} training on {packed['device']}: packed {packed['tokens_per_s']:.0f} tok/s, padded {padded['tokens_per_s']:.0f} tok/s, packed/padded {ratio:.2f}x ({bench.load()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
