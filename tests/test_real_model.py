"""A real model in every role: the pipeline (topics -> proposals -> grounding -> taskgen -> validate -> rollouts) with the real
SmolLM2-135M-Instruct as the teacher and the agent, behind `synthsci serve`'s OpenAI-compatible server, through the real
`openai` SDK.

SmolLM2 generates about 3-10 tokens a second on two CPU cores, too slow for every run: the server replays real answers
recorded in tests/fixtures/realserver/ (see its README). To record them again, with the model:

    rm -rf tests/fixtures/realserver/*.json
    SYNTHSCI_REALSERVER=record .venv/bin/python -m pytest tests/test_real_model.py --timeout=0 -x -s

A request that was never recorded is a 500 naming it, so a change to any prompt shows up here as a failing test
(record again). `test_live_server_answers_with_smollm2` always runs the model itself, briefly."""
import functools, json, os, re, shutil
from pathlib import Path
import pytest
from synthsci.core import DatasetCard, Proposal, Rejection, Run, Task, Topic, Trajectory, ValidationReport, read_jsonl
from synthsci.serve import ChatServer, Recordings

ROOT = Path(__file__).resolve().parent.parent
FIX = Path(__file__).parent / "fixtures" / "realserver"
TASK = Path(__file__).parent / "fixtures" / "tasks" / "diabetes"
MODE = os.environ.get("SYNTHSCI_REALSERVER", "replay")
SEEDS = (0, 1)
STAGES = ("topics", "proposals", "grounding", "taskgen", "validate", "rollouts")
FOLDERS = dict(topics="01_topics", proposals="02_proposals", grounding="03_grounded", taskgen="04_tasks", validate="05_validated", rollouts="06_rollouts")
RECORDS = dict(topics=Topic, proposals=Proposal, grounding=DatasetCard, taskgen=Task, validate=ValidationReport, rollouts=Trajectory)


VOLATILE_TEXT = [  # what differs from run to run or machine to machine in a prompt that asks the same: masked in the recording key
    (re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} +(\d\d:\d\d|\d{4})\b"), "<time>"),   # `ls -l` times
    (re.compile(r"/[^\s\"']*/(site|dist)-packages/"), "<packages>/"),                                  # tracebacks through installed packages
    (re.compile(r"/[^\s\"']*/lib/python3\.\d+/"), "<python>/"),                                       # and through the standard library
]


def steady(body: dict, runs: Path = None) -> dict:
    """A request with what changes from run to run and machine to machine masked, for its recording key: times, where Python is
    installed, and the runs folder (a generated task shows the agent its workspace where it lies on this machine)."""
    def mask(c):
        if not isinstance(c, str): return c
        if runs is not None: c = c.replace(str(Path(runs).resolve()), "<runs>")
        for pat, sub in VOLATILE_TEXT: c = pat.sub(sub, c)
        return c
    return {**body, "messages": [{**m, "content": mask(m.get("content"))} if isinstance(m, dict) else m for m in body.get("messages") or []]}


def overrides(url: str, runs: Path, seed: int) -> list[str]:
    "The settings of the recorded runs: a slow local teacher (one request at a time, long timeouts), few units, short answers."
    return [f"runs_dir={runs}", f"seed={seed}",
            f"teacher.spec=openai:smollm2@{url}", "teacher.cache=off", "teacher.timeout_s=1800", "teacher.max_concurrency=1",
            "teacher.params={max_tokens: 256, temperature: 0.7}",
            "stages.topics.n_topics=2", "stages.topics.areas=[tabular]", "stages.proposals.workers=1",
            "stages.taskgen.workers=1", "stages.validate.k=2", "stages.validate.workers=1", "stages.validate.timeout_s=60",
            "stages.rollouts.policy=llm", "stages.rollouts.n_per_task=1", "stages.rollouts.max_steps=3", "stages.rollouts.workers=1",
            "stages.rollouts.command_timeout_s=10", "stages.rollouts.training_timeout_s=30"]


def agent_task(runs: Path) -> Path:
    "A folder holding one hand-made task, for the agent when the pipeline validated none."
    d = runs / "agent_tasks"
    if not (d / "diabetes").exists(): shutil.copytree(TASK, d / "diabetes")
    return d


