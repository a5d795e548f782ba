"""The anthropic and openai backends through their real SDKs, against recorded responses in the real wire format
served on 127.0.0.1; the cache, the ledger and the local SmolLM2 model."""
import json, warnings
import pytest
import synthsci.llm as llm_mod
from synthsci.core import Ledger, SynthsciError, current_stage
from synthsci.llm import AnthropicLLM, OpenAILLM, CachedLLM, LLMError, get_llm, Completion

KEY = "sk-ant-test-0123456789-secret"
MSGS = [{"role": "system", "content": "You are a research scientist."},
        {"role": "user", "content": "Propose a research topic."}]
TOOLS = [{"type": "function", "function": {"name": "open", "description": "Open a file",
          "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "line": {"type": "integer"}}, "required": ["path"]}}}]
# the conversation as the agent records it from its second step on: MLGym's keys ride on every turn
AGENT_MSGS = MSGS + [{"role": "assistant", "content": "DISCUSSION\nLook first.\n\n```\nls\n```", "agent": "primary", "thought": "Look first.", "action": "ls"},
                     {"role": "user", "content": "baseline.py\n(Current Step: 1, Remaining Steps: 9)", "agent": "primary"}]
OPENAI_FIELDS = {"system": {"role", "content", "name"}, "user": {"role", "content", "name"},
                 "assistant": {"role", "content", "name", "tool_calls", "refusal"}, "tool": {"role", "content", "tool_call_id"}}


@pytest.fixture(autouse=True)
def fresh_warnings():
    "Dropped-parameter warnings come once per backend and parameter: start each test afresh."
    llm_mod._warned_params.clear()


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
    with pytest.raises(LLMError, match=r"HTTP 500 \(after 2 retries\): Internal server error") as e:
        anthropic_llm(retries=2).complete(MSGS)
    assert len(recorded.requests) == 3 and "\n" not in str(e.value)


def test_anthropic_malformed_body(recorded, anthropic_llm):
    recorded.serve("malformed")
    with pytest.raises(LLMError, match="anthropic:claude-sonnet-4-6"):
        anthropic_llm().complete(MSGS)


def test_openai_text_without_key_on_a_local_server(recorded, openai_llm):
    recorded.serve("openai_text")
    with pytest.warns(UserWarning, match="not sending temperature=0"):        # gpt-5 is a reasoning model: no temperature
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
    with pytest.raises(LLMError, match=r"HTTP 500 \(after 1 retry\): The server had an error"):
        openai_llm(retries=1).complete(MSGS)
    assert len(recorded.requests) == 2


def test_openai_malformed_body(recorded, openai_llm):
    recorded.serve("malformed")
    with pytest.raises(LLMError, match=r"openai:gpt-5@"):
        openai_llm().complete(MSGS)


# --- requests carry what the provider defines, no more ------------------------------------------------------

def _openai(recorded, model):
    return OpenAILLM(model, base_url=recorded.url + "/v1", max_retries=0, timeout_s=10)


@pytest.mark.parametrize("model", ["gpt-5", "o4-mini"])    # the default model, and another reasoning model
def test_openai_reasoning_model_request_body(recorded, monkeypatch, model):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    recorded.serve("openai_text")
    with pytest.warns(UserWarning) as w:
        _openai(recorded, model).complete(AGENT_MSGS, max_tokens=256, temperature=0, top_p=0.9, seed=3)
    assert sorted(str(x.message).split(": ")[1] for x in w if "not sending" in str(x.message)) == ["not sending temperature=0", "not sending top_p=0.9"]
    body = recorded.requests[0]["body"]
    assert body["model"] == model and body["max_completion_tokens"] == 256 and body["seed"] == 3
    assert not {"max_tokens", "temperature", "top_p"} & set(body)
    for m in body["messages"]: assert set(m) <= OPENAI_FIELDS[m["role"]], m
    assert body["messages"][2] == {"role": "assistant", "content": AGENT_MSGS[2]["content"]}


def test_openai_chat_model_keeps_its_sampling_parameters(recorded, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    recorded.serve("openai_text")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                          # nothing dropped, nothing to say
        _openai(recorded, "gpt-4.1").complete(AGENT_MSGS, max_tokens=256, temperature=0)
    body = recorded.requests[0]["body"]
    assert (body["max_tokens"], body["temperature"]) == (256, 0) and "max_completion_tokens" not in body
    assert all(set(m) <= OPENAI_FIELDS[m["role"]] for m in body["messages"])


def test_openai_dropped_parameter_warns_once(recorded, openai_llm):
    recorded.serve("openai_text")
    llm = openai_llm()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for _ in range(3): llm.complete(MSGS, temperature=0.7)
    said = [str(x.message) for x in w if "not sending" in str(x.message)]
    assert len(said) == 1 and said[0].endswith("not sending temperature=0.7: OpenAI reasoning models take only its default value")
    assert len(recorded.requests) == 3 and not any("temperature" in r["body"] for r in recorded.requests)


def test_openai_tool_request_sends_only_function_fields(recorded, openai_llm):
    recorded.serve("openai_tool_calls")
    openai_llm().complete(MSGS, tools=[{"type": "function", "function": {**TOOLS[0]["function"], "x-ours": 1}}])
    assert recorded.requests[0]["body"]["tools"] == TOOLS


def test_anthropic_default_model_request_body(recorded, anthropic_llm):
    recorded.serve("anthropic_text")
    with pytest.warns(UserWarning, match="not sending top_p=0.9"):
        anthropic_llm().complete(AGENT_MSGS, temperature=0, top_p=0.9)
    body = recorded.requests[0]["body"]
    assert (body["model"], body["max_tokens"], body["temperature"]) == ("claude-sonnet-4-6", 4096, 0) and "top_p" not in body
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert all(set(m) == {"role", "content"} for m in body["messages"])
    assert body["messages"][1]["content"] == AGENT_MSGS[2]["content"]


def test_anthropic_thinking_request_and_its_blocks_go_back(recorded, anthropic_llm):
    recorded.serve("anthropic_thinking_tool_use")
    llm, think = anthropic_llm(), {"type": "enabled", "budget_tokens": 2048}
    with pytest.warns(UserWarning, match="not sending temperature=0"):
        c = llm.complete(MSGS, tools=TOOLS, max_tokens=8192, temperature=0, thinking=think)
    body = recorded.requests[0]["body"]
    assert (body["thinking"], body["max_tokens"]) == (think, 8192) and "temperature" not in body
    assert [t.name for t in c.tool_calls] == ["open"] and c.thinking_blocks[0]["signature"].startswith("EqQB")
    llm.complete(MSGS + [c.message(), {"role": "tool", "tool_call_id": c.tool_calls[0].id, "content": "1: import numpy"}],
                 tools=TOOLS, max_tokens=8192, thinking=think)
    turn = recorded.requests[1]["body"]["messages"][1]
    assert turn["role"] == "assistant" and [b["type"] for b in turn["content"]] == ["thinking", "tool_use"]
    assert turn["content"][0] == c.thinking_blocks[0]                           # the thinking block goes back unchanged
    with pytest.raises(LLMError, match=r"budget_tokens=2048 must be .* below max_tokens=2048: raise max_tokens") as e:
        llm.complete(MSGS, max_tokens=2048, thinking=think)
    assert len(recorded.requests) == 2 and "\n" not in str(e.value)            # refused before it was sent


def test_anthropic_model_without_sampling_parameters(recorded, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    recorded.serve("anthropic_text")
    llm = AnthropicLLM("claude-opus-4-7", max_retries=0, timeout_s=10, base_url=recorded.url)
    with pytest.warns(UserWarning, match="takes no sampling parameters"):
        llm.complete(MSGS, temperature=0, top_k=5)
    assert not {"temperature", "top_p", "top_k"} & set(recorded.requests[0]["body"])
    with pytest.raises(LLMError, match="'adaptive'"):
        llm.complete(MSGS, thinking={"type": "enabled", "budget_tokens": 2048})


# --- errors point the right way ----------------------------------------------------------------------------------

def test_openai_400_detail_is_one_line_and_not_retried(recorded, openai_llm):
    recorded.serve("openai_400_detail")
    with pytest.raises(LLMError) as e:
        openai_llm(retries=3).complete(MSGS)
    assert len(recorded.requests) == 1                                          # a 4xx other than 408/409/429 is not asked again
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("openai:gpt-5@") and "HTTP 400 (not retried): Model 'qwen3-8b' is not loaded" in msg


def test_fastapi_validation_errors_name_the_field(recorded, openai_llm):
    recorded.serve("openai_422_validation")
    with pytest.raises(LLMError, match=r"HTTP 422 \(not retried\): body\.messages: Field required"):
        openai_llm().complete(MSGS)
    assert len(recorded.requests) == 1


def test_anthropic_error_body_reaches_the_user(recorded, anthropic_llm):
    recorded.serve("anthropic_400")
    with pytest.raises(LLMError, match=r"HTTP 400 \(not retried\): temperature and top_p cannot both be specified"):
        anthropic_llm(retries=3).complete(MSGS)
    assert len(recorded.requests) == 1


def test_answers_cut_off_at_max_tokens_say_so(recorded, openai_llm, anthropic_llm):
    recorded.serve("openai_length")
    c = openai_llm().complete(MSGS, max_tokens=16)
    assert (c.finish_reason, c.truncated, c.max_tokens) == ("length", True, 16)
    assert c.cut_off() == "the answer was cut off at max_tokens=16: raise it"
    assert recorded.requests[0]["body"]["max_completion_tokens"] == 16
    recorded.serve("anthropic_max_tokens")
    c = anthropic_llm().complete(MSGS, max_tokens=16)
    assert (c.finish_reason, c.truncated, c.cut_off()) == ("max_tokens", True, "the answer was cut off at max_tokens=16: raise it")
    assert not get_llm("scripted", scripted=["done"]).complete(MSGS).truncated


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
