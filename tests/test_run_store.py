"""The run store and stage runner under real failure: SIGKILL mid-stage, and a budget that runs out."""
import json, os, signal, subprocess, sys, textwrap, time, warnings
from pathlib import Path
import pytest
from synthsci.core import Ledger, Run, Topic, load_config, open_run, run_stage
from synthsci.llm import MeteredLLM, ScriptedLLM, Usage, Completion

STAGE_SCRIPT = textwrap.dedent("""
    import sys, time
    from synthsci.core import Run, Topic, run_stage
    run = Run("r", sys.argv[1])
    def square(x):
        time.sleep(0.04)
        return [Topic(id=f"t{x}", area="math", name=str(x * x)), Topic(id=f"t{x}b", area="math", name=str(-x))]
    run_stage(run, "01_topics", [(f"u{i:03d}", i) for i in range(60)], square, progress=False, workers=int(sys.argv[2]))
""")


def run_script(runs_dir, workers=2, kill_at=None):
    "Run the stage; with `kill_at`, SIGKILL it as soon as that many units are on disk."
    p = subprocess.Popen([sys.executable, "-c", STAGE_SCRIPT, str(runs_dir), str(workers)])
    if kill_at is None: assert p.wait(120) == 0; return
    d, t0 = Path(runs_dir) / "r" / "01_topics", time.time()
    while p.poll() is None and time.time() - t0 < 60:
        if d.exists() and len(list(d.glob("*.jsonl"))) >= kill_at: break
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL); p.wait()


def snapshot(runs_dir):
    d = Path(runs_dir) / "r" / "01_topics"
    return {p.name: p.read_text() for p in sorted(d.iterdir()) if not p.name.startswith(".")}


@pytest.mark.parametrize("workers", [1, 3])
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, workers):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    run_script(killed, workers, kill_at=10)
    partial = snapshot(killed)
    assert 0 < len(partial) < 60, f"the kill should land mid-stage ({len(partial)} units done)"
    run_script(killed, workers)
    run_script(clean, workers)
    assert snapshot(killed) == snapshot(clean)                        # exactly the units of an uninterrupted run
    records = Run("r", killed).read("01_topics", Topic)
    assert len(records) == 120 and len({r.id for r in records}) == 120  # nothing lost, nothing duplicated
    m = json.loads((killed / "r" / "manifest.json").read_text())["stages"]["01_topics"]
    assert (m["units_done"], m["units_total"], m["status"]) == (60, 60, "complete")


def test_budget_stops_the_stage_and_a_larger_budget_resumes(tmp_path):
    # a teacher priced like claude-sonnet-4-6 ($3 / $15 per 1M tokens), answering with 1000 output tokens a call
    answer = lambda m, **p: Completion(text="a topic", usage=Usage(1000, 1000))
    def stage(cfg):
        run, ledger = open_run(cfg)
        llm = MeteredLLM(ScriptedLLM(answer, name="anthropic:claude-sonnet-4-6"), ledger)
        fn = lambda i: [Topic(id=f"t{i}", area="a", name=llm.complete([{"role": "user", "content": "go"}]).text)]
        with warnings.catch_warnings(record=True):
            return run_stage(run, "01_topics", [(f"u{i}", i) for i in range(10)], fn, ledger=ledger, progress=False)
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "budget_usd=0.05"])   # $0.018 a call: 3 calls fit
    m = stage(cfg)
    assert m["status"].startswith("stopped: LLM budget of $0.05 spent"), m["status"]
    assert m["units_done"] == 3 and m["cost_usd"] == pytest.approx(3 * 0.018)
    on_disk = json.loads((tmp_path / "quickstart" / "manifest.json").read_text())["stages"]["01_topics"]
    assert on_disk["status"].startswith("stopped") and on_disk["units_done"] == 3
    m = stage(load_config(overrides=[f"runs_dir={tmp_path}", "budget_usd=1.0"]))
    assert (m["status"], m["units_done"], m["calls"]) == ("complete", 10, 10)
    assert m["cost_usd"] == pytest.approx(10 * 0.018)                 # the run's spend, across both invocations