RUNS = {  # run -> the stages the offline scripted teacher plays (so that the later stages get work); SmolLM2 plays every other role
    "real": (),                                                        # SmolLM2 everywhere: the teacher of every stage and the agent
    "taskgen": ("topics", "proposals", "grounding"),                   # SmolLM2 writes the task code
    "validate": ("topics", "proposals", "grounding", "taskgen"),       # SmolLM2 fixes or rewrites buggy drafts (p_bug=1)
}


def run_pipeline(url: str, runs: Path, seed: int, name: str = "real") -> dict:
    "Every stage in order, as the user runs them (`synthsci <stage> CONFIG ...`); per command its exit status and the lines it said (not its progress bars)."
    import contextlib, io
    from synthsci.cli import main
    over, out = overrides(url, runs, seed) + [f"run_id={name}-s{seed}"], {}
    def command(stage: str, *extra) -> dict:
        err, scripted = io.StringIO(), ["teacher.spec=scripted", "stages.taskgen.p_bug=1.0"] if stage in RUNS[name] else []
        with contextlib.redirect_stderr(err): code = main([stage, str(ROOT / "configs" / "quickstart.yaml"), *over, *scripted, *extra])
        return dict(exit=code, said=[l for l in err.getvalue().splitlines() if l.startswith(("error:", "stage "))])
    for s in STAGES:
        out[s] = command(s)
        if out[s]["exit"] not in (0, 3): break   # 3: the stage ran every unit but kept none; the next stage then says so too
    if name == "real" and out.get("rollouts", {}).get("exit") != 0:   # the pipeline validated no task: the agent still gets one, the hand-made one
        out["rollouts (hand-made task)"] = command("rollouts", f"stages.rollouts.tasks_dir={agent_task(runs)}")
    return out


def funnel(run: Run) -> dict:
    "Units in and out of every stage, and the rejections by stage and kind."
    from synthsci.validate import task_funnel
    from synthsci.core import read_rejections
    f = task_funnel(run)
    trajs = run.read("06_rollouts", Trajectory)
    topics = {}
    for r in read_rejections(run, "01_topics"): topics[f"topics:{r.kind}"] = topics.get(f"topics:{r.kind}", 0) + 1
    return dict(topics=f["topics"], proposals=f["proposals"], grounded=f["grounded"], coded=f["coded"], validated=f["validated"], valid=f["valid"],
                rejections={**topics, **f["rejections"]}, failed_attempts=f["failed_attempts"], fixes=f["fixes"], rewrites=f["rewrites"],
                trajectories=len(trajs), exit_statuses=sorted(t.exit_status for t in trajs),
                format_errors=sum(t.model_stats.get("format_errors", 0) for t in trajs), agent_steps=sum(len(t.steps) for t in trajs))


@pytest.fixture(scope="module")
def recorded_runs(tmp_path_factory):
    "Every run of both seeds against the server (replaying, or recording with the real model); per run: the commands' outcomes, the run, the request keys."
    runs = Path(os.environ.get("SYNTHSCI_REALSERVER_RUNS") or tmp_path_factory.mktemp("realserver"))
    if MODE == "record": FIX.mkdir(parents=True, exist_ok=True)
    out = {}
    rec = Recordings(FIX, "record" if MODE == "record" else "replay", normalize=functools.partial(steady, runs=runs))
    with ChatServer(recordings=rec, log=print if MODE == "record" else None) as srv:   # recording: the real SmolLM2 answers
        for seed in SEEDS:
            for name in RUNS:
                n0, m0 = len(srv.keys), len(srv.misses)
                commands = run_pipeline(srv.base_url, runs, seed, name)
                out[f"{name}-s{seed}"] = dict(commands=commands, run=Run(f"{name}-s{seed}", runs), keys=set(srv.keys[n0:]), misses=srv.misses[m0:])
    if MODE == "record":
        from synthsci.cli import status
        summary = {k: dict(commands=o["commands"], funnel=funnel(o["run"]), requests=len(o["keys"]), status=status(o["run"].path).splitlines())
                   for k, o in out.items()}
        (FIX / "runs.json").write_text(json.dumps(summary, indent=1) + "\n")
    return out


