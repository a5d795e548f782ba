"""What the guards around a backend cost, what the cache saves, and what a live local server serves, measured side by side in one run.

- guard overhead: a call through get_llm's stack (limit + cache off + ledger) vs the bare scripted backend;
- cache: a cache hit vs a real generation by the local SmolLM2 model (the offline student);
- live server: `synthsci serve` (the real SmolLM2, in its own process) answering the teacher's stack (get_llm -> the openai
  SDK -> HTTP) at concurrency 1, 4 and 8: requests per minute, and the share of the teacher's wall time spent outside
  the server (the server reports its own time per request in `x-synthsci-server-s`; the rest is client + synthsci + HTTP).
--quick: 200 guarded calls, one 8-token generation, 1/4/8 requests to the server; writes nothing. The full run (2000
calls, five 32-token generations, 16/32/32 requests) writes bench/results/llm_layer.json.
Last line: the headline figures, with the machine's load (other work on it slows the model, not the overhead)."""
import argparse, json, socket, statistics, subprocess, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor
from _common import Bench
from synthsci.core import Ledger
from synthsci.llm import ScriptedLLM, get_llm

MSGS = [{"role": "user", "content": "Name one tabular dataset for regression."}]

def per_call(fn, n):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)

def start_server() -> tuple[subprocess.Popen, str]:
    "`synthsci serve` on a free port, in its own process, once it has loaded the model."
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    p = subprocess.Popen([sys.executable, "-m", "synthsci.cli", "serve", "--port", str(port), "--quiet"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if "serving" not in line: p.kill(); raise SystemExit(f"synthsci serve did not start: {line!r}")
    return p, f"http://127.0.0.1:{port}/v1"

def live_server(url: str, levels: dict, max_tokens: int) -> dict:
    "Per concurrency level: requests per minute, and the share of the client's wall time not spent in the server."
    import httpx
    mine = threading.local()
    def hook(r): mine.server_s = float(r.headers.get("x-synthsci-server-s", "nan"))
    llm = get_llm(f"openai:smollm2@{url}", ledger=Ledger(), max_concurrency=8, max_retries=0, timeout_s=600,
                  http_client=httpx.Client(event_hooks={"response": [hook]}, timeout=600))
    def one(i):
        t = time.perf_counter()
        c = llm.complete([{"role": "user", "content": f"Name one tabular dataset (request {i})."}], max_tokens=max_tokens, temperature=0)
        return time.perf_counter() - t, mine.server_s, c.usage.output_tokens
    one(-1)   # the first request warms the server's model and the client's connection
    out = {}
    for c, n in levels.items():
        with ThreadPoolExecutor(c) as pool:
            t0 = time.perf_counter()
            rs = list(pool.map(one, range(n)))
            wall = time.perf_counter() - t0
        client, server = sum(r[0] for r in rs), sum(r[1] for r in rs)
        out[f"concurrency_{c}"] = dict(requests=n, requests_per_min=round(60 * n / wall, 1), median_latency_s=round(statistics.median(r[0] for r in rs), 3),
                                       output_tokens=sum(r[2] for r in rs), outside_server_share_pct=round(100 * (client - server) / client, 3),
                                       outside_server_ms_per_request=round(1000 * (client - server) / n, 2))
    return out

def main(quick: bool):
    bench = Bench("llm_layer", quick)
    n = 200 if quick else 2000
    bare = ScriptedLLM(lambda m, **p: "the diabetes dataset")
    guarded = get_llm("scripted", scripted=lambda m, **p: "the diabetes dataset", ledger=Ledger())
    t_bare, t_guard = per_call(lambda: bare.complete(MSGS), n), per_call(lambda: guarded.complete(MSGS), n)
    with tempfile.TemporaryDirectory() as d:
        local = get_llm("local", role="student", cache="record", cache_dir=d)
        local.complete(MSGS, max_tokens=2)                      # load the model once
        gens, gen_tokens = (1, 8) if quick else (5, 32)
        t_gen = per_call(lambda: local.complete(MSGS + [{"role": "user", "content": str(time.perf_counter())}], max_tokens=gen_tokens), gens)
        t_hit = per_call(lambda: local.complete(MSGS, max_tokens=2), n)
    del local
    res = dict(calls=n, bare_scripted_us=round(t_bare * 1e6, 1), guarded_scripted_us=round(t_guard * 1e6, 1),
               guard_overhead_us=round((t_guard - t_bare) * 1e6, 1), generation_tokens=gen_tokens, smollm2_generation_s=round(t_gen, 3),
               cache_hit_ms=round(t_hit * 1e3, 3), cache_speedup=round(t_gen / t_hit))
    server, url = start_server()
    try:
        levels = {1: 1, 4: 4, 8: 8} if quick else {1: 16, 4: 32, 8: 32}
        res["live_server"] = dict(model="local:SmolLM2-135M-Instruct via synthsci serve", max_tokens=8, **live_server(url, levels, 8))
    finally:
        server.terminate(); server.wait(timeout=30)
    print(json.dumps(res, indent=1))
    bench.write(res)
    ls = res["live_server"]
    print(f"guards add {res['guard_overhead_us']:.0f} us a call; a cache hit is {res['cache_speedup']}x faster than a {gen_tokens}-token SmolLM2 generation; "
          f"the live server answers {ls['concurrency_1']['requests_per_min']:.0f}/{ls['concurrency_4']['requests_per_min']:.0f}/"
          f"{ls['concurrency_8']['requests_per_min']:.0f} requests/min at concurrency 1/4/8 (8 tokens each), "
          f"{max(v['outside_server_share_pct'] for k, v in ls.items() if k.startswith('concurrency')):.2f}% at most of the teacher's wall time outside the server "
          f"({bench.load()})")

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("--quick", action="store_true")
    main(p.parse_args().quick)
