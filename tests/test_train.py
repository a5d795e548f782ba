"""Training the student with TRL: the assistant-only loss mask, a short run that learns, LoRA merging, format parity
between training and inference, resuming, and the errors raised before any training. A two-layer model with
SmolLM2's tokenizer and config stands in for SmolLM2 to keep these fast (bench/sft.py times the real one)."""
import json, shutil
from pathlib import Path
import pytest
import torch
import datasets
from transformers import AutoConfig, AutoModelForCausalLM
from synthsci.core import SynthsciError, Task, Trajectory, load_config, read_jsonl, write_jsonl
from synthsci.filter import run_filter, sft_messages, sft_tools
from synthsci.student import render, resolve_student, student_tokenizer
from synthsci.llm import LocalLLM, get_llm, parse_tool_calls
from synthsci.sftdata import run_sftdata, to_hf_dataset, to_sft_example
from synthsci.train import TrainOptions, build_trainer, check_training_inputs, main, train_student

FIXTURES = Path(__file__).parent / "fixtures" / "trajectories"
KEPT = ["traj-diabetes-a", "traj-iris-a", "traj-motions-a", "traj-motions-b"]


@pytest.fixture(scope="module")
def tok():
    return student_tokenizer("local")


@pytest.fixture(scope="module")
def trajs():
    return {t.id: t for p in sorted(FIXTURES.glob("traj-*.jsonl")) for t in read_jsonl(Trajectory, p)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tok):
    "A randomly initialised two-layer model with SmolLM2's config and tokenizer, saved as a base model folder."
    path = tmp_path_factory.mktemp("tiny") / "base"
    c = AutoConfig.from_pretrained(resolve_student("local"))
    c.num_hidden_layers, c.hidden_size, c.intermediate_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim = 2, 64, 128, 4, 2, 16
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(c).save_pretrained(path)
    AutoConfig.from_pretrained(resolve_student("local"))  # the real tokenizer files, as a checkpoint carries them
    student_tokenizer("local").save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def dd(trajs, tok):
    exs = [to_sft_example(trajs[k], tok, 1200) for k in KEPT]
    return datasets.DatasetDict({"train": to_hf_dataset([e for e in exs if e.task_id != "task-basicmotions"] + [exs[3]]),
                                 "eval": to_hf_dataset([exs[2]])})


def opts(base, **kw):
    return TrainOptions(**{**dict(base_model=base, max_length=1280, max_steps=6, learning_rate=5e-3, warmup=0, grad_accum=1, batch_size=1), **kw})


def assistant_body(m):
    "What the student must say for an assistant message: its text, its tool calls as <tool_call> blocks, <|im_end|>."
    s = m["content"]
    for i, tc in enumerate(m.get("tool_calls") or []):
        args = tc["function"]["arguments"]
        s += ("\n" if s or i else "") + '<tool_call>{"name": ' + json.dumps(tc["function"]["name"]) + ', "arguments": ' + \
             (args if isinstance(args, str) else json.dumps(args)) + "}</tool_call>"
    return s + "<|im_end|>"


def test_loss_mask_is_exactly_the_assistant_tokens(tiny, dd, tok, tmp_path):
    trainer = build_trainer(dd, tmp_path, opts(tiny, batching="padded"))
    rows = list(trainer.train_dataset)
    for row, ex in zip(rows, dd["train"]):
        text = render(tok, ex["messages"], json.loads(ex["tools"]))
        enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
        assert enc["input_ids"] == row["input_ids"]                   # TRL trained on this very rendering
        spans, pos = [], 0
        for m in ex["messages"]:
            if m["role"] != "assistant": continue
            head = "<|im_start|>assistant\n"
            at = text.index(head + assistant_body(m), pos) + len(head)
            spans.append((at, at + len(assistant_body(m)))); pos = spans[-1][1]
        expected = []
        for a, b in enc["offset_mapping"]:
            inside = any(s <= a and b <= e for s, e in spans)
            assert inside or not any(a < s < b or a < e < b for s, e in spans)   # no token straddles a boundary
            expected.append(inside)
        assert [l != -100 for l in row["labels"]] == expected
        assert tok.decode([t for t, l in zip(row["input_ids"], row["labels"]) if l != -100]) == "".join(text[s:e] for s, e in spans)
    assert any("<tool_call>" in tok.decode([t for t, l in zip(r["input_ids"], r["labels"]) if l != -100]) for r in rows)