def unit_outcomes(run: Run, name: str) -> dict:
    "unit id -> ('produced', records) or ('rejected', rejections) for every unit file of a stage."
    folder, out = run.path / FOLDERS[name], {}
    for f in sorted(folder.glob("*.jsonl")):
        recs = read_jsonl(RECORDS[name], f)
        rej = folder / "rejected" / f.name
        out[f.stem] = ("produced", recs) if recs else ("rejected", read_jsonl(Rejection, rej) if rej.exists() else [])
    return out


NAMES = [f"{name}-s{seed}" for seed in SEEDS for name in RUNS]


@pytest.mark.parametrize("run_name", NAMES)
def test_every_stage_ends_and_accounts_for_every_unit(recorded_runs, run_name):
    "No stage stalls or crashes: each ran to 'complete' with no failed unit, or its command stopped with one line naming the stage that kept nothing and its counts."
    r = recorded_runs[run_name]
    assert r["misses"] == [], f"requests never recorded: {r['misses']} (record again: see tests/fixtures/realserver/README.md)"
    run, commands = r["run"], r["commands"]
    ran = [s for s in STAGES if s in commands]
    for s in ran:
        c = commands[s]
        if c["exit"] in (0, 3):
            st = run.manifest["stages"][FOLDERS[s]]
            assert st["status"] == "complete" and st["errors"] == {} and st["units_done"] == st["units_total"], (s, st)
            if c["exit"] == 3:   # every unit rejected: the command says so, with the counts and where the answers are
                assert len(c["said"]) == 1 and re.search(r"^stage \w+ ran every unit but kept none \(0/[1-9]\d* kept/rejected\): the rejections and the answers are in ", c["said"][0]), c
        else:   # a weak teacher may leave a stage with nothing: the next stage says so, with the counts, never "run it first"
            assert c["exit"] == 2 and len(c["said"]) == 1, (s, c)
            assert re.search(r"^error: the \w+ stage ran \(complete\) but kept no [^:]+: (\d+) of \1 units done, 0 failed, [1-9]\d* rejected: ", c["said"][0]), c
            assert "run it first" not in c["said"][0]
            assert s == ran[-1]
    extra = commands.get("rollouts (hand-made task)")
    assert extra is None or extra["exit"] == 0, extra
    if run_name.startswith("real"):   # the agent ran, on the pipeline's tasks or the hand-made one
        assert run.manifest["stages"][FOLDERS["rollouts"]]["status"] == "complete"


@pytest.mark.parametrize("run_name", NAMES)
def test_every_unit_is_produced_or_rejected_with_its_reason(recorded_runs, run_name):
    run = recorded_runs[run_name]["run"]
    for s in ("topics", "proposals", "grounding", "taskgen"):
        if not (run.path / FOLDERS[s]).exists(): continue
        for unit, (kind, recs) in unit_outcomes(run, s).items():
            if kind == "rejected":
                assert recs, f"{s} unit {unit} produced nothing and has no rejection record"
                assert all(r.kind and r.reason for r in recs), recs
                assert all(r.answer for r in recs if r.kind == "malformed"), f"{s} unit {unit}: a malformed answer must be kept"
    for unit, (kind, reps) in unit_outcomes(run, "validate").items() if (run.path / FOLDERS["validate"]).exists() else []:
        assert kind == "produced" and len(reps) == 1, unit
        attempts = [json.loads(l) for l in (run.path / FOLDERS["validate"] / "attempts" / f"{unit}.jsonl").read_text().splitlines()]
        assert 1 <= len(attempts) == reps[0].attempts
        assert all(a["passed"] or (a["kind"] and a["reason"]) for a in attempts), attempts
        assert all(a["output"] for a in attempts if a["kind"] == "malformed"), "a malformed answer is kept with its attempt"
    trajs = run.read(FOLDERS["rollouts"], Trajectory)
    assert all(t.exit_status for t in trajs) and (trajs or not run_name.startswith("real"))
    for t in trajs:
        assert t.provenance["model"].startswith("openai:smollm2@") and t.model_stats["api_calls"] >= 1
        assert len(t.model_stats.get("rejected_answers", [])) == min(t.model_stats.get("format_errors", 0), 20)   # every refused answer kept


