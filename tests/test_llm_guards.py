"""The guards around every backend tell the truth: the cache key names who answers, the ledger counts cached calls
and what they saved, one price function, provider rate limits kept by waiting, and an empty spec is an error."""
import json, threading, time, warnings
import pytest
from synthsci.core import Ledger, SynthsciError, Topic, current_stage, llm_cache_dir, load_config, open_run, run_stage
from synthsci.llm import (AnthropicLLM, CachedLLM, Completion, LocalLLM, MeteredLLM, RateLimitedLLM, ScriptedLLM, Usage, cost_usd,
                          estimate_tokens, get_llm, layers, llm_from_config, script_identity)

Q = [{"role": "user", "content": "Propose a research topic."}]
GPT5_TEXT = (27 * 1.25 + 13 * 10.0) / 1e6   # tests/fixtures/llm/openai_text.json: 27 tokens in, 13 out, at gpt-5's $1.25 / $10 per 1M


def teacher(seed: int, p_bug: float = 0.3):
    "A scripted teacher made like the stages' (a closure over its seed and bug rate), with no `cache_identity`."
    def respond(messages, **params): return f"seed={seed} p_bug={p_bug}"
    return respond


class FakeClock:
    "A fake clock whose `sleep` notes each wait and moves the clock on (a frozen one only notes)."
    def __init__(self, frozen=False):
        self.t, self.slept, self.frozen, self._lock = 0.0, [], frozen, threading.Lock()
    def __call__(self): return self.t
    def sleep(self, s):
        with self._lock:
            self.slept.append(round(s, 6))
            if not self.frozen: self.t += s


# -- 1. the cache key covers everything that changes an answer

def test_scripted_teachers_differing_in_seed_or_bug_rate_never_replay_each_other(tmp_path):
    ask = lambda script: CachedLLM(ScriptedLLM(script), tmp_path).complete(Q)
    answers = [ask(teacher(0)), ask(teacher(3)), ask(teacher(0, p_bug=0.9)), ask(teacher(0)), ask(teacher(3))]
    assert [a.text for a in answers] == ["seed=0 p_bug=0.3", "seed=3 p_bug=0.3", "seed=0 p_bug=0.9", "seed=0 p_bug=0.3", "seed=3 p_bug=0.3"]
    assert [a.cached for a in answers] == [False, False, False, True, True]   # the same settings hit; others never replay
    assert len(list(tmp_path.rglob("*.json"))) == 3


def test_the_stages_scripted_teachers_have_keys_of_their_own(tmp_path):
    from synthsci.topics import scripted_topics
    from synthsci.proposals import scripted_proposals
    from synthsci.templates import QUICK_BUGS, scripted_taskgen
    key = lambda script: CachedLLM(ScriptedLLM(script), tmp_path).key(Q, seed=0)
    for make in (scripted_topics, scripted_proposals):
        assert key(make(0)) == key(make(0)) and key(make(0)) != key(make(3)), make.__name__
    bugs = tuple(QUICK_BUGS)
    assert key(scripted_taskgen(0, 0.5, bugs)) == key(scripted_taskgen(0, 0.5, bugs))
    assert len({key(scripted_taskgen(0, 0.5, bugs)), key(scripted_taskgen(0, 0.3, bugs)), key(scripted_taskgen(1, 0.5, bugs)),
                key(scripted_taskgen(0, 0.5, bugs[:1]))}) == 4


def test_an_explicit_cache_identity_is_used_as_given():
    fn = teacher(0)
    fn.cache_identity = dict(name="my_teacher", seed=0, p_bug=0.3)
    assert ScriptedLLM(fn).identity == dict(backend="scripted", script=dict(name="my_teacher", seed=0, p_bug=0.3))
    assert script_identity(["a", Completion("b")])[0] == "a" and script_identity(["a", Completion("b")])[1]["text"] == "b"


