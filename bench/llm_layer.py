"""What the guards around a backend cost, and what the cache saves, measured side by side in one run.

- guard overhead: a call through get_llm's stack (limit + cache off + ledger) vs the bare scripted backend;
- cache: a cache hit vs a real generation by the local SmolLM2 model (the offline student).
Last line: the headline figure."""
import argparse, json, statistics, sys, tempfile, time
from pathlib import Path
from synthsci.core import Ledger
from synthsci.llm import ScriptedLLM, get_llm

MSGS = [{"role": "user", "content": "Name one tabular dataset for regression."}]

def per_call(fn, n):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)

def main(quick: bool):
    n = 200 if quick else 2000
    bare = ScriptedLLM(lambda m, **p: "the diabetes dataset")
    guarded = get_llm("scripted", scripted=lambda m, **p: "the diabetes dataset", ledger=Ledger())
    t_bare, t_guard = per_call(lambda: bare.complete(MSGS), n), per_call(lambda: guarded.complete(MSGS), n)
    with tempfile.TemporaryDirectory() as d:
        local = get_llm("local", role="student", cache="record", cache_dir=d)
        local.complete(MSGS, max_tokens=2)                      # load the model once
        gens = 2 if quick else 5
        t_gen = per_call(lambda: local.complete(MSGS + [{"role": "user", "content": str(time.perf_counter())}], max_tokens=32), gens)
        t_hit = per_call(lambda: local.complete(MSGS, max_tokens=2), n)
    res = dict(calls=n, bare_scripted_us=round(t_bare * 1e6, 1), guarded_scripted_us=round(t_guard * 1e6, 1),
               guard_overhead_us=round((t_guard - t_bare) * 1e6, 1), smollm2_generation_32_tokens_s=round(t_gen, 3),
               cache_hit_ms=round(t_hit * 1e3, 3), cache_speedup=round(t_gen / t_hit))
    print(json.dumps(res, indent=1))
    if not quick:
        out = Path(__file__).parent / "results" / "llm_layer.json"
        out.parent.mkdir(exist_ok=True); out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"guards add {res['guard_overhead_us']:.0f} us a call; a cache hit is {res['cache_speedup']}x faster than a 32-token SmolLM2 generation")

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("--quick", action="store_true")
    main(p.parse_args().quick)
