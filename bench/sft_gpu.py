"""GPU benchmark of the training path a run takes: tokens per second and MFU of a Qwen3-4B-shaped model (random weights,
built from a transformers config: nothing is downloaded) at 8K and 32K sequence length, packed versus padded batches.

    python bench/sft_gpu.py            # needs a CUDA GPU (one H100 or H200: under 8 minutes); writes bench/results/sft_gpu.json
    python bench/sft_gpu.py --quick    # under a minute on a CPU: a tiny Qwen3-shaped model at 256 tokens, the same code path;
                                       # prints tokens/s last and writes nothing

What is timed is `synthsci.train.build_trainer`'s trainer, as the train stage builds it (TRL's SFTTrainer with the
project's training chat template, assistant-only loss and TRL's collator), given the model object instead of loading
`base_model` (`build_trainer(..., model=...)`). Its options are configs/paper.yaml's: bf16, gradient checkpointing,
flash attention when installed (else sdpa), AdamW; one sequence (packed) or `--padded-rows` conversations (padded) a
step, no gradient accumulation, no checkpoint saved. The tokenizer (and so the chat template) is SmolLM2's, the one
cached here; its ids all lie in Qwen3's vocabulary, and the FLOPs do not depend on which ids they are.
  packed: `batching: packed`, TRL's best-fit-decreasing packing into rows of at most the sequence length, padding-free
          (position ids restart per conversation, no attention mask);
  padded: `batching: padded`, each conversation padded to the longest of its batch, with an attention mask.
The data are synthetic agent trajectories in the project's format (a system prompt, the task, then DISCUSSION +
command turns and their observations), cut at a turn boundary by `synthsci.sftdata.to_sft_example` to log-uniform
lengths between 1K tokens and the sequence length, as real trajectories cut to the context are.

MFU = model FLOPs of the real tokens / time / peak, with model FLOPs = 6 x (matmul parameters, the LM head included) x
tokens + 6 x layers x (heads x head_dim) x the sum over conversations of length^2 (causal attention, forward and
backward); recomputation is not counted. The real tokens and conversation lengths are read from the batches the
trainer's collator made (a hook on the model's forward). Peak: dense bf16 of the GPU from the table below, or --peak-tflops.
"""
import argparse, gc, json, math, random, sys, time
from pathlib import Path
from _common import Bench

ROOT = Path(__file__).resolve().parents[1]
PEAK_BF16_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("A100", 312.0))   # dense; the first part of the GPU's name that matches (H100: SXM)


def qwen3_config(quick: bool = False):
    "Qwen3-4B's shape (its config.json), or a tiny model of the same family for --quick."
    from transformers import Qwen3Config
    if quick:
        return Qwen3Config(vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=16, max_position_embeddings=4096, tie_word_embeddings=True, use_cache=False)
    return Qwen3Config(vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                       num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, rms_norm_eps=1e-6, tie_word_embeddings=True,
                       rope_parameters=dict(rope_type="default", rope_theta=1_000_000.0), use_cache=False)


def matmul_params(c) -> int:
    "Parameters that take part in matrix multiplies per token (attention and MLP projections, and the LM head)."
    d, h, kv, hd, i = c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.intermediate_size
    per_layer = d * h * hd + 2 * d * kv * hd + h * hd * d + 3 * d * i
    return c.num_hidden_layers * per_layer + d * c.vocab_size


def model_flops(c, doc_lengths) -> float:
    "Training FLOPs (forward + backward) of the real tokens of a batch of conversations."
    return 6 * matmul_params(c) * sum(doc_lengths) + 6 * c.num_hidden_layers * c.num_attention_heads * c.head_dim * sum(l * l for l in doc_lengths)


def peak_tflops(gpu: str):
    return next((v for k, v in PEAK_BF16_TFLOPS if k in gpu), None)


# --- synthetic trajectories in the project's format --------------------------------------------------------------

WORDS = ("the baseline model features split validation score training data column target mean rate learning "
         "tree forest boost gradient depth estimators regularisation error improve submission accuracy rmse fold").split()


def synthetic_trajectory(rng: random.Random, i: int, tokens: int):
    "An agent trajectory of at least about `tokens` tokens (about 3 characters a token): turns of DISCUSSION + command and their observations."
    from synthsci.core import Trajectory
    msgs = [{"role": "system", "content": "SETTING: You are an autonomous machine learning researcher working in a command line."},
            {"role": "user", "content": f"TASK {i}: improve the baseline's score on the dataset in data/. Submit submission.csv."}]
    chars = 0
    while chars < 3.3 * tokens:
        thought = " ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 40))).capitalize() + "."
        cmd = rng.choice(["python train.py --depth {}", "cat results_{}.txt", "edit 12:14", "validate", "ls data/ # {}"]).format(rng.randint(1, 99))
        obs = "\n".join(f"epoch {e} loss {rng.random():.4f} val_score {rng.random():.4f} lr {rng.choice([1e-3, 3e-4, 1e-4])}"
                        for e in range(rng.randint(3, 12))) + "\n(Current Step: 3, Remaining Steps: 47)\nbash-$"
        msgs += [{"role": "assistant", "content": f"DISCUSSION\n{thought}\n\n```\n{cmd}\n```"}, {"role": "user", "content": obs}]
        chars += len(thought) + len(cmd) + len(obs) + 40
    return Trajectory(id=f"synthetic-{i}", parent_id=f"task-{i % 7}", task_id=f"task-{i % 7}", messages=msgs, exit_status="submitted")


