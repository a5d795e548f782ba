"""The SFT dataset: TRL's conversational format, the task-level split, truncation to the context, saving and the card."""
import json, os, random, shutil, subprocess, sys, warnings
from pathlib import Path
import pytest
from synthsci.core import SFTExample, SynthsciError, Task, Trajectory, load_config, read_jsonl, write_jsonl
from synthsci.filter import run_filter, sft_messages
from synthsci.student import render, student_tokenizer
from synthsci.sftdata import load_sft_dataset, push_dataset, run_sftdata, split_by_task, to_hf_dataset

FIXTURES = Path(__file__).parent / "fixtures" / "trajectories"


def test_split_never_leaks_a_task():
    rng = random.Random(0)
    for n_tasks in (1, 2, 3, 7, 40):
        exs = [SFTExample(id=f"e{i}", task_id=f"task-{rng.randrange(n_tasks)}", messages=[]) for i in range(200)]
        tasks = {e.task_id for e in exs}
        for seed in range(5):
            for frac in (0.0, 0.1, 0.3, 0.9):
                train, ev = split_by_task(exs, frac, seed)
                tr, te = {e.task_id for e in train}, {e.task_id for e in ev}
                assert not tr & te and tr | te == tasks and len(train) + len(ev) == len(exs)
                assert train                                     # never everything held out
                assert bool(ev) == (frac > 0 and len(tasks) > 1)  # at least one eval task when it can be


SPLIT_IN_A_PROCESS = """
import json, random
from synthsci.core import SFTExample
from synthsci.sftdata import split_by_task
rng = random.Random(0)
exs = [SFTExample(id=f"e{i}", task_id=f"task-{rng.randrange(40)}", messages=[]) for i in range(200)]
SPLIT
print(json.dumps([e.id for e in split(exs, 0.2, 1)[1]]))
"""