def _assistant_loss(model_dir, rows):
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return sum(model(input_ids=torch.tensor([r["input_ids"]]), labels=torch.tensor([r["labels"]])).loss.item() for r in rows) / len(rows)


@pytest.fixture(scope="module")
def student(tiny, dd, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return train_student(dd, out, opts(tiny), seed=0, data_path="fixtures"), out


def test_short_training_lowers_the_loss_and_changes_the_weights(student, tiny, dd, tmp_path):
    model, out = student
    rows = list(build_trainer(dd, tmp_path, opts(tiny, batching="padded")).train_dataset)
    before, after = _assistant_loss(tiny, rows), _assistant_loss(model.path, rows)
    assert after < before - 0.5, (before, after)
    base = AutoModelForCausalLM.from_pretrained(tiny).state_dict()
    trained = AutoModelForCausalLM.from_pretrained(model.path).state_dict()
    assert all(torch.isfinite(v).all() for v in trained.values())
    assert sum(not torch.equal(base[k], trained[k]) for k in base) >= len(base) - 2   # (norm weights may barely move)
    meta = json.loads((Path(model.path) / "meta.json").read_text())
    assert meta["steps"] == 6 and meta["data"]["train"]["rows"] == 3 and meta["data"]["eval"]["tasks"] == 1
    assert meta["losses"]["final_eval_loss"] is not None and meta["options"]["learning_rate"] == 5e-3
    assert {"torch", "transformers", "trl"} <= set(meta["versions"]) and "{% generation %}" in meta["chat_template"]


def test_format_parity_between_training_and_inference(student, trajs, tok):
    "The prompt the agent sends the trained student (LocalLLM) is the training rendering, cut where the student speaks."
    model, _ = student
    llm = get_llm(model.spec)
    for tid in ("traj-iris-a", "traj-diabetes-a"):
        t = trajs[tid]
        msgs, tools = sft_messages(t), sft_tools(t)
        trained = render(tok, msgs, tools)
        for k, m in enumerate(msgs):
            if m["role"] != "assistant": continue
            prompt = llm.llm.render(msgs[:k], tools)
            assert trained.startswith(prompt) and trained[len(prompt):].startswith(assistant_body(m))
            text, calls = parse_tool_calls(assistant_body(m).removesuffix("<|im_end|>"))   # what the agent parses back
            assert text == m["content"].strip() and [c.name for c in calls] == [tc["function"]["name"] for tc in m.get("tool_calls") or []]
    assert llm.complete([{"role": "user", "content": "hi"}], max_tokens=3).usage.output_tokens <= 3


def test_lora_student_is_merged_and_loads_as_an_llm(tiny, dd, tmp_path):
    model = train_student(dd, tmp_path, opts(tiny, finetune="lora", max_steps=2, lora_r=4, lora_alpha=8, eval=False))
    path = Path(model.path)
    assert (path / "config.json").exists() and not (path / "adapter_config.json").exists() and (tmp_path / "adapter" / "adapter_config.json").exists()
    base = AutoModelForCausalLM.from_pretrained(tiny).state_dict()
    merged = AutoModelForCausalLM.from_pretrained(path).state_dict()
    assert set(merged) == set(base) and not torch.equal(base["model.layers.0.self_attn.q_proj.weight"], merged["model.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(base["model.embed_tokens.weight"], merged["model.embed_tokens.weight"])   # LoRA left the embeddings alone
    assert isinstance(get_llm(f"local:{path}").llm, LocalLLM)
    assert get_llm(f"local:{path}").complete([{"role": "user", "content": "hi"}], max_tokens=2).usage.output_tokens <= 2


class Killed(Exception):
    "The training process dying, as the test stages it."


def test_stage_resumes_a_killed_run_then_keeps_only_what_resume_and_evaluation_need(tiny, tmp_path, monkeypatch):
    import synthsci.train as T
    from transformers import TrainerCallback
    rdir = tmp_path / "r"
    write_jsonl(read_jsonl(Task, FIXTURES / "tasks.jsonl"), rdir / "04_tasks" / "tasks.jsonl")
    (rdir / "06_rollouts").mkdir(parents=True)
    for p in FIXTURES.glob("traj-*.jsonl"): shutil.copy(p, rdir / "06_rollouts" / p.name)
    base = [f"runs_dir={tmp_path}", "run_id=r", "stages.sftdata.max_tokens=1200", f"stages.train.base_model={tiny}", "stages.train.max_length=1280",
            "stages.train.save_steps=1", "stages.train.eval=false", "stages.train.grad_accum=1", "stages.train.max_steps=3"]
    run_filter(load_config(overrides=base)); run_sftdata(load_config(overrides=base))
    empty = tmp_path / "empty.yaml"; empty.write_text("")          # every field from the overrides
    # the first run dies right after it saved step 2 (its checkpoint written whole, the student not yet)
    class KillAfterStep2(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == 2: raise Killed()
    real = T.build_trainer
    def dying(*a, **k):
        trainer = real(*a, **k); trainer.add_callback(KillAfterStep2()); return trainer
    monkeypatch.setattr(T, "build_trainer", dying)
    with pytest.raises(Killed): main([str(empty), *base])
    ckpts = rdir / "09_train" / "checkpoints"
    assert [c.name for c in ckpts.glob("checkpoint-*")] == ["checkpoint-2"]            # save_total_limit 1: checkpoint-1 went once 2 was written
    assert (ckpts / "checkpoint-2" / "optimizer.pt").exists() and not (rdir / "09_train" / "student.jsonl").exists()
    monkeypatch.setattr(T, "build_trainer", real)
    assert main([str(empty), *base]) == 0
    meta = json.loads((rdir / "09_train" / "student" / "meta.json").read_text())
    assert meta["resumed_from"].endswith("checkpoint-2") and meta["resumed_optimizer_state"] is True and meta["steps"] == 3
    assert json.loads((rdir / "09_train" / "student.jsonl").read_text())["spec"] == f"local:{rdir / '09_train' / 'student'}"
    # training completed: one checkpoint is left (a resume's starting point), without its optimizer and scheduler state
    assert [c.name for c in ckpts.glob("checkpoint-*")] == ["checkpoint-3"]
    files = [f for f in (rdir / "09_train").rglob("*") if f.is_file()]
    assert not [f for f in files if "optimizer" in f.name or f.name == "scheduler.pt"]
    assert (ckpts / "checkpoint-3" / "model.safetensors").exists() and (ckpts / "checkpoint-3" / "trainer_state.json").exists()
    # the manifest records the folder's size; with AdamW's two moments kept it would be at least 4x the weights
    # (the student's copy, the checkpoint's, and the optimizer's two), without them about 2x plus the tokenizer files
    total, weights = sum(f.stat().st_size for f in files), (rdir / "09_train" / "student" / "model.safetensors").stat().st_size
    assert json.loads((rdir / "manifest.json").read_text())["stages"]["09_train"]["disk_mb"] == round(total / 2**20, 1)
    assert total < 3 * weights, (total, weights)
    # a rerun of the completed stage trains nothing; resuming from the pruned checkpoint says the optimizer restarted
    (rdir / "09_train" / "student.jsonl").unlink()
    assert main([str(empty), *base]) == 0
    meta = json.loads((rdir / "09_train" / "student" / "meta.json").read_text())
    assert meta["resumed_from"].endswith("checkpoint-3") and meta["resumed_optimizer_state"] is False and meta["steps"] == 3


def test_bad_inputs_fail_before_training(tiny, dd, tmp_path, capsys):
    empty = datasets.DatasetDict({"train": dd["train"].select([])})
    with pytest.raises(SynthsciError, match="no training examples"):
        train_student(empty, tmp_path, opts(tiny))
    with pytest.raises(SynthsciError, match="is not a training checkpoint"):
        train_student(dd, tmp_path, opts(tiny, resume_from=str(tmp_path)))
    with pytest.raises(SynthsciError, match="not a model folder"):
        train_student(dd, tmp_path, opts(str(tmp_path)))
    with pytest.raises(SynthsciError, match="max_length 16384 exceeds what .* allows \\(8192 positions\\)"):
        train_student(dd, tmp_path, opts(tiny, max_length=16384))
    with pytest.raises(SynthsciError, match="examples reach 1\\d\\d\\d tokens but train.max_length is 512"):
        train_student(dd, tmp_path, opts(tiny, max_length=512))
    assert not (tmp_path / "checkpoints").exists()          # nothing started
    assert main([str(tmp_path / "none.yaml")]) == 1 and "does not exist" in capsys.readouterr().err
    (tmp_path / "empty.yaml").write_text("")
    assert main([str(tmp_path / "empty.yaml"), f"runs_dir={tmp_path}"]) == 1 and "holds no SFT dataset" in capsys.readouterr().err