def sft_dataset(tok, seq_len: int, total_tokens: int, n_docs: int, seed: int):
    "SFT rows (synthsci.sftdata's format) of log-uniform lengths in [min(1024, seq_len / 4), seq_len], until both targets are met."
    import datasets
    from synthsci.sftdata import to_hf_dataset, to_sft_example
    rng, exs, lo = random.Random(seed), [], min(1024, seq_len // 4)
    while sum(e.n_tokens for e in exs) < total_tokens or len(exs) < n_docs:
        target = int(math.exp(rng.uniform(math.log(lo), math.log(seq_len))))
        e = to_sft_example(synthetic_trajectory(rng, len(exs), int(target * 1.1)), tok, target)
        if e: exs.append(e)
    return datasets.DatasetDict({"train": to_hf_dataset(exs)}), [e.n_tokens for e in exs]


# --- timing the trainer's steps -----------------------------------------------------------------------------------

class StepMeter:
    "The wall time of every optimizer step (synchronised), and the conversations in the batch its forward saw."
    def __init__(self, sync): self.sync, self.ends, self.docs, self.slots = sync, {}, {}, {}; self.step = 0

    def forward_hook(self, module, args, kw):
        ids, pos, mask = kw.get("input_ids"), kw.get("position_ids"), kw.get("attention_mask")
        if ids is None: ids = args[0]
        if mask is not None: lens = [int(x) for x in mask.sum(dim=1).tolist()]          # padded rows: one conversation each
        elif pos is not None:                                                          # padding-free: positions restart at 0
            starts = (pos[0] == 0).nonzero().flatten().tolist() + [pos.shape[1]]
            lens = [b - a for a, b in zip(starts, starts[1:])]
        else: lens = [ids.shape[1]] * ids.shape[0]
        self.docs.setdefault(self.step, []).extend(lens); self.slots[self.step] = self.slots.get(self.step, 0) + ids.numel()

    def callback(self):
        from transformers import TrainerCallback
        meter = self
        class Cb(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw): meter.step = state.global_step + 1
            def on_step_end(self, args, state, control, **kw): meter.sync(); meter.ends[state.global_step] = time.perf_counter()
        return Cb()


def run_case(model, cfg, dd, mode, seq_len, steps, warmup, rows, device, liger, out_dir) -> dict:
    "Train `steps` + `warmup` steps through build_trainer; the figures of the last `steps`."
    import torch
    from synthsci.train import TrainOptions, build_trainer
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    opts = TrainOptions(base_model="local", max_length=seq_len, batching=mode, max_steps=warmup + steps, learning_rate=1e-5, warmup=0,
                        batch_size=1 if mode == "packed" else rows, grad_accum=1, bf16=device == "cuda", gradient_checkpointing=True,
                        logging_steps=1, eval=False,
                        sft_config=dict(save_strategy="no", use_liger_kernel=liger, dataloader_num_workers=0))
    meter = StepMeter(sync)
    trainer = build_trainer(dd, out_dir, opts, model=model)
    trainer.add_callback(meter.callback())
    hook = model.register_forward_pre_hook(meter.forward_hook, with_kwargs=True)
    try:
        t0 = time.perf_counter()
        trainer.train()
    finally:
        hook.remove()
    timed = range(warmup + 1, warmup + steps + 1)
    wall = meter.ends[warmup + steps] - meter.ends[warmup]
    lens = [l for s in timed for l in meter.docs[s]]
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    del trainer; gc.collect()
    if device == "cuda": torch.cuda.empty_cache()
    return dict(mode=mode, seq_len=seq_len, steps_timed=steps, warmup_steps=warmup, conversations=len(lens), real_tokens=sum(lens),
                token_slots=sum(meter.slots[s] for s in timed), seconds=round(wall, 3), tokens_per_s=round(sum(lens) / wall, 1),
                model_tflops_per_s=round(model_flops(cfg, lens) / wall / 1e12, 4), first_step_s=round(meter.ends[1] - t0, 2),
                loss_last=round(losses[-1], 3) if losses else None)


def attention_backend(requested, device):
    if requested != "auto": return requested
    if device != "cuda": return None                      # transformers' default (sdpa)
    import importlib.util
    if importlib.util.find_spec("flash_attn_interface"): return "flash_attention_3"
    if importlib.util.find_spec("flash_attn"): return "flash_attention_2"
    return "sdpa"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a tiny Qwen3-shaped model at 256 tokens on the CPU; writes nothing")
    ap.add_argument("--seq-lens", default=None, help="comma-separated; default 8192,32768 (quick: 256)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per case (default 4; quick: 1)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2; quick: 1)")
    ap.add_argument("--padded-rows", type=int, default=2, help="conversations per padded batch")
    ap.add_argument("--attn", default="auto", help="auto: flash_attention_3, else flash_attention_2, else sdpa")
    ap.add_argument("--liger", choices=("auto", "on", "off"), default="auto", help="TRL's use_liger_kernel; auto: on when liger-kernel is installed")
    ap.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the GPU (default: from its name)")
    ap.add_argument("--budget-s", type=float, default=420, help="start no new case after this many seconds")
    a = ap.parse_args(argv)
    bench = Bench("sft_gpu", a.quick)
    import importlib.util
    import torch, transformers, trl
    from transformers import AutoModelForCausalLM
    from synthsci.student import student_tokenizer
    device = "cpu" if a.quick else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("sft_gpu: the full run needs a CUDA GPU and none is visible here; nothing was measured or written "
              "(python bench/sft_gpu.py --quick runs the same code path on a CPU)")
        return 1
    seq_lens = [int(s) for s in (a.seq_lens or ("256" if a.quick else "8192,32768")).split(",")]
    steps, warmup = a.steps or (1 if a.quick else 4), a.warmup if a.warmup is not None else (1 if a.quick else 2)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else None
    peak = a.peak_tflops or (peak_tflops(gpu) if gpu else None)
    liger = a.liger == "on" or (a.liger == "auto" and device == "cuda" and importlib.util.find_spec("liger_kernel") is not None)
    attn = attention_backend(a.attn, device)
    cfg = qwen3_config(a.quick)
    t_setup = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):    # the weights are made on the GPU, in bf16 there, with the attention the run would use
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16 if device == "cuda" else torch.float32,
                                                 **({"attn_implementation": attn} if attn else {}))
    tok = student_tokenizer("local")
    setup_s = round(time.perf_counter() - t_setup, 1)
    info = dict(model="Qwen3-4B-shaped (random weights)" if not a.quick else "tiny Qwen3-shaped (2 layers, hidden 64)",
                parameters=sum(p.numel() for p in model.parameters()), matmul_parameters=matmul_params(cfg), device=device, gpu=gpu,
                peak_bf16_tflops=peak, dtype=str(next(model.parameters()).dtype), attention=model.config._attn_implementation, liger_kernel=liger,
                gradient_checkpointing=True, setup_s=setup_s, trainer="synthsci.train.build_trainer (TRL SFTTrainer, assistant-only loss)", padded_rows=a.padded_rows,
                versions=dict(torch=torch.__version__, transformers=transformers.__version__, trl=trl.__version__), cases=[])
    print(json.dumps({k: v for k, v in info.items() if k != "cases"}), flush=True)
    import tempfile
    for seq_len in seq_lens:
        t = time.perf_counter()
        dd, lens = sft_dataset(tok, seq_len, total_tokens=(warmup + steps + 1) * seq_len, n_docs=(warmup + steps) * a.padded_rows, seed=seq_len)
        info.setdefault("data", {})[str(seq_len)] = dict(conversations=len(lens), tokens=sum(lens), shortest=min(lens), longest=max(lens),
                                                         made_in_s=round(time.perf_counter() - t, 1))
        for mode in ("packed", "padded"):
            if bench.wall_s() > a.budget_s:
                info["cases"].append(dict(mode=mode, seq_len=seq_len, status=f"skipped: past the {a.budget_s:.0f} s budget")); continue
            oom = None
            try:
                with tempfile.TemporaryDirectory() as d:
                    r = run_case(model, cfg, dd, mode, seq_len, steps, warmup, a.padded_rows, device, liger, d)
                r["mfu"] = round(r["model_tflops_per_s"] / peak, 4) if peak else None
                if device == "cuda": r["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
            except torch.cuda.OutOfMemoryError as e:
                oom = str(e).splitlines()[0][:160]
            if oom is not None:       # out of the except clause: its traceback no longer holds the trainer's memory
                for p in model.parameters(): p.grad = None
                gc.collect(); torch.cuda.empty_cache()
                r = dict(mode=mode, seq_len=seq_len, status=f"out of memory: {oom}")
            if device == "cuda": torch.cuda.reset_peak_memory_stats()
            info["cases"].append(r); print(json.dumps(r), flush=True)
    done = {(c["mode"], c["seq_len"]): c for c in info["cases"] if "tokens_per_s" in c}
    for s in seq_lens:
        if ("packed", s) in done and ("padded", s) in done:
            info.setdefault("packed_over_padded_tokens_per_s", {})[str(s)] = round(done["packed", s]["tokens_per_s"] / done["padded", s]["tokens_per_s"], 2)
    bench.write(info)
    mfu = lambda c: f", MFU {100 * c['mfu']:.1f}%" if c.get("mfu") is not None else ""
    size = lambda s: f"{s // 1024}K" if s >= 1024 else str(s)
    print("sft_gpu: " + "; ".join(f"{size(c['seq_len'])} {c['mode']} {c['tokens_per_s']:.0f} tok/s{mfu(c)}" for c in done.values())
          + "".join(f"; {size(c['seq_len'])} {c['mode']} {c['status']}" for c in info["cases"] if "status" in c)
          + f" ({info['model']}, {gpu or device}, {info['attention']}, {bench.load()}, {bench.wall_s():.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