def eval_ids_in_fresh_processes(split_code: str, n: int = 4) -> list[list[str]]:
    """The held-out ids of one split, computed in `n` fresh interpreters, each with its own PYTHONHASHSEED: an order that
    leans on string hashing or set iteration (salted per process) differs between them, never within one process."""
    out = []
    for seed in range(1, n + 1):
        r = subprocess.run([sys.executable, "-c", SPLIT_IN_A_PROCESS.replace("SPLIT", split_code)], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONHASHSEED": str(seed)})
        assert r.returncode == 0, r.stderr
        out.append(json.loads(r.stdout))
    return out


def test_split_is_the_same_in_every_process_and_the_check_catches_hash_order():
    runs = eval_ids_in_fresh_processes("split = split_by_task")
    assert runs[0] and all(r == runs[0] for r in runs)               # four processes, four hash seeds: one split
    rng = random.Random(0)
    exs = [SFTExample(id=f"e{i}", task_id=f"task-{rng.randrange(40)}", messages=[]) for i in range(200)]
    assert [e.id for e in split_by_task(exs, 0.2, 1)[1]] == runs[0]  # and the same as in this process
    # planted: the same split, but the tasks ordered by Python's own (salted) string hash instead of a stable one
    planted = ("def split(exs, frac, seed):\n"
               "    tasks = sorted({e.task_id for e in exs}, key=lambda t: hash((seed, t)))\n"
               "    held = set(tasks[:max(1, round(frac * len(tasks)))])\n"
               "    return [e for e in exs if e.task_id not in held], [e for e in exs if e.task_id in held]")
    runs = eval_ids_in_fresh_processes(planted)
    assert any(r != runs[0] for r in runs)


@pytest.fixture
def run_dir(tmp_path):
    rdir = tmp_path / "r"
    write_jsonl(read_jsonl(Task, FIXTURES / "tasks.jsonl"), rdir / "04_tasks" / "tasks.jsonl")
    (rdir / "06_rollouts").mkdir(parents=True)
    for p in FIXTURES.glob("traj-*.jsonl"): shutil.copy(p, rdir / "06_rollouts" / p.name)
    return tmp_path, rdir


def test_stage_saves_a_conversational_dataset_with_card(run_dir):
    tmp, rdir = run_dir
    cfg = load_config(overrides=[f"runs_dir={tmp}", "run_id=r"])
    run_filter(cfg)
    out = run_sftdata(cfg)
    dd = load_sft_dataset(out)
    rows = list(dd["train"]) + list(dd["eval"])
    assert sorted(r["trajectory_id"] for r in rows) == ["traj-diabetes-a", "traj-iris-a", "traj-motions-a", "traj-motions-b"]
    assert not set(dd["train"]["task_id"]) & set(dd["eval"]["task_id"]) and dd["eval"].num_rows > 0
    # the rows render exactly as the kept trajectories do (Arrow's null padding changes nothing), tools included
    tok = student_tokenizer("local")
    kept = {t.id: t for p in (rdir / "07_filtered").glob("*.jsonl") for t in read_jsonl(Trajectory, p)}
    for r in rows:
        t = kept[r["trajectory_id"]]
        tools = json.loads(r["tools"])
        assert tools == (t.provenance.get("tools") or [])
        assert render(tok, r["messages"], tools) == render(tok, sft_messages(t)[:len(r["messages"])], tools)
        assert r["messages"][-1]["role"] == "assistant"
    assert any(m.get("tool_calls") for r in rows for m in r["messages"])
    # Parquet copies and the card
    import datasets
    for split in ("train", "eval"):
        assert list(datasets.Dataset.from_parquet(str(out / "parquet" / f"{split}.parquet"))["id"]) == list(dd[split]["id"])
    card = (out / "README.md").read_text()
    for line in ("| input | 7 | 0 |", "| success | 6 | 1 |", "| duplicate | 4 | 1 |", "| fits 32768 tokens | 4 | 0 |", "- run_id: r"):
        assert line in card, line
    stats = json.loads((rdir / "manifest.json").read_text())["stages"]["08_sft"]["splits"]
    assert stats["train"]["examples"] + stats["eval"]["examples"] == 4 and stats["train"]["max"] <= 32768


def test_long_conversations_are_cut_to_the_context(run_dir):
    tmp, rdir = run_dir
    cfg = load_config(overrides=[f"runs_dir={tmp}", "run_id=r", "stages.sftdata.max_tokens=1100"])
    run_filter(cfg)
    out = run_sftdata(cfg)
    dd = load_sft_dataset(out)
    n = list(dd["train"]["n_tokens"]) + list(dd["eval"]["n_tokens"])
    assert n and max(n) <= 1100
    card = (out / "README.md").read_text()
    assert "truncated_to_context: " in card and "truncated_to_context: 0" not in card
    # one trajectory's first turn is over 1100 tokens (iris: 992 + its answer): counted in the funnel, not silently lost
    fits = json.loads((rdir / "manifest.json").read_text())["stages"]["08_sft"]["funnel"][-1]
    assert fits["step"] == "fits 1100 tokens" and fits["kept"] + fits["dropped"] == 4


def test_nothing_to_build_from_is_an_error(run_dir):
    tmp, rdir = run_dir
    cfg = load_config(overrides=[f"runs_dir={tmp}", "run_id=r"])
    with pytest.raises(SynthsciError, match="no kept trajectories .* the filter stage has not run; run it first"):
        run_sftdata(cfg)
    run_filter(cfg)
    cfg = load_config(overrides=[f"runs_dir={tmp}", "run_id=r", "stages.sftdata.max_tokens=200"])
    with pytest.raises(SynthsciError, match="no trajectory fits in 200 tokens"):
        run_sftdata(cfg)


def test_push_without_a_token_warns_and_keeps_going(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import datasets
    dd = datasets.DatasetDict({"train": to_hf_dataset([SFTExample(id="e", task_id="t", messages=[{"role": "user", "content": "x"}])])})
    with pytest.warns(UserWarning, match="no Hugging Face token"):
        assert push_dataset(dd, "me/data", "card") is False


def test_observation_cut_is_the_same_at_training_and_evaluation():
    """The SFT example made with an observation cut holds, before each assistant turn, exactly the messages the agent shows
    the student at that turn (synthsci.agent.history_view with the same settings), so their renderings match; a view
    without the cut (planted) does not. Fixture: the iris trajectory, whose observations run to 1066 characters."""
    from synthsci.agent import history_view
    from synthsci.sftdata import to_sft_example
    tok = student_tokenizer("local")
    t = read_jsonl(Trajectory, FIXTURES / "traj-iris-a.jsonl")[0]
    ex = to_sft_example(t, tok, max_observation_chars=300)
    whole = sft_messages(t)
    assert sum("characters cut ...]" in m["content"] for m in ex.messages) == 2 and len(ex.messages) == len(whole) - 1   # it ends on the last answer
    planted = 0
    for k, m in enumerate(ex.messages):
        if m["role"] != "assistant": continue
        shown = history_view(whole[:k], None, 300)                      # what the evaluation prompt holds at this turn
        assert shown == ex.messages[:k]
        assert render(tok, ex.messages, ex.tools).startswith(render(tok, shown, ex.tools))
        planted += history_view(whole[:k], None, None) != ex.messages[:k]
    assert planted >= 1                                                 # the check catches an evaluation that does not cut
    assert to_sft_example(t, tok, max_observation_chars=None).messages == whole[:-1]   # None: the whole observations (the ablation)
