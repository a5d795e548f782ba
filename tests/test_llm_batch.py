"""The providers' batch interfaces (Anthropic's Message Batches, OpenAI's Files + Batch API) through the real SDKs, against
`synthsci serve`, which speaks both: submit, poll, collect; one batch for many threads; a restart mid-poll that resumes
without sending again; an errored item that fails only its own unit; the batch discount in the ledger."""
import json, os, signal, subprocess, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
import pytest
from synthsci.core import Ledger, LLMConfig, SynthsciError
from synthsci.llm import (BATCH_DISCOUNT, BatchLLM, Completion, LLMError, OpenAIBatches, ScriptedLLM, Usage, cost_usd, get_llm,
                          layers, llm_from_config, stage_workers)
from synthsci.serve import ChatServer, Recordings

PROVIDERS = {"anthropic": "anthropic:claude-sonnet-4-6", "openai": "openai:gpt-4.1"}   # both priced, so that the discount shows


def answer(messages, **params):
    "The model behind the server: it echoes the question; one question it cannot answer (a server error for that item)."
    q = messages[-1]["content"]
    if q == "crash": raise RuntimeError("the model fell over")
    return Completion(text=f"answer to {q}", usage=Usage(1000, 200), finish_reason="stop")


@pytest.fixture
def server():
    srv = ChatServer(ScriptedLLM(answer), batch_delay_s=0.2, max_concurrency=4).start()
    yield srv
    srv.close()


def provider_env(monkeypatch, srv, provider):
    "Point the SDK at the local server the way a user would point it at a proxy: by its environment (the spec stays the provider's)."
    if provider == "anthropic": monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test"); monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
    else: monkeypatch.setenv("OPENAI_API_KEY", "sk-test"); monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)


def batch_llm(provider, cache_dir, ledger=None, **kw):
    "The stage's chain with batches on, its windows and polls shortened for a test."
    llm = get_llm(PROVIDERS[provider], cache="record", cache_dir=cache_dir, ledger=ledger, batch=True, batch_window_s=kw.pop("window_s", 0.3), max_retries=0)
    b = next(l for l in layers(llm) if isinstance(l, BatchLLM))
    b.poll_s, b.max_poll_s = 0.02, 0.1
    for k, v in kw.items(): setattr(b, k, v)
    return llm, b


def ask(llm, q, **params):
    return llm.complete([{"role": "system", "content": "Be brief."}, {"role": "user", "content": q}], max_tokens=params.pop("max_tokens", 64), **params)


def ask_all(llm, qs, **params):
    "Each question from its own thread, as a stage's workers ask: the answer's text, or the error."
    def one(q):
        try: return ask(llm, q, **params).text
        except LLMError as e: return e
    with ThreadPoolExecutor(len(qs)) as pool: return list(pool.map(one, qs))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_batch_for_many_threads_at_half_the_price(provider, server, monkeypatch, tmp_path):
    provider_env(monkeypatch, server, provider)
    ledger = Ledger()
    llm, b = batch_llm(provider, tmp_path, ledger)
    qs = [f"topic {i}" for i in range(6)]
    assert ask_all(llm, qs) == [f"answer to {q}" for q in qs]
    assert (server.queue.created, b.sent, server.requests) == (1, 1, 6)          # six calls, one batch on the provider
    calls = sum(s["calls"] for s in ledger.stages.values())
    full = 6 * cost_usd(PROVIDERS[provider], Usage(1000, 200))
    assert calls == 6 and ledger.cost_usd == pytest.approx(full * (1 - BATCH_DISCOUNT)) and BATCH_DISCOUNT == 0.5
    # asked again: the answer cache serves it at no cost, and no batch is sent
    assert ask(llm, "topic 0").cached and server.queue.created == 1 and ledger.cost_usd == pytest.approx(full / 2)
    journal = json.loads(next(tmp_path.glob("batches/*[!s].json")).read_text())
    assert (journal["state"], len(journal["custom_ids"])) == ("done", 6)        # all handed out


