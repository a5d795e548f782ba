"""The anthropic and openai backends through their real SDKs, against recorded responses in the real wire format
served on 127.0.0.1; the cache, the ledger and the local SmolLM2 model."""
import json
import pytest
from synthsci.core import Ledger, SynthsciError, current_stage
from synthsci.llm import AnthropicLLM, OpenAILLM, CachedLLM, LLMError, get_llm, Completion

KEY = "sk-ant-test-0123456789-secret"
MSGS = [{"role": "system", "content": "You are a research scientist."},
        {"role": "user", "content": "Propose a research topic."}]
TOOLS = [{"type": "function", "function": {"name": "open", "description": "Open a file",
          "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "line": {"type": "integer"}}, "required": ["path"]}}}]


@pytest.fixture
def anthropic_llm(recorded, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return lambda retries=2: AnthropicLLM("claude-sonnet-4-6", max_retries=retries, timeout_s=10, base_url=recorded.url)


@pytest.fixture
def openai_llm(recorded, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return lambda retries=2: OpenAILLM("gpt-5", base_url=recorded.url + "/v1", max_retries=retries, timeout_s=10)


def test_anthropic_text(recorded, anthropic_llm):
    recorded.serve("anthropic_text")
    c = anthropic_llm().complete(MSGS, max_tokens=100, temperature=0)
    assert c.text.startswith("Human activity recognition") and c.tool_calls == []
    assert (c.usage.input_tokens, c.usage.output_tokens, c.finish_reason) == (31, 19, "end_turn")
    req = recorded.requests[0]
    assert req["path"] == "/v1/messages"
    assert KEY in req["headers"].get("x-api-key", "") + req["headers"].get("authorization", "")  # the key travels only in a header
    assert req["body"]["system"] == "You are a research scientist."           # system turns move to the system field
    assert [m["role"] for m in req["body"]["messages"]] == ["user"]


def test_anthropic_tool_use_round_trip(recorded, anthropic_llm):
    recorded.serve("anthropic_tool_use")
    llm = anthropic_llm()
    c = llm.complete(MSGS, tools=TOOLS)
    assert c.text == "I will start by reading the baseline."
    assert [(t.id, t.name, t.arguments) for t in c.tool_calls] == [("toolu_01A09q90qw90lq917835lq9", "open", {"path": "baseline.py", "line": 1})]
    assert recorded.requests[0]["body"]["tools"][0]["input_schema"]["required"] == ["path"]
    # the tool result goes back as a tool_result block in a user turn
    llm.complete(MSGS + [c.message(), {"role": "tool", "tool_call_id": c.tool_calls[0].id, "content": "1: import numpy"}], tools=TOOLS)
    sent = recorded.requests[1]["body"]["messages"]
    assert sent[1]["content"][1] == {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "open", "input": {"path": "baseline.py", "line": 1}}
    assert sent[2] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "1: import numpy"}]}


def test_anthropic_429_then_success(recorded, anthropic_llm):
    recorded.serve("anthropic_429", "anthropic_text")
    assert anthropic_llm().complete(MSGS).text.startswith("Human")
    assert len(recorded.requests) == 2


def test_anthropic_500s_exhaust_retries(recorded, anthropic_llm):
    recorded.serve("anthropic_500")
    with pytest.raises(LLMError, match=r"HTTP 500 after retries") as e:
        anthropic_llm(retries=2).complete(MSGS)
    assert len(recorded.requests) == 3 and "\n" not in str(e.value)


def test_anthropic_malformed_body(recorded, anthropic_llm):
    recorded.serve("malformed")
    with pytest.raises(LLMError, match="anthropic:claude-sonnet-4-6"):
        anthropic_llm().complete(MSGS)


def test_openai_text_without_key_on_a_local_server(recorded, openai_llm):
    recorded.serve("openai_text")
    c = openai_llm().complete(MSGS, temperature=0)
    assert c.text.startswith("Forecast daily") and (c.usage.input_tokens, c.usage.output_tokens) == (27, 13)
    assert recorded.requests[0]["path"] == "/v1/chat/completions" and recorded.requests[0]["body"]["model"] == "gpt-5"


def test_openai_tool_calls_round_trip(recorded, openai_llm):
    recorded.serve("openai_tool_calls")
    llm = openai_llm()
    c = llm.complete(MSGS, tools=TOOLS)
    assert (c.text, c.finish_reason) == ("", "tool_calls")
    assert [(t.name, t.arguments) for t in c.tool_calls] == [("open", {"path": "baseline.py", "line": 1})]
    llm.complete(MSGS + [c.message(), {"role": "tool", "tool_call_id": c.tool_calls[0].id, "content": "ok"}], tools=TOOLS)
    sent = recorded.requests[1]["body"]["messages"]
    assert json.loads(sent[2]["tool_calls"][0]["function"]["arguments"]) == {"path": "baseline.py", "line": 1}  # wire format: a JSON string
    assert sent[3] == {"role": "tool", "tool_call_id": "call_Qd4mX1c9Zr2Vb8Np", "content": "ok"}


def test_openai_429_then_success(recorded, openai_llm):
    recorded.serve("openai_429", "openai_text")
    assert openai_llm().complete(MSGS).text.startswith("Forecast")
    assert len(recorded.requests) == 2


def test_openai_500s_exhaust_retries(recorded, openai_llm):
    recorded.serve("openai_500")
    with pytest.raises(LLMError, match="HTTP 500 after retries"):
        openai_llm(retries=1).complete(MSGS)
    assert len(recorded.requests) == 2


def test_openai_malformed_body(recorded, openai_llm):
    recorded.serve("malformed")
    with pytest.raises(LLMError, match=r"openai:gpt-5@"):
        openai_llm().complete(MSGS)


def test_cache_serves_repeat_without_backend_and_keeps_no_key(recorded, monkeypatch, tmp_path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    recorded.serve("anthropic_text")
    llm = get_llm("anthropic:claude-sonnet-4-6", cache="record", cache_dir=tmp_path, http_client=None)
    llm.llm.llm.client = llm.llm.llm.client.with_options(base_url=recorded.url)   # point the real SDK client at the recording
    first, second = llm.complete(MSGS), llm.complete(MSGS)
    assert len(recorded.requests) == 1 and second.cached and second.text == first.text
    stored = "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    assert "Human activity" in stored and KEY not in stored
    with pytest.raises(LLMError, match="replay mode"):
        get_llm("anthropic:claude-sonnet-4-6", cache="replay", cache_dir=tmp_path).complete(MSGS + [{"role": "user", "content": "again"}])
    assert len(recorded.requests) == 1                                           # replay never called the backend


def test_ledger_prices_real_usage(recorded, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    recorded.serve("anthropic_text")
    ledger = Ledger(budget_usd=1.0)
    llm = get_llm("anthropic:claude-sonnet-4-6", ledger=ledger)
    llm.llm.llm.client = llm.llm.llm.client.with_options(base_url=recorded.url)
    tok = current_stage.set("02_proposals")
    llm.complete(MSGS)
    current_stage.reset(tok)
    s = ledger.stage_totals("02_proposals")
    assert (s["input_tokens"], s["output_tokens"]) == (31, 19)
    assert s["cost_usd"] == pytest.approx((31 * 3 + 19 * 15) / 1e6)


def test_bad_specs_are_one_line():
    for spec in ["gpt-5", "anthropic:", "ollama:llama3", "local-model"]:
        with pytest.raises(SynthsciError) as e: get_llm(spec)
        assert "\n" not in str(e.value) and "openai:<model>@<base_url>" in str(e.value)


def test_local_smollm2_generates():
    llm = get_llm("local", role="student")
    c = llm.complete([{"role": "user", "content": "What is 2 + 2? Answer with a number."}], max_tokens=12)
    assert isinstance(c, Completion) and c.text.strip() and c.usage.output_tokens > 0
    assert c.model == "local:SmolLM2-135M-Instruct"
    assert "<|im_start|>assistant" in llm.llm.render([{"role": "user", "content": "hi"}])
