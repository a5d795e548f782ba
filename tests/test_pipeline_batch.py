"""A real pipeline whose teacher answers through a provider's batch interface: `synthsci serve --spec scripted` (the
offline teacher behind the providers' wire formats, batches included) in front of `synthsci run` topics -> proposals ->
grounding -> taskgen with `teacher.spec` an `openai:` or `anthropic:` model and `teacher.batch: true`, killed with
SIGKILL mid-stage while one of its batches is pending (batches of 2 requests, so some of the stage's units are
already finished), then resumed. Compared with the same pipeline with batch off,
through the same kind of server: the same units, rejections and task ids; the same requests, each answered once; the
same tokens at half the price."""
import json, os, re, signal, subprocess, sys, threading, time, urllib.request
from collections import Counter
from pathlib import Path
import pytest

pytestmark = pytest.mark.serial   # kills a run while a batch is pending: timing-sensitive, so it runs alone (pyproject.toml)
from synthsci.llm import BATCH_DISCOUNT, Usage, cost_usd
from synthsci.pipeline import kept_rejected

CLI = [sys.executable, "-m", "synthsci.cli"]
STAGES = {"topics": "01_topics", "proposals": "02_proposals", "grounding": "03_grounded", "taskgen": "04_tasks"}
SPECS = {"openai": "openai:gpt-4.1", "anthropic": "anthropic:claude-sonnet-4-6"}   # both priced, so that the discount shows
KILL_IN = {"openai": "grounding", "anthropic": "taskgen"}   # stages of more units than a batch holds (batch_size): some finish before the batch the others wait on
CONFIG = """run_id: {run_id}
runs_dir: {runs}
teacher: {{spec: "{spec}", cache: record, max_retries: 0, batch: {batch}, batch_size: 2}}
pipeline: [{stages}]
stages:
  topics: {{n_topics: 5, areas: [tabular]}}
  taskgen: {{workers: 2}}
"""


class Served:
    "`synthsci serve --spec scripted` on a free port, in its own process; every line it logs is kept (one per answer, one per batch created)."
    def __init__(self, batch_delay_s: float):
        self.proc = subprocess.Popen(CLI + ["serve", "--spec", "scripted", "--port", "0", "--p-bug", "0.5", "--batch-delay", str(batch_delay_s)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        m = re.search(r"at (http://127\.0\.0\.1:\d+)/v1 ", first)
        assert m, first + self.proc.stderr.read()
        self.url, self.lines = m[1], []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        self.reader.start()

    def env(self, provider: str) -> dict:
        "The environment of a run whose provider SDK talks to this server (as a user points it at a proxy); the spec stays the provider's."
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "SYNTHSCI_TEACHER"))}
        if provider == "openai": return {**env, "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": self.url + "/v1"}
        return {**env, "ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": self.url}

    def answered(self) -> list[str]: return [l.split()[1] for l in self.lines if l.startswith("200 ")]   # request keys (a hash of the body)
    def batches(self) -> list[str]: return [l.split()[1] for l in self.lines if l.startswith("batch ")]

    def status(self, provider: str, bid: str) -> str:
        path = f"/v1/batches/{bid}" if provider == "openai" else f"/v1/messages/batches/{bid}"
        b = json.load(urllib.request.urlopen(self.url + path, timeout=10))
        return b.get("status") or b["processing_status"]

    def close(self):
        "Stop the server, once every line it wrote has been read."
        self.proc.kill(); self.proc.wait(); self.reader.join(10)