def test_the_batch_requests_on_the_wire(server, monkeypatch, tmp_path):
    "What each SDK sent: Anthropic's {custom_id, params} items, OpenAI's JSONL file of {custom_id, method, url, body} lines."
    for provider in PROVIDERS: provider_env(monkeypatch, server, provider)
    for provider in PROVIDERS:
        llm, b = batch_llm(provider, tmp_path / provider)
        assert ask(llm, "lines", temperature=0.5).text == "answer to lines"
    anth = next(x for x in server.queue.batches.values() if x["_kind"] == "anthropic")
    (item,) = anth["_requests"]
    assert len(item["custom_id"]) == 40 and item["params"] == {"model": "claude-sonnet-4-6", "max_tokens": 64, "temperature": 0.5,
                                                              "system": "Be brief.", "messages": [{"role": "user", "content": "lines"}]}
    oai = next(x for x in server.queue.batches.values() if x["_kind"] == "openai")
    (line,) = [json.loads(l) for l in server.queue.files[oai["input_file_id"]]["_data"].splitlines()]
    assert (line["method"], line["url"], oai["endpoint"], oai["completion_window"]) == ("POST", "/v1/chat/completions", "/v1/chat/completions", "24h")
    assert line["body"] == {"model": "gpt-4.1", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "lines"}],
                            "max_tokens": 64, "temperature": 0.5}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_errored_item_fails_only_its_own_unit(provider, server, monkeypatch, tmp_path):
    provider_env(monkeypatch, server, provider)
    ledger = Ledger()
    llm, b = batch_llm(provider, tmp_path, ledger)
    out = ask_all(llm, ["one", "crash", "two", "three"])
    assert [out[0], out[2], out[3]] == ["answer to one", "answer to two", "answer to three"] and b.sent == 1
    err = str(out[1])
    assert isinstance(out[1], LLMError) and "\n" not in err and "RuntimeError: the model fell over" in err and err.startswith(PROVIDERS[provider])
    assert sum(s["calls"] for s in ledger.stages.values()) == 3                 # the failed item is not charged
    with pytest.raises(LLMError, match="max_tokens must be an integer from 1 to 4096"):   # refused by the server: that item only
        ask(llm, "too long", max_tokens=10**6)
    assert ask(llm, "crash again?").text == "answer to crash again?"             # the failure is not cached; the next call goes on


RESTART = """
import sys, threading
from synthsci.llm import get_llm, layers, BatchLLM
llm = get_llm(sys.argv[1], cache="record", cache_dir=sys.argv[2], batch=True, batch_window_s=0.3, max_retries=0)
next(l for l in layers(llm) if isinstance(l, BatchLLM)).poll_s = 0.05
ts = [threading.Thread(target=llm.complete, args=([{"role": "user", "content": f"unit {i}"}],), kwargs=dict(max_tokens=64)) for i in range(3)]
for t in ts: t.start()
for t in ts: t.join()
print("the batch ended before the kill")
"""


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_run_killed_mid_poll_resumes_without_sending_again(provider, monkeypatch, tmp_path):
    srv = ChatServer(ScriptedLLM(answer), batch_delay_s=4.0).start()
    try:
        provider_env(monkeypatch, srv, provider)
        proc = subprocess.Popen([sys.executable, "-c", RESTART, PROVIDERS[provider], str(tmp_path)], env=dict(os.environ),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while not list(tmp_path.glob("batches/*.json")) and time.time() < deadline and proc.poll() is None: time.sleep(0.05)
        (bid,) = srv.queue.batches                                               # sent and journaled ...
        assert (srv.queue.batches[bid].get("status") or srv.queue.batches[bid]["processing_status"]) in ("validating", "in_progress")
        proc.send_signal(signal.SIGKILL); out, err = proc.communicate(timeout=30)   # ... and the run killed while it polls
        assert proc.returncode == -signal.SIGKILL and "ended before the kill" not in out, err[-2000:]
        ledger = Ledger()
        llm, b = batch_llm(provider, tmp_path, ledger)                           # the restarted run, over the same journal
        assert b.journal.find(b.key(b.llm.request([{"role": "user", "content": "unit 1"}], max_tokens=64))) == bid
        with ThreadPoolExecutor(3) as pool:
            texts = list(pool.map(lambda i: llm.complete([{"role": "user", "content": f"unit {i}"}], max_tokens=64).text, range(3)))
        assert texts == [f"answer to unit {i}" for i in range(3)]
        assert (srv.queue.created, b.sent, srv.requests) == (1, 0, 3)            # nothing sent (or paid) twice
        assert ledger.cost_usd == pytest.approx(3 * cost_usd(PROVIDERS[provider], Usage(1000, 200)) / 2)
    finally: srv.close()


def test_an_ended_batch_answers_a_later_run_at_once(server, monkeypatch, tmp_path):
    "A run stopped after its batch ended but before its units were written: the next run takes the journaled results."
    provider_env(monkeypatch, server, "openai")
    first, b1 = batch_llm("openai", tmp_path, max_wait_s=0)
    with pytest.raises(LLMError, match=r"still running after 0s: run again later to collect it \(it is journaled in"):
        first.complete([{"role": "user", "content": "late"}], max_tokens=64)
    deadline = time.time() + 10
    while next(iter(server.queue.batches.values()))["status"] != "completed" and time.time() < deadline: time.sleep(0.05)
    again, b2 = batch_llm("openai", tmp_path)
    assert again.complete([{"role": "user", "content": "late"}], max_tokens=64).text == "answer to late"
    assert (server.queue.created, b2.sent) == (1, 0)


def test_a_batch_the_provider_forgot_is_sent_again(monkeypatch, tmp_path):
    "A journaled batch the server no longer knows (a restarted server, a provider past its retention): one line, then a new batch."
    old = ChatServer(ScriptedLLM(answer), batch_delay_s=30).start()
    provider_env(monkeypatch, old, "anthropic")
    first, _ = batch_llm("anthropic", tmp_path, max_wait_s=0)
    with pytest.raises(LLMError, match="still running"): first.complete([{"role": "user", "content": "q"}], max_tokens=64)
    old.close()
    new = ChatServer(ScriptedLLM(answer)).start()
    try:
        provider_env(monkeypatch, new, "anthropic")
        llm, b = batch_llm("anthropic", tmp_path)
        with pytest.raises(LLMError, match="is unknown to the provider .*: its requests are sent again when asked again"):
            llm.complete([{"role": "user", "content": "q"}], max_tokens=64)
        assert llm.complete([{"role": "user", "content": "q"}], max_tokens=64).text == "answer to q" and new.queue.created == 1
    finally: new.close()


def test_a_failed_openai_batch_says_why_for_each_item(server, monkeypatch):
    "A batch that fails validation (a malformed line) ends as failed: every item gets the provider's reason."
    provider_env(monkeypatch, server, "openai")
    api = OpenAIBatches(get_llm("openai:gpt-4.1", max_retries=0).llm)
    f = api.client.files.create(file=("bad.jsonl", b'{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {}}\n'), purpose="batch")
    bid = api.client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h").id
    deadline = time.time() + 10
    while api.poll(bid) == "running" and time.time() < deadline: time.sleep(0.05)
    assert api.client.batches.retrieve(bid).status == "failed"
    assert api.results(bid, ["a"]) == {"a": "no answer: the batch failed (line 1: url must be /v1/chat/completions)"}


def test_a_server_without_batches_says_so(monkeypatch, tmp_path):
    "An OpenAI-compatible server without the Batch API: one line that says to turn batches off."
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    fixture = json.loads((Path(__file__).parent / "fixtures/llm/batch/no_batch_route.json").read_text())   # hand-written: a FastAPI server's 404
    class NoBatches(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            data = json.dumps(fixture["body"]).encode()
            self.send_response(fixture["status"]); self.send_header("content-length", str(len(data)))
            for k, v in fixture["headers"].items(): self.send_header(k, v)
            self.end_headers(); self.wfile.write(data)
        def log_message(self, *a): pass
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), NoBatches)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        llm = get_llm(f"openai:qwen3@http://127.0.0.1:{httpd.server_address[1]}/v1", cache_dir=tmp_path, batch=True, batch_window_s=0, max_retries=0)
        with pytest.raises(LLMError, match=r"has no batch interface \(HTTP 404 on POST /v1/files\): turn batch off") as e:
            llm.complete([{"role": "user", "content": "x"}])
        assert "\n" not in str(e.value)
    finally: httpd.shutdown()


