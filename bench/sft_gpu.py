"""GPU benchmark of the SFT training step: tokens per second and MFU of a Qwen3-4B-shaped model (random weights: no
weights can be downloaded on the device machine) at 8K and 32K sequence length, packed versus padded batches.

One prepared script for one H100 that finishes in under 8 minutes (it stops starting new cases after --budget-s):

    python bench/sft_gpu.py                  # writes bench/results/sft_gpu.json; headline on the last line
    python bench/sft_gpu.py --smoke          # a tiny model on the CPU, to check the script itself

The step is what SFTTrainer runs for the paper recipe: bf16 weights, activation (gradient) checkpointing, causal LM
loss on every real token, AdamW (fused, bf16 states). The LM head's loss is computed in chunks with recomputation, so
the 32K x 152K logits never exist at once (what liger-kernel's fused cross-entropy does in a real run).
Packed: documents concatenated into one row of exactly seq_len tokens, position ids restarting per document, no mask
(flash-attention's varlen path when flash-attn is installed; otherwise transformers builds a block-causal mask).
Padded: rows of one document each, padded to the longest in the batch, with an attention mask.
Documents have log-uniform lengths between 1K and seq_len tokens (agent trajectories cut to the context).

MFU = model FLOPs of the real tokens / time / peak, with model FLOPs = 6 * (matmul parameters incl. the LM head) *
tokens + 6 * layers * (heads * head_dim) * sum over documents of length^2 (causal attention, forward + backward);
recomputation is not counted. Peak: the H100 SXM's dense bf16 989 TFLOP/s (--peak-tflops to change).
"""
import argparse, json, math, os, platform, random, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def qwen3_4b(smoke=False):
    from transformers import Qwen3Config
    if smoke:
        return Qwen3Config(vocab_size=1024, hidden_size=128, intermediate_size=384, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=32, max_position_embeddings=4096, tie_word_embeddings=True)
    return Qwen3Config(vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                       num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, rope_theta=1_000_000.0,
                       rms_norm_eps=1e-6, tie_word_embeddings=True, use_cache=False)


def matmul_params(c) -> int:
    "Parameters that take part in matrix multiplies per token (attention and MLP projections, and the LM head)."
    d, h, kv, hd, i = c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.intermediate_size
    per_layer = d * h * hd + 2 * d * kv * hd + h * hd * d + 3 * d * i
    return c.num_hidden_layers * per_layer + d * c.vocab_size


def model_flops(c, doc_lengths) -> float:
    "Training FLOPs (forward + backward) of the real tokens of a batch of documents."
    n = sum(doc_lengths)
    return 6 * matmul_params(c) * n + 6 * c.num_hidden_layers * c.num_attention_heads * c.head_dim * sum(l * l for l in doc_lengths)


def documents(rng, seq_len, n_tokens, lo=1024):
    "Log-uniform document lengths in [lo, seq_len] adding up to at least n_tokens."
    out = []
    while sum(out) < n_tokens: out.append(int(math.exp(rng.uniform(math.log(min(lo, seq_len)), math.log(seq_len)))))
    return out


def packed_batch(rng, seq_len, vocab, device):
    "One row of exactly seq_len tokens: whole documents, the last one cut to fit."
    lens, total = [], 0
    for l in documents(rng, seq_len, seq_len):
        l = min(l, seq_len - total)
        if l > 0: lens.append(l); total += l
    import torch
    ids = torch.randint(0, vocab, (1, seq_len), device=device)
    pos = torch.cat([torch.arange(l, device=device) for l in lens])[None]
    return dict(input_ids=ids, position_ids=pos), lens


def padded_batch(rng, seq_len, vocab, device, rows):
    "`rows` documents, each padded to the longest of them."
    import torch
    lens = [documents(rng, seq_len, 1)[0] for _ in range(rows)]
    width = max(lens)
    ids = torch.randint(0, vocab, (rows, width), device=device)
    mask = torch.zeros(rows, width, dtype=torch.long, device=device)
    for r, l in enumerate(lens): mask[r, :l] = 1
    return dict(input_ids=ids, attention_mask=mask), lens


def chunked_lm_loss(model, hidden, labels, chunk=4096):
    "Mean cross-entropy of the LM head over `hidden`, computed chunk by chunk and recomputed in backward."
    import torch, torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint
    h, y = hidden.reshape(-1, hidden.shape[-1]), labels.reshape(-1)
    n = (y != -100).sum().clamp(min=1)
    f = lambda hh, yy: F.cross_entropy(model.lm_head(hh).float(), yy, ignore_index=-100, reduction="sum")
    return sum(checkpoint(f, h[i:i + chunk], y[i:i + chunk], use_reentrant=False) for i in range(0, h.shape[0], chunk)) / n


def step(model, opt, batch):
    import torch
    ids = batch["input_ids"]
    labels = ids.clone()
    if "attention_mask" in batch: labels[batch["attention_mask"] == 0] = -100
    labels = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], -100)], dim=1)  # position t predicts token t+1
    if "position_ids" in batch:  # a document's last token does not predict the next document's first
        starts = (batch["position_ids"][0] == 0).nonzero().flatten()
        labels[0, starts[1:] - 1] = -100
    hidden = model.model(**batch).last_hidden_state
    loss = chunked_lm_loss(model, hidden, labels)
    loss.backward()
    opt.step(); opt.zero_grad(set_to_none=True)
    return loss.detach()