class Pipeline:
    "`synthsci run` of the config in a folder of its own, in its own process group."
    def __init__(self, tmp: Path, name: str, provider: str, batch: bool, server: Served, stages=tuple(STAGES)):
        self.dir, self.server, self.provider = tmp / name, server, provider
        self.dir.mkdir()
        (self.dir / "c.yaml").write_text(CONFIG.format(run_id=name, runs=self.dir / "runs", spec=SPECS[provider], batch=str(batch).lower(),
                                                       stages=", ".join(stages)))
        self.run_dir, self.logs = self.dir / "runs" / name, []

    def start(self):
        self.logs.append(self.dir / f"run{len(self.logs)}.log")
        with open(self.logs[-1], "w") as log:
            self.proc = subprocess.Popen(CLI + ["run", "c.yaml"], cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.server.env(self.provider), start_new_session=True)
        return self

    def log(self) -> str: return "\n".join(p.read_text() for p in self.logs)

    def journal(self) -> dict:
        "batch id -> its journal entry (each batch the run sent, as the run noted it)."
        d = self.run_dir / "cache" / "llm" / "batches"
        return {e["id"]: e for e in (json.loads(p.read_text()) for p in sorted(d.glob("*.json")) if not p.name.endswith(".results.json"))}

    def finished_units(self) -> dict:
        "The units of the stage to kill that are written (kept or rejected): file name -> modification time."
        folder = self.run_dir / STAGES[KILL_IN[self.provider]]
        return {str(f.relative_to(folder)): f.stat().st_mtime_ns for f in [*folder.glob("*.jsonl"), *folder.glob("rejected/*.jsonl")]}

    def pending_batch(self):
        """The id of a batch sent and journaled while the stage to kill in runs, still without results, once some of the
        stage's units are finished (a batch after its first: a debugging round); else None."""
        if f"[synthsci] {KILL_IN[self.provider]}: " not in self.logs[-1].read_text() or not self.finished_units(): return None
        for bid, e in self.journal().items():
            if e["state"] == "sent": return bid
        return None

    def wait(self, timeout: float = 300):
        self.proc.wait(timeout=timeout)
        return self.proc.returncode


def funnel(run_dir: Path) -> dict:
    "Per stage: units done of total, kept and rejected, the ids of its units and of its rejections (with their kind); the task ids."
    m = json.loads((run_dir / "manifest.json").read_text())["stages"]
    out = {}
    for folder in STAGES.values():
        e, d = m[folder], run_dir / folder
        rej = {p.stem: sorted(json.loads(l)["kind"] for l in p.read_text().splitlines()) for p in sorted((d / "rejected").glob("*.jsonl"))}
        out[folder] = dict(status=e["status"], units=(e["units_done"], e["units_total"]), errors=e.get("errors"),
                           kept_rejected=kept_rejected(folder, e),
                           ids=sorted(p.stem for p in d.glob("*.jsonl")), rejected=rej)
    out["tasks"] = sorted(p.name for p in (run_dir / "04_tasks" / "tasks").iterdir() if not p.name.startswith("."))   # a dot: a folder being written
    return out