def test_batch_items_record_and_replay(tmp_path, monkeypatch):
    "`synthsci serve --record` records each batch item as it would a single call, and `--replay` answers a batch from them."
    with ChatServer(ScriptedLLM(answer), recordings=Recordings(tmp_path / "rec", "record")) as srv:
        provider_env(monkeypatch, srv, "anthropic")
        assert ask_all(batch_llm("anthropic", tmp_path / "a")[0], ["r1", "r2"]) == ["answer to r1", "answer to r2"]
    with ChatServer(recordings=Recordings(tmp_path / "rec", "replay")) as srv:
        provider_env(monkeypatch, srv, "anthropic")
        out = ask_all(batch_llm("anthropic", tmp_path / "b")[0], ["r1", "r2", "never recorded"])
        assert out[:2] == ["answer to r1", "answer to r2"] and "was never recorded" in str(out[2])


@dataclass
class BatchedConfig(LLMConfig):
    batch: bool = True   # the field the run config's teacher section gets


def test_the_config_turns_batches_on(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    on = llm_from_config(BatchedConfig(spec="openai:gpt-5", max_concurrency=4), cache_dir=tmp_path)
    off = llm_from_config(LLMConfig(spec="openai:gpt-5", max_concurrency=4), cache_dir=tmp_path)
    assert [type(l).__name__ for l in layers(on)] == ["LimitedLLM", "CachedLLM", "BatchLLM", "OpenAILLM"]
    assert [type(l).__name__ for l in layers(off)] == ["LimitedLLM", "CachedLLM", "OpenAILLM"]
    assert (stage_workers(on, 2), stage_workers(off, 2), layers(on)[0]._slots._value) == (256, 2, 256)   # a waiting call holds no connection
    scripted = llm_from_config(BatchedConfig(spec="scripted"), cache_dir=tmp_path, scripted=lambda m, **p: "ok")
    assert not any(isinstance(l, BatchLLM) for l in layers(scripted))           # no batch interface: called as usual
    small = llm_from_config(LLMConfig(spec="openai:gpt-5", batch=True, batch_size=8), cache_dir=tmp_path)
    assert (layers(small)[2].max_batch, stage_workers(small, 2)) == (8, 8)      # teacher.batch_size caps a batch
    with pytest.raises(SynthsciError, match="batch_size"): LLMConfig(batch=True, batch_size=0)
