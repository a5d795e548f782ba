"""A killed run is clean: after SIGKILL of `synthsci run` (its process group, or only its main process) no kernel,
rollout worker or sandbox keeps running, and the resumed run does the unit that was in flight again, from scratch,
in a fresh workspace."""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest

from synthsci.core import Run, Trajectory

from conftest import two_tasks

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"


UNITS = ["diabetes-s0", "wine-s0"]   # the fixture tasks, one rollout each, one at a time


def _stat(pid: int):
    "The start time of `pid` (to tell it from a later process with the same id), or None when it is gone or a zombie."
    try: fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError: return None
    return None if fields[0] == "Z" else fields[19]


def descendants(root: int) -> dict[int, str]:
    "pid -> command line of every live descendant of `root`."
    parent, cmd = {}, {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit(): continue
        try:
            parent[int(d.name)] = int(Path(d, "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd[int(d.name)] = Path(d, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError): continue
    out, frontier = {}, [root]
    while frontier:
        p = frontier.pop()
        for c, pp in parent.items():
            if pp == p and c not in out: out[c] = cmd.get(c, ""); frontier.append(c)
    return out


def mentioning(marker: str) -> list[str]:
    "Live processes (not this one) whose command line, working folder or environment mention `marker`."
    found, me = [], os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me or _stat(int(d.name)) is None: continue
        texts = []
        for f in ("cmdline", "environ"):
            try: texts.append(Path(d, f).read_bytes())
            except OSError: pass
        try: texts.append(os.readlink(d / "cwd").encode())
        except OSError: pass
        if any(marker.encode() in t for t in texts):
            found.append(f"{d.name}: {texts[0].replace(bytes(1), b' ')[:200]!r}")
    return found


def in_flight(stage: Path) -> bool:
    "One unit finished and the next one under way: its trajectory has a step or more."
    done = {p.stem for p in stage.glob("*.jsonl")}
    if len(done) != 1: return False
    (other,) = set(UNITS) - done
    try: return len(json.loads((stage / "traj" / other / f"{other}.traj").read_text())["trajectory"]) >= 1
    except (OSError, ValueError, KeyError): return False


@pytest.mark.parametrize("kill", ["process_group", "main_process"])
def test_killed_run_leaves_nothing_running_and_resumes_from_scratch(tmp_path, kill):
    here, runs = tmp_path / "here", tmp_path / "runs"
    here.mkdir()
    (here / "tiny.yaml").write_text(
        f"run_id: k\nruns_dir: {runs}\nteacher: {{spec: scripted, cache: 'off'}}\npipeline: [rollouts]\n"
        f"stages:\n  rollouts: {{tasks_dir: {two_tasks(tmp_path)}, n_per_task: 1, workers: 1, policy: expert, backend: bwrap,\n"
        "             expert: {attempts: [1, 1], p_slow: 1, run_timeout_s: 15}}\n")   # a slow model: each rollout trains 15 s
    cmd = [sys.executable, "-m", "synthsci.cli", "run", "tiny.yaml"]
    with open(tmp_path / "first.log", "w") as log:
        p = subprocess.Popen(cmd, cwd=here, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stage = runs / "k" / "06_rollouts"
    deadline, seen = time.time() + 300, {}
    while time.time() < deadline and p.poll() is None:
        seen = descendants(p.pid)
        if in_flight(stage) and any(c.startswith("bwrap ") for c in seen.values()): break
        time.sleep(0.2)
    assert p.poll() is None, f"the run ended before it could be killed mid-way:\n{(tmp_path / 'first.log').read_text()[-3000:]}"
    assert in_flight(stage), f"no unit in flight after 300 s:\n{(tmp_path / 'first.log').read_text()[-3000:]}"
    assert any("from ipykernel import kernelapp" in c for c in seen.values()) and any(c.startswith("bwrap ") for c in seen.values()), seen
    seen = {pid: (c, _stat(pid)) for pid, c in descendants(p.pid).items()}
    done_before = {f.name: f.stat().st_mtime_ns for f in stage.glob("*.jsonl")}
    if kill == "process_group": os.killpg(p.pid, signal.SIGKILL)
    else: os.kill(p.pid, signal.SIGKILL)
    p.wait()

    deadline = time.time() + 8        # the kernel dies at once; the workers and sandboxes follow within a second or two
    while time.time() < deadline:
        alive = {pid: c for pid, (c, t0) in seen.items() if t0 is not None and _stat(pid) == t0}
        stray = mentioning(str(tmp_path))
        if not alive and not stray: break
        time.sleep(0.5)
    assert not alive, f"still running after SIGKILL of the {kill.replace('_', ' ')}: {alive}"
    assert not stray, f"processes about the killed run still running: {stray}"

    r = subprocess.run(cmd, cwd=here, capture_output=True, text=True, timeout=600)   # resume
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    after = {f.name: f.stat().st_mtime_ns for f in stage.glob("*.jsonl")}
    assert sorted(after) == sorted(f"{u}.jsonl" for u in UNITS)
    assert all(after[k] == v for k, v in done_before.items())                      # the finished unit was not redone
    run = Run("k", runs)
    trajs = {t.id: t for t in run.read("06_rollouts", Trajectory)}
    assert sorted(trajs) == UNITS                                                    # each unit once
    (resumed,) = set(UNITS) - {Path(k).stem for k in done_before}
    t = trajs[resumed]
    assert t.exit_status == "submitted", t.exit_status                               # not submission_not_found of a half-made workspace
    assert t.steps[0].action == "ls -a" and sum(s.action == "ls -a" for s in t.steps) == 1   # from the first step, once
    assert not [p.name for d in (stage / "traj", stage / "work") if d.exists() for p in d.iterdir() if ".stale-" in p.name]
    assert run.manifest["stages"]["06_rollouts"]["status"] == "complete"
    assert "[synthsci] rollouts: complete, " in r.stdout and "without encryption" not in r.stdout + r.stderr