def ledger(run_dir: Path) -> dict:
    "Per stage: calls paid for (not answered from the cache), tokens in and out, cost."
    m = json.loads((run_dir / "manifest.json").read_text())["stages"]
    return {f: dict(paid=m[f]["calls"] - m[f]["cached_calls"], tokens=(m[f]["input_tokens"], m[f]["output_tokens"]), cost=m[f]["cost_usd"])
            for f in STAGES.values()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The reference run (batch off) and one batch run per provider, side by side (a batch run mostly waits); each batch
    run is SIGKILLed, process group and all, the moment a batch of its kill stage is sent and journaled, then resumed."""
    tmp = tmp_path_factory.mktemp("batch_pipeline")
    servers = {k: Served(batch_delay_s=2.0) for k in ("reference", *SPECS)}
    try:
        ref = Pipeline(tmp, "reference", "openai", False, servers["reference"]).start()
        batch = {p: Pipeline(tmp, f"batch-{p}", p, True, servers[p]) for p in SPECS}
        kills = {}
        for b in batch.values(): b.start()
        deadline = time.time() + 300
        while len(kills) < len(batch) and time.time() < deadline:
            for p, b in batch.items():
                if p in kills: continue
                assert b.proc.poll() is None, f"{p}: the run ended before a batch of {KILL_IN[p]} was pending:\n{b.log()[-3000:]}"
                if (bid := b.pending_batch()) is None: continue
                os.killpg(b.proc.pid, signal.SIGKILL); b.proc.wait()
                kills[p] = dict(batch=bid, server_status=servers[p].status(p, bid), answered=len(servers[p].answered()),
                                done=b.finished_units(),
                                status=json.loads((b.run_dir / "manifest.json").read_text())["stages"][STAGES[KILL_IN[p]]]["status"])
                b.start()                                                              # resume: the same command again
            time.sleep(0.05)
        assert len(kills) == len(batch), f"no pending batch to kill in {set(batch) - set(kills)} within 300 s"
        rcs = {"reference": ref.wait(), **{p: b.wait() for p, b in batch.items()}}
        for s in servers.values(): s.close()
        yield dict(ref=ref, batch=batch, kills=kills, rcs=rcs, servers=servers)
    finally:
        for s in servers.values(): s.close()


def test_the_runs_finish(runs):
    for name, rc in runs["rcs"].items():
        run = runs["ref"] if name == "reference" else runs["batch"][name]
        assert rc == 0, f"{name}:\n{run.log()[-4000:]}"
        assert all(f["status"] == "complete" and not f["errors"] for k, f in funnel(run.run_dir).items() if k != "tasks"), funnel(run.run_dir)


@pytest.mark.parametrize("provider", SPECS)
def test_the_funnel_is_the_one_without_batches(runs, provider):
    ref, b = funnel(runs["ref"].run_dir), funnel(runs["batch"][provider].run_dir)
    assert ref["tasks"] and sum(len(f["rejected"]) for k, f in ref.items() if k != "tasks")   # a funnel that keeps and rejects
    assert b == ref


@pytest.mark.parametrize("provider", SPECS)
def test_batches_were_sent_and_journaled(runs, provider):
    run, server = runs["batch"][provider], runs["servers"][provider]
    journal, sent = run.journal(), server.batches()
    assert not runs["servers"]["reference"].batches()                        # batch off: none
    assert len(sent) >= 3 and sorted(sent) == sorted(journal)                # every batch the server made was journaled by the run
    ids = [k for e in journal.values() for k in e["custom_ids"]]
    assert len(ids) == len(set(ids)) and {e["state"] for e in journal.values()} == {"done"}   # no request in two batches; all handed out
    assert "[synthsci] taskgen: complete" in run.log()


@pytest.mark.parametrize("provider", SPECS)
def test_each_request_answered_once_at_half_the_price(runs, provider):
    "The same calls as without batches (the same bodies, for OpenAI), each answered by the provider once, across the kill; the same tokens at half the price."
    ref_keys, keys = runs["servers"]["reference"].answered(), runs["servers"][provider].answered()
    assert max(Counter(keys).values()) == 1 and len(keys) == len(ref_keys)
    if provider == "openai": assert sorted(keys) == sorted(ref_keys)
    ref, b = ledger(runs["ref"].run_dir), ledger(runs["batch"][provider].run_dir)
    for stage in STAGES.values():
        assert (b[stage]["paid"], b[stage]["tokens"]) == (ref[stage]["paid"], ref[stage]["tokens"]), stage
        full = cost_usd(SPECS[provider], Usage(*b[stage]["tokens"]))
        assert full > 0 and b[stage]["cost"] == pytest.approx(full * (1 - BATCH_DISCOUNT), abs=2e-6), stage
        if provider == "openai": assert b[stage]["cost"] == pytest.approx(ref[stage]["cost"] / 2, abs=2e-6), stage
    assert BATCH_DISCOUNT == 0.5


@pytest.mark.parametrize("provider", SPECS)
def test_a_kill_mid_stage_with_a_pending_batch_resumes_without_sending_again(runs, provider):
    k, run, server = runs["kills"][provider], runs["batch"][provider], runs["servers"][provider]
    assert k["server_status"] in ("validating", "in_progress") and k["status"] == "running"   # killed mid-stage, its batch pending
    assert k["done"] and run.finished_units().items() >= k["done"].items()   # the units finished before the kill were not redone
    assert run.log().count(f"[synthsci] {KILL_IN[provider]}: complete") == 1 and len(run.logs) == 2
    assert server.batches().count(k["batch"]) == 1 and run.journal()[k["batch"]]["state"] == "done"   # the pending batch, collected by the resumed run