def test_the_replay_is_the_recorded_run(recorded_runs):
    "Replaying the recordings gives the funnel the recorded runs had, for every run and seed."
    summary = json.loads((FIX / "runs.json").read_text())
    assert sorted(summary) == sorted(NAMES)
    for name in NAMES:
        assert funnel(recorded_runs[name]["run"]) == summary[name]["funnel"], name
        # the recording was made before a stage that kept none of its units exited 3 (it exited 0): the same commands ran, one exits 3 now
        now, then = ({k: v["exit"] for k, v in r.items()} for r in (recorded_runs[name]["commands"], summary[name]["commands"]))
        assert now.keys() == then.keys() and all(now[k] == then[k] or (now[k], then[k]) == (3, 0) for k in now), (name, now, then)


def test_another_seed_makes_new_requests(recorded_runs):
    a, b = ({k for name in RUNS for k in recorded_runs[f"{name}-s{seed}"]["keys"]} for seed in SEEDS)
    assert a and b and a != b and len(b - a) >= len(b) // 2, (len(a), len(b), len(a & b))


def test_every_recording_was_used_and_is_small(recorded_runs):
    "No stale recordings lie about (a prompt changed: clear the folder and record again), and they stay small."
    files = [f for f in FIX.glob("*.json") if f.name != "runs.json"]
    assert {f.stem for f in files} == {k for r in recorded_runs.values() for k in r["keys"]}
    assert sum(f.stat().st_size for f in FIX.iterdir()) < 400_000
    for f in files:
        d = json.loads(f.read_text())
        assert d["key"] == f.stem and d["spec"] == "local:SmolLM2-135M-Instruct" and d["response"]["choices"][0]["message"]["role"] == "assistant"


def test_live_server_answers_with_smollm2():
    "The live path, with the model itself: the real SmolLM2 behind the server, through the openai SDK, a few tokens."
    from synthsci.llm import get_llm
    with ChatServer() as srv:
        llm = get_llm(f"openai:smollm2@{srv.base_url}", max_retries=0, timeout_s=300)
        a = llm.complete([{"role": "user", "content": "Name one tabular dataset."}], max_tokens=6, temperature=0, seed=0)
        b = llm.complete([{"role": "user", "content": "Name one tabular dataset."}], max_tokens=6, temperature=0, seed=0)
    assert a.text and a.text == b.text and a.usage.output_tokens <= 6 and a.finish_reason in ("stop", "length") and a.model == "smollm2"
    assert a.usage.input_tokens > 5 and len(srv.server_s) == 2


def test_prefix_cache_gives_the_same_tokens_as_plain_generate():
    """The real SmolLM2, greedy: a short multi-turn conversation answered with the prompt prefix's key/value cache reused is
    the same tokens as answered from scratch every turn, also after an earlier turn changes (as the agent's elision does)."""
    from synthsci.llm import LocalLLM
    plain, cached = LocalLLM(prefix_cache=False), LocalLLM()
    msgs = [{"role": "system", "content": "You are a terse ML researcher."}, {"role": "user", "content": "Name a baseline for tabular data."}]
    for turn in range(3):
        if turn == 2: msgs[3] = {**msgs[3], "content": "Old output omitted (1 lines)"}   # the shared prefix now ends earlier
        a, b = plain.complete(msgs, max_tokens=8), cached.complete(msgs, max_tokens=8)
        assert a.text == b.text and a.usage == b.usage, (turn, a.text, b.text)
        msgs += [{"role": "assistant", "content": a.text}, {"role": "user", "content": f"Observation {turn}: accuracy 0.8{turn}."}]
    assert plain._model is cached._model                                       # one copy of the weights per process
    assert plain.timing["reused_tokens"] == 0 and 0 < cached.timing["reused_tokens"] < cached.timing["prompt_tokens"]
