"""The loop learns, in miniature: a few training steps of the real SmolLM2-135M-Instruct on a handful of expert
trajectories lower its format-error rate on a task it never saw. A small, fixed, deterministic case that can fail:
the base student answers these prompts without the MLGym format (a DISCUSSION and one fenced command), so a
student that learned nothing keeps an error rate of 1.0 here. The trajectories are hand-written fixtures
(tests/fixtures/trajectories); only their first turns are trained on, to keep the test to a few minutes on 2 cores."""
from pathlib import Path
import datasets
import pytest

from synthsci.agent import FormatError, parse_response
from synthsci.core import Trajectory, read_jsonl
from synthsci.filter import sft_messages
from synthsci.llm import LocalLLM
from synthsci.sftdata import to_hf_dataset, to_sft_example
from synthsci.student import resolve_student, student_tokenizer
from synthsci.train import TrainOptions, train_student

FIXTURES = Path(__file__).parent / "fixtures" / "trajectories"
TRAIN = ["traj-iris-a", "traj-diabetes-a"]   # tasks the student is trained on
HELD_OUT = ["traj-motions-a"]                # its prompts are only used to evaluate (BasicMotions never seen in training)


def format_errors(llm, prompts, max_tokens=48) -> float:
    "The share of first answers that are not one DISCUSSION and exactly one command (greedy decoding)."
    bad = 0
    for p in prompts:
        try: parse_response(llm.complete(p, max_tokens=max_tokens, temperature=0.0).text)
        except FormatError: bad += 1
    return bad / len(prompts)


@pytest.fixture(scope="module")
def trajs():
    return {t.id: t for p in sorted(FIXTURES.glob("traj-*.jsonl")) for t in read_jsonl(Trajectory, p)}


def test_a_few_steps_on_expert_trajectories_lower_the_format_error_rate(trajs, tmp_path):
    tok = student_tokenizer("local")
    # each training example: the task prompt and the expert's first answer (the turn the format is learned from)
    exs = [to_sft_example(trajs[k], tok, max_tokens=1100) for k in TRAIN]
    assert all(e is not None and e.messages[-1]["role"] == "assistant" for e in exs)
    dd = datasets.DatasetDict({"train": to_hf_dataset(exs)})
    held_out = [sft_messages(trajs[k])[:2] for k in HELD_OUT] + [sft_messages(trajs[k])[:2] for k in TRAIN]
    base = LocalLLM()
    before = format_errors(base, held_out)
    assert before == 1.0, f"the base student already answers in the format ({before:.0%}): this test could not fail"
    opts = TrainOptions(base_model=resolve_student("local"), max_length=1100, max_steps=4, learning_rate=2e-4, warmup=0,
                        batch_size=1, grad_accum=1, batching="padded", eval=False, save_steps=100)
    model = train_student(dd, tmp_path / "train", opts, seed=0, data_path="fixtures")
    after = format_errors(LocalLLM(model.path), held_out)
    assert after <= 1 / 3, f"format-error rate {before:.0%} -> {after:.0%}: training did not teach the format"