def test_api_backends_are_keyed_by_model_and_server(monkeypatch, tmp_path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    key = lambda **kw: CachedLLM(AnthropicLLM("claude-sonnet-4-6", **kw), tmp_path).key(Q)
    assert key() == key() and key() != key(base_url="http://127.0.0.1:9") and key() != CachedLLM(AnthropicLLM("claude-opus-4-6"), tmp_path).key(Q)
    assert "sk-ant-test" not in json.dumps(AnthropicLLM("claude-sonnet-4-6").identity)


def test_a_retrained_local_checkpoint_is_a_new_model(tmp_path):
    ckpt = tmp_path / "checkpoint"   # a hand-written stand-in for a checkpoint folder: identity reads its files, never loads them
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    (ckpt / "model.safetensors").write_bytes(b"x" * 10)
    before = LocalLLM(str(ckpt)).identity
    assert before == LocalLLM(str(ckpt)).identity and before["path"] == str(ckpt.resolve())
    (ckpt / "model.safetensors").write_bytes(b"y" * 11)
    assert LocalLLM(str(ckpt)).identity != before


# -- 2. metering wraps the cache

def test_a_replayed_run_counts_cached_calls_and_what_they_saved(recorded, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    recorded.serve("openai_text")

    def topics(run_id):
        cfg = load_config(overrides=[f"runs_dir={tmp_path}", f"run_id={run_id}", "teacher.spec=openai:gpt-5", f"teacher.cache_dir={tmp_path / 'shared'}"])
        run, ledger = open_run(cfg)
        llm = llm_from_config(cfg.teacher, "teacher", ledger, llm_cache_dir(cfg))
        sdk = layers(llm)[-1]
        sdk.client = sdk.client.with_options(base_url=recorded.url + "/v1")   # the real SDK, against the recorded answer
        fn = lambda i: [Topic(id=f"t{i}", area="a", name=llm.complete([{"role": "user", "content": f"topic {i}"}]).text)]
        return run_stage(run, "01_topics", [(f"u{i}", i) for i in range(3)], fn, ledger=ledger, progress=False)

    first = topics("first")
    assert (first["calls"], first["cached_calls"], len(recorded.requests)) == (3, 0, 3)
    assert first["cost_usd"] == pytest.approx(3 * GPT5_TEXT) and first["saved_usd"] == 0
    again = topics("again")
    assert (again["calls"], again["cached_calls"], len(recorded.requests)) == (3, 3, 3)   # nothing reached the server
    assert again["cost_usd"] == 0 and again["saved_usd"] == pytest.approx(3 * GPT5_TEXT)
    on_disk = json.loads((tmp_path / "again" / "manifest.json").read_text())["stages"]["01_topics"]
    assert (on_disk["cached_calls"], on_disk["saved_usd"]) == (3, pytest.approx(3 * GPT5_TEXT))
    _, ledger = open_run(load_config(overrides=[f"runs_dir={tmp_path}", "run_id=again", "teacher.spec=openai:gpt-5",
                                                f"teacher.cache_dir={tmp_path / 'shared'}"]))
    assert ledger.stage_totals("01_topics")["saved_usd"] == pytest.approx(3 * GPT5_TEXT)   # a resumed ledger keeps it


def test_a_spent_budget_refuses_paid_calls_but_not_replays(tmp_path):
    priced = ScriptedLLM(lambda m, **p: Completion("ok", usage=Usage(27, 13)), name="openai:gpt-5")
    ledger = Ledger(budget_usd=GPT5_TEXT / 2)   # the first call spends it
    llm = MeteredLLM(CachedLLM(priced, tmp_path), ledger)
    tok = current_stage.set("02_proposals")
    try:
        llm.complete(Q)
        assert llm.complete(Q).cached
        with pytest.raises(SynthsciError, match="LLM budget"): llm.complete(Q + [{"role": "user", "content": "again"}])
    finally: current_stage.reset(tok)
    s = ledger.stage_totals("02_proposals")
    assert (s["calls"], s["cached_calls"], len(priced.calls)) == (2, 1, 1)
    assert s["cost_usd"] == pytest.approx(GPT5_TEXT) and s["saved_usd"] == pytest.approx(GPT5_TEXT)


# -- 3. one price function

def test_the_agent_prices_a_trajectory_with_the_llm_layers_cost_function(tmp_path):
    from synthsci.agent import AgentConfig, LLMPolicy, _ask
    from synthsci.core import Trajectory
    answer = Completion("DISCUSSION\nLook.\n\n```\nls\n```", usage=Usage(27, 13))
    for cached in (False, True):
        policy = LLMPolicy(ScriptedLLM(lambda m, **p: Completion(**{**answer.__dict__, "cached": cached}), name="openai:gpt-5"))
        traj = Trajectory(id="t", task_id="x", messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
                          model_stats=dict(total_cost=0.0, tokens_sent=0, tokens_received=0, api_calls=0))
        _ask(policy, traj, AgentConfig())
        s = traj.model_stats
        assert s["total_cost"] == pytest.approx(0.0 if cached else cost_usd("openai:gpt-5", Usage(27, 13)))
        assert s["total_cost"] == pytest.approx(0.0 if cached else GPT5_TEXT)
        assert s.get("saved_usd", 0.0) == pytest.approx(GPT5_TEXT if cached else 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the rule-based policies cost nothing, silently
        assert cost_usd("expert", Usage(100, 100)) == cost_usd("simulated", Usage(100, 100)) == 0.0


# -- 4. provider rate limits

def test_a_burst_against_60_requests_a_minute_goes_one_a_second():
    clock = FakeClock()
    rl = RateLimitedLLM(ScriptedLLM(lambda m, **p: "ok"), requests_per_minute=60, clock=clock, sleep=clock.sleep)
    for _ in range(10): rl.complete(Q, max_tokens=8)
    assert (clock.slept, clock.t) == ([1.0] * 9, 9.0)
    clock = FakeClock()
    rl = RateLimitedLLM(ScriptedLLM(lambda m, **p: "ok"), requests_per_minute=30, burst_s=4, clock=clock, sleep=clock.sleep)
    for _ in range(5): rl.complete(Q)
    assert clock.slept == [2.0, 2.0, 2.0]   # a bucket of 4 s at one request per 2 s holds 2: then one every 2 s


def test_a_tokens_per_minute_limit_delays_a_large_request_and_learns_the_real_usage():
    clock = FakeClock()
    big, small = [{"role": "user", "content": "x" * 4000}], [{"role": "user", "content": "hi"}]
    assert (estimate_tokens(big, 2000), estimate_tokens(small, 10)) == (3000, 10)   # 1000 tokens of text and up to 2000 of answer
    used = []
    def answer(m, **p):
        used.append(clock.t)   # when the request reached the "provider"
        return Completion("ok", usage=Usage(1000, 500) if m == big else Usage(1, 9))   # the big one: 1500 of its 3000 come back
    rl = RateLimitedLLM(ScriptedLLM(answer), tokens_per_minute=60_000, clock=clock, sleep=clock.sleep)   # 1000 a second, 1000 at once
    rl.complete(big, max_tokens=2000)     # a full bucket: at once, leaving a debt of 2000, then 500 once corrected
    rl.complete(small, max_tokens=10)     # waits out the debt: (10 + 500) / 1000 s (2.01 s had the estimate stood)
    rl.complete(big, max_tokens=2000)     # larger than the bucket: waits until it is full again
    assert clock.slept == [pytest.approx(0.51), pytest.approx(1.0)] and used == [0.0, pytest.approx(0.51), pytest.approx(1.51)]


def test_threads_share_the_buckets():
    clock = FakeClock(frozen=True)    # every reservation at t=0: each thread queues behind those before it
    rl = RateLimitedLLM(ScriptedLLM(lambda m, **p: "ok"), requests_per_minute=120, clock=clock, sleep=clock.sleep)   # 2 a second
    threads = [threading.Thread(target=rl.complete, args=(Q,)) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert sorted(clock.slept) == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]   # two at once (the bucket holds a second's worth), then one each 0.5 s


def test_real_time_waits_and_cached_replays_use_no_allowance(tmp_path):
    llm = get_llm("scripted", scripted=lambda m, **p: "ok", cache="record", cache_dir=tmp_path, requests_per_minute=600)   # 10 a second
    assert [type(l).__name__ for l in layers(llm)] == ["LimitedLLM", "CachedLLM", "RateLimitedLLM", "ScriptedLLM"]
    t0 = time.monotonic()
    for i in range(13): llm.complete([{"role": "user", "content": f"q{i}"}])
    waited = layers(llm)[2].waited_s
    assert time.monotonic() - t0 >= 0.25 and 0 < waited <= 0.3 + 1e-9   # 10 at once (a second's worth), then 3 waits of up to 0.1 s
    for i in range(13): assert llm.complete([{"role": "user", "content": f"q{i}"}]).cached
    assert layers(llm)[2].waited_s == waited and len(layers(llm)[-1].calls) == 13   # the replays waited for nothing, called nothing


def test_rate_limits_come_from_the_config(tmp_path):
    cfg = load_config(overrides=["teacher.spec=scripted", "teacher.requests_per_minute=50", "teacher.tokens_per_minute=30000"])
    rl = next(l for l in layers(llm_from_config(cfg.teacher, ledger=Ledger(), cache_dir=tmp_path)) if isinstance(l, RateLimitedLLM))
    assert (rl.requests.rate * 60, rl.tokens.rate * 60) == (pytest.approx(50), pytest.approx(30000))
    plain = load_config(overrides=["teacher.spec=scripted"]).teacher
    assert not any(isinstance(l, RateLimitedLLM) for l in layers(llm_from_config(plain, cache_dir=tmp_path)))


# -- 6. an empty spec is an error

def test_an_empty_spec_is_an_error_naming_the_spec_forms(capsys):
    for spec in ("", "  "):
        with pytest.raises(SynthsciError, match=r"^the LLM spec is empty: use one of anthropic:<model>, .*scripted") as e: get_llm(spec)
        assert "\n" not in str(e.value)
    from synthsci.cli import main
    assert main(["llm", "--spec", "", "Name a dataset."]) == 2
    err = capsys.readouterr().err
    assert "the LLM spec is empty" in err and "scripted" in err