def attention_backend(requested, device):
    if requested != "auto": return requested
    if device != "cuda": return "sdpa"
    import importlib.util
    if importlib.util.find_spec("flash_attn_interface"): return "flash_attention_3"
    if importlib.util.find_spec("flash_attn"): return "flash_attention_2"
    return "sdpa"


def run_case(model, opt, cfg, mode, seq_len, steps, warmup, device, sync, rows):
    rng = random.Random(seq_len * 7 + (mode == "packed"))
    make = (lambda: packed_batch(rng, seq_len, cfg.vocab_size, device)) if mode == "packed" else \
           (lambda: padded_batch(rng, seq_len, cfg.vocab_size, device, rows))
    batches = [make() for _ in range(warmup + steps)]
    for b, _ in batches[:warmup]: step(model, opt, b)
    sync()
    t0 = time.perf_counter()
    for b, _ in batches[warmup:]: loss = step(model, opt, b)
    sync()
    wall = time.perf_counter() - t0
    lens = [l for _, ls in batches[warmup:] for l in ls]
    slots = sum(b["input_ids"].numel() for b, _ in batches[warmup:])
    return dict(mode=mode, seq_len=seq_len, steps=steps, real_tokens=sum(lens), token_slots=slots, documents=len(lens),
                seconds=round(wall, 3), tokens_per_s=round(sum(lens) / wall, 1), model_tflops_per_s=round(model_flops(cfg, lens) / wall / 1e12, 2),
                loss=round(float(loss), 3))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="a tiny model on the CPU with short sequences")
    ap.add_argument("--seq-lens", default=None, help="comma-separated, default 8192,32768 (smoke: 256,1024)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--padded-rows", type=int, default=2, help="documents per padded batch")
    ap.add_argument("--attn", default="auto", help="auto: flash_attention_3, else flash_attention_2, else sdpa")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100 SXM: 989)")
    ap.add_argument("--budget-s", type=float, default=420, help="start no new case after this many seconds")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sft_gpu.json"))
    a = ap.parse_args(argv)
    t_start = time.time()
    try:
        import torch, transformers
        from transformers import Qwen3ForCausalLM
    except ImportError as e:
        print(f"needs torch and transformers: {e}"); return 1
    device = "cpu" if a.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        result = dict(benchmark="sft_gpu", status="not run: no CUDA GPU visible")
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n"); print(result["status"]); return 1
    seq_lens = [int(s) for s in (a.seq_lens or ("256,1024" if a.smoke else "8192,32768")).split(",")]
    dtype = torch.float32 if a.smoke else torch.bfloat16
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    cfg = qwen3_4b(a.smoke)
    attn = attention_backend(a.attn, device)
    cfg._attn_implementation = attn
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3ForCausalLM(cfg).to(dtype)
    model.config.use_cache = False
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=dict(use_reentrant=False))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device == "cuda")
    params = sum(p.numel() for p in model.parameters())
    info = dict(benchmark="sft_gpu", model="Qwen3-4B-shaped (random weights)", parameters=params, matmul_parameters=matmul_params(cfg),
                dtype=str(dtype), attention=attn, gradient_checkpointing=True, optimizer="AdamW (fused, bf16 states)" if device == "cuda" else "AdamW",
                device=torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
                peak_tflops=a.peak_tflops, versions=dict(torch=torch.__version__, transformers=transformers.__version__),
                setup_s=round(time.time() - t_start, 1), cases=[])
    print(json.dumps({k: v for k, v in info.items() if k != "cases"}))
    for seq_len in seq_lens:
        for mode in ("packed", "padded"):
            if time.time() - t_start > a.budget_s:
                info["cases"].append(dict(mode=mode, seq_len=seq_len, status=f"skipped: past the {a.budget_s:.0f} s budget")); continue
            try:
                r = run_case(model, opt, cfg, mode, seq_len, a.steps, a.warmup, device, sync, a.padded_rows)
                r["mfu"] = round(r["model_tflops_per_s"] / a.peak_tflops, 4)
                if device == "cuda": r["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1); torch.cuda.reset_peak_memory_stats()
            except torch.cuda.OutOfMemoryError as e:
                opt.zero_grad(set_to_none=True); torch.cuda.empty_cache()
                r = dict(mode=mode, seq_len=seq_len, status=f"out of memory: {str(e).splitlines()[0][:120]}")
            info["cases"].append(r); print(json.dumps(r))
    info["wall_s"] = round(time.time() - t_start, 1)
    done = {(c["mode"], c["seq_len"]): c for c in info["cases"] if "mfu" in c}
    for s in seq_lens:
        if ("packed", s) in done and ("padded", s) in done:
            info.setdefault("packed_over_padded_tokens_per_s", {})[str(s)] = round(done["packed", s]["tokens_per_s"] / done["padded", s]["tokens_per_s"], 2)
    packed = [c for c in done.values() if c["mode"] == "packed"]
    info["target"] = "MFU >= 0.35 packed"
    info["target_met"] = bool(packed) and all(c["mfu"] >= 0.35 for c in packed)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    if not a.smoke: Path(a.out).write_text(json.dumps(info, indent=2) + "\n")
    print("; ".join(f"{c['seq_len'] // 1024}K {c['mode']}: {c['tokens_per_s']:.0f} tok/s, MFU {100 * c['mfu']:.1f}%" for c in done.values())
          + f" ({attn}, {info['device']}, {info['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
