"""Attacks on the sandbox, one property at a time: each must fail to escape, with the specific outcome asserted."""
import contextlib, io, os, pickle, socket, subprocess, sys, tempfile, threading, time, uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import pytest
from synthsci.core import SynthsciError
from synthsci.sandbox import (BwrapSandbox, DockerSandbox, SandboxLimits, SubprocessSandbox, Sandbox,
                              docker_available, get_sandbox, sandbox_main)
from synthsci import sandbox as sandbox_mod
from synthsci.shell import ShellSession

pytestmark = pytest.mark.timeout(120)

@pytest.fixture
def ws(tmp_path):
    d = tmp_path / "ws"; d.mkdir(); return d

def box(ws, **kw): return BwrapSandbox(ws, SandboxLimits(**{"timeout": 20, **kw}))

def survivors(token):
    "Host processes whose command line holds `token`."
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try: cmd = (p / "cmdline").read_bytes()
            except OSError: continue
            if token.encode() in cmd: out.append(int(p.name))
    return out

# --- network ---------------------------------------------------------------------------------------------------
def test_network_loopback_server_on_host_unreachable(ws):
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
    port = srv.getsockname()[1]
    threading.Thread(target=lambda: srv.accept(), daemon=True).start()
    socket.create_connection(("127.0.0.1", port), timeout=2).close()   # reachable from the host itself
    code = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3)"
    r = box(ws).run(["python3", "-c", code])
    assert r.exit_code == 1 and "ConnectionRefusedError" in r.output, r
    srv.close()

def test_network_no_route_out(ws):
    r = box(ws).run(["python3", "-c", "import socket; socket.create_connection(('1.1.1.1', 53), timeout=3)"])
    assert r.exit_code == 1 and "Network is unreachable" in r.output, r
    r = box(ws).run("cat /sys/class/net/*/operstate 2>/dev/null; ls /sys/class/net 2>&1 || ip -o link 2>&1; python3 -c \"import socket; print(socket.if_nameindex())\"")
    assert "[(1, 'lo')]" in r.output, r

def test_dns_lookup_fails(ws):
    r = box(ws).run(["python3", "-c", "import socket; socket.getaddrinfo('example.com', 443)"])
    assert r.exit_code == 1 and "socket.gaierror" in r.output, r

# --- files ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["/usr/evil", "/etc/evil", "/evil", "{venv}/evil", "{outside}/evil"])
def test_write_outside_workspace(ws, tmp_path, target):
    outside = tmp_path / "outside"; outside.mkdir()
    target = target.format(venv=sys.prefix, outside=outside)
    r = box(ws).run(["sh", "-c", f"echo x > {target}"])
    assert r.exit_code != 0 and ("Read-only file system" in r.output or "No such file" in r.output or "Permission denied" in r.output
                                or "Directory nonexistent" in r.output), r
    assert not Path(target).exists()
    assert not list(outside.iterdir())

def test_tmp_is_private(ws):
    name = f"/tmp/synthsci-attack-{uuid.uuid4().hex}"
    assert box(ws).run(f"echo x > {name} && cat {name}").output == "x\n"
    assert not Path(name).exists()

def test_host_environment_not_visible(ws, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-from-host"); monkeypatch.setenv("HF_TOKEN", "hf_secret")
    r = box(ws).run(["sh", "-c", "env; cat /proc/1/environ /proc/*/environ 2>/dev/null | tr '\\0' '\\n'"])
    assert r.ok and "PATH=" in r.output
    assert "sk-secret-from-host" not in r.output and "hf_secret" not in r.output

def test_home_directory_not_visible(ws):
    home = Path.home()
    made = None
    if not any(p.is_file() for p in home.iterdir()):
        made = home / f".synthsci-test-{uuid.uuid4().hex}"; made.write_text("secret")
    try:
        files = [p for p in home.iterdir() if p.is_file()]
        r = box(ws).run(["sh", "-c", " ".join(f"cat '{p}';" for p in files[:20]) + f" ls -A {home}"])
        assert "No such file" in r.output or files == [], r
        visible = set(r.output.split())
        # only the folders on the way to the Python interpreter may show in the home folder
        assert visible.isdisjoint({p.name for p in files}), visible
    finally:
        if made: made.unlink()

def test_etc_secrets_hidden(ws):
    r = box(ws).run("cat /etc/shadow; echo; ls -A /etc/ssh")
    assert "root:" not in r.output, r

# --- processes and limits ------------------------------------------------------------------------------------------
def test_fork_bomb(ws):
    token = f"bomb{uuid.uuid4().hex[:8]}"
    r = box(ws, max_procs=64, timeout=30).run(["bash", "-c", f"{token}() {{ {token} | {token} & }}; {token}; sleep 25"])
    assert r.killed_by == "pids" and not r.ok and r.duration_s < 25, r
    time.sleep(0.2)
    assert survivors(token) == []

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="the root path: commands run as an unprivileged user")

@root_only
def test_root_runs_commands_unprivileged(ws):
    (ws / "given.txt").write_text("from root\n")                 # root's file, there before the sandbox was made
    sb = box(ws)
    r = sb.run("id -u; cat /proc/self/status | grep CapEff; echo more >> given.txt; mkdir -p out; echo x > out/made.txt")
    uid = sb.user[0]
    assert r.ok and r.output.split()[0] != "0" and "0000000000000000" in r.output, r
    assert (ws / "given.txt").read_text() == "from root\nmore\n"
    made = ws / "out" / "made.txt"
    assert made.stat().st_uid == uid and made.read_text() == "x\n"   # root reads what the command wrote...
    later = ws / "later.txt"; later.write_text("later\n")            # ...and a file root adds later is the command's
    assert "Permission denied" in sb.run("echo y >> later.txt").output   # once handed over:
    sb.chown_workspace(); assert sb.run("echo y >> later.txt").ok and later.read_text() == "later\ny\n"
    import shutil; shutil.rmtree(ws / "out"); assert not made.parent.exists()   # and deletes it

@root_only
def test_root_sandboxes_do_not_share_the_process_limit(ws, tmp_path):
    other = tmp_path / "other"; other.mkdir()
    holder = box(ws, max_procs=64).spawn("for i in $(seq 40); do sleep 20 & done; echo held; wait")
    try:
        assert holder.popen.stdout.readline() == b"held\n"
        r = box(other, max_procs=64).run("for i in $(seq 40); do sleep 0.2 & done; wait; echo ok")
        assert r.ok and r.output == "ok\n", r    # as the same uid, but in a user namespace of its own
    finally:
        holder.close()

@root_only
def test_root_unreadable_bind_is_one_line_error(ws, tmp_path):
    private = tmp_path / "private"; private.mkdir(mode=0o700)
    with pytest.raises(SynthsciError, match=r"not readable by the sandbox user.*chmod -R o\+rX") as e:
        BwrapSandbox(ws, ro_binds={private: "/data"})
    assert "\n" not in str(e.value)

def test_memory_bomb(ws):
    r = box(ws, memory_bytes=512 << 20).run(["python3", "-c", "a = []\nwhile True: a.append(bytearray(50 << 20))"])
    assert r.killed_by == "memory" and r.exit_code == 1 and "MemoryError" in r.output, r

def test_infinite_loop_cpu_limit(ws):
    r = box(ws, cpu_s=1).run(["python3", "-c", "while True: pass"])
    assert (r.killed_by, r.exit_code, r.timed_out) == ("cpu", 152, False), r
    assert r.duration_s < 10

def test_infinite_loop_wall_timeout(ws):
    t = time.monotonic()
    r = box(ws).run(["sh", "-c", "while :; do sleep 0.01; done"], timeout=1)
    assert (r.killed_by, r.timed_out, r.exit_code) == ("timeout", True, 137), r
    assert time.monotonic() - t < 3

def test_output_flood(ws):
    r = box(ws, output_bytes=1000, max_output_bytes=2_000_000).run(["yes", "flood"])
    assert r.killed_by == "output" and not r.ok, r
    assert "[... output truncated:" in r.output and len(r.output) < 1200

def test_output_cap_exact(ws):
    r = box(ws, output_bytes=20).run(["python3", "-c", "print('a' * 100, end='')"])
    assert r.ok and r.output == "a" * 10 + "\n[... output truncated: 80 bytes omitted ...]\n" + "a" * 10

@pytest.mark.parametrize("how", ["setsid", "double_fork", "nohup"])
def test_detached_process_does_not_survive(ws, how):
    token = f"{how}{uuid.uuid4().hex[:8]}"
    sleeper = f"python3 -c 'import time; time.sleep(300)' {token}"
    cmd = {"setsid": f"setsid {sleeper} > /dev/null 2>&1 &",
           "double_fork": f"( ( {sleeper} > /dev/null 2>&1 & ) & )",
           "nohup": f"nohup {sleeper} > /dev/null 2>&1 &"}[how]
    r = box(ws).run(["bash", "-c", cmd + f"\nsleep 0.5; pgrep -f {token} > /dev/null && echo started"])
    assert r.ok and "started" in r.output, r
    time.sleep(0.3)
    assert survivors(token) == []

def test_detached_process_killed_on_timeout(ws):
    token = f"hang{uuid.uuid4().hex[:8]}"
    r = box(ws).run(["bash", "-c", f"setsid python3 -c 'import time; time.sleep(300)' {token} & sleep 300"], timeout=1)
    assert r.timed_out
    time.sleep(0.3)
    assert survivors(token) == []

def test_file_size_limit(ws):
    sb = box(ws, max_file_bytes=100_000)
    r = sb.run(["python3", "-c", "open('big', 'wb').write(b'0' * 1_000_000)"])
    assert r.killed_by == "file_size" and "File too large" in r.output, r
    r = sb.run(["sh", "-c", "head -c 1000000 /dev/zero > big2"])
    assert (r.killed_by, r.exit_code) == ("file_size", 153), r
    assert (ws / "big").stat().st_size <= 100_000 and (ws / "big2").stat().st_size <= 100_000

# --- totals for the whole sandbox (cgroups), /tmp and the workspace ---------------------------------------------------
_cgroup = sandbox_mod._cgroup_backend()
cgroups = pytest.mark.skipif(_cgroup is None, reason="no usable cgroup here (needs root and a writable cgroup v2 with the "
                                                     "memory and pids controllers, or v1 memory and pids hierarchies)")

@cgroups
def test_memory_total_across_processes(ws):
    hog = "python3 -c 'import time; a = b\"x\" * (200 << 20); time.sleep(1)'"   # 200 MB each, really touched
    cmd = f"set -e; for i in 1 2 3; do {hog} & p=\"$p $!\"; done; for i in $p; do wait $i; done; echo all done"
    per_process = dict(memory_bytes=400 << 20, timeout=60)                       # each one fits its own limit...
    r = box(ws, **per_process, total_memory_bytes=None).run(cmd)
    assert r.ok and r.output == "all done\n", r
    r = box(ws, **per_process, total_memory_bytes=450 << 20).run(cmd)            # ...but 600 MB do not fit 450 MB
    assert (r.killed_by, r.exit_code) == ("memory", 137) and "all done" not in r.output and "MemoryError" not in r.output, r

@cgroups
def test_fork_bomb_stopped_by_the_total(ws):
    token = f"bomb{uuid.uuid4().hex[:8]}"
    sb = box(ws, max_procs=None, total_procs=64, timeout=30)                     # no RLIMIT_NPROC: only the pids cgroup
    assert "--nproc" not in " ".join(sb.argv(["true"]))
    r = sb.run(["bash", "-c", f"{token}() {{ {token} | {token} & }}; {token}; sleep 25"])
    assert r.killed_by == "pids" and not r.ok and r.duration_s < 25, r
    time.sleep(0.2)
    assert survivors(token) == []

def test_session_background_job_dies_on_close(ws):
    token = f"bg{uuid.uuid4().hex[:8]}"
    sh = ShellSession(box(ws))
    r = sh.run(f"(exec -a sleep-{token} sleep 1000) & (setsid bash -c 'exec -a sleep-{token} sleep 1000' &); "
               f"sleep 0.3; pgrep -f sleep-{token} | wc -l")
    assert r.ok and r.output.strip() == "2", r
    assert len(survivors(f"sleep-{token}")) == 2                                  # visible from the host while it runs
    cg = sh.proc.cgroup
    sh.close()
    time.sleep(0.2)
    assert survivors(f"sleep-{token}") == []
    if _cgroup: assert cg is not None and not any(os.path.exists(d) for d in cg.dirs)   # and its cgroup is gone

def test_tmp_size_limit(ws):
    r = box(ws, tmp_bytes=1 << 20).run("head -c 3000000 /dev/zero > /tmp/big; echo status $?; du -k /tmp/big")
    assert "No space left on device" in r.output and "status 1" in r.output, r
    assert int(r.output.split()[-2]) <= 1024, r

def test_workspace_size_reported(ws):
    sb = box(ws, workspace_bytes=1 << 20)
    assert sb.run("head -c 500000 /dev/zero > a").ok
    r = sb.run("head -c 2000000 /dev/zero > b")
    assert (r.exit_code, r.killed_by) == (0, "disk") and "workspace over its size limit" in r.output, r
    with ShellSession(sb) as sh:
        r = sh.run("ls")
        assert r.killed_by == "disk" and r.output.startswith("a\nb\n"), r
        assert sh.run("rm b").ok and sh.run("ls").output == "a\n"               # deleting goes back under the cap
    assert sb.run("cat b", evaluator=True).killed_by is None

@root_only
def test_unprivileged_caller_finds_no_cgroup():
    code = ("import warnings; warnings.simplefilter('always')\n"
            "from synthsci.sandbox import BwrapSandbox, SandboxLimits, _cgroup_backend\n"
            "with warnings.catch_warnings(record=True) as w: sb = BwrapSandbox('/tmp', SandboxLimits(timeout=20))\n"
            "print(_cgroup_backend(), sb.cgroup, sb._new_cgroup(), any('no cgroup can be made' in str(x.message) for x in w))")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                       capture_output=True, text=True, env=env, cwd="/tmp", timeout=60)
    assert p.stdout.strip() == "None None None True", p          # no write access to cgroupfs: none, said once, no error

def test_runs_without_a_cgroup(ws, monkeypatch):
    monkeypatch.setattr(sandbox_mod, "_cgroup_backend", lambda: None)
    monkeypatch.setattr(sandbox_mod, "_warned_no_cgroup", False)
    with pytest.warns(RuntimeWarning, match="no cgroup can be made.*limited per process only"): sb = box(ws)
    assert sb.cgroup is None
    proc = sb.spawn("echo ok; sleep 5")
    try:
        assert proc.popen.stdout.readline() == b"ok\n"                      # it runs, under the per-process limits only,
        assert "synthsci-" not in Path(f"/proc/{proc.popen.pid}/cgroup").read_text() and proc.cgroup is None   # in no cgroup of ours
    finally:
        proc.close()

@cgroups
def test_each_command_has_its_own_cgroup(ws):
    sb = box(ws)
    a, b = sb.spawn("echo up; sleep 5"), sb.spawn("echo up; sleep 5")
    dirs = [a.cgroup.dirs, b.cgroup.dirs]
    try:
        assert a.popen.stdout.readline() == b.popen.stdout.readline() == b"up\n"
        seen = [Path(f"/proc/{p.popen.pid}/cgroup").read_text() for p in (a, b)]
        for ds, cg in zip(dirs, seen):   # every hierarchy (v1: memory and pids) names the command's own cgroup
            assert all(f"/{os.path.basename(d)}\n" in cg for d in ds) and len(set(map(os.path.basename, ds))) == 1, (ds, cg)
        assert seen[0] != seen[1]
    finally:
        a.close(); b.close()
    assert not any(os.path.exists(d) for ds in dirs for d in ds)         # removed at close

@root_only
def test_cli_leaves_the_callers_files_as_they_were(ws, tmp_path):
    outside = tmp_path / "outside.txt"; outside.write_text("outside\n"); outside.chmod(0o640)
    (ws / "sub").mkdir(); (ws / "sub").chmod(0o750)
    (ws / "sub" / "f.txt").write_text("f\n"); (ws / "sub" / "f.txt").chmod(0o600)
    (ws / "theirs.txt").write_text("t\n"); os.chown(ws / "theirs.txt", 1234, 5678); (ws / "theirs.txt").chmod(0o604)
    os.symlink(outside, ws / "link")
    ws.chmod(0o711)
    look = lambda: {p: (s.st_uid, s.st_gid, oct(s.st_mode)) for p in [ws, *ws.rglob("*")] for s in [p.lstat()]}
    was, target = look(), outside.stat()
    assert {v[0] for v in was.values()} == {0, 1234}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = sandbox_main(["--workspace", str(ws), "--", "sh", "-c", "id -u; touch new; echo more >> sub/f.txt; chmod 777 sub"])
    assert code == 0 and out.getvalue().strip() != "0", out.getvalue()           # it ran, and not as root
    now = look()
    assert {p: now[p] for p in was} == was                                       # owners, groups and modes as they were
    assert now[ws / "new"][:2] == (0, 0) and (ws / "sub" / "f.txt").read_text() == "f\nmore\n"
    after = outside.stat()
    assert (after.st_uid, after.st_gid, after.st_mode, after.st_ctime_ns) == (target.st_uid, target.st_gid, target.st_mode, target.st_ctime_ns)

@root_only
def test_cli_gives_no_setuid_bit_to_a_file_the_command_changed(ws):
    for n in ("kept", "changed"): (ws / n).write_text("#!/bin/sh\n"); (ws / n).chmod(0o4755)   # root's setuid programs
    with contextlib.redirect_stdout(io.StringIO()):
        assert sandbox_main(["--workspace", str(ws), "--", "sh", "-c", "echo 'id > /tmp/owned' >> changed"]) == 0
    assert (ws / "changed").read_text().endswith("id > /tmp/owned\n")
    assert [(ws / n).stat().st_uid for n in ("kept", "changed")] == [0, 0]
    assert oct((ws / "kept").stat().st_mode) == "0o104755" and oct((ws / "changed").stat().st_mode) == "0o100755"

# --- inputs, evaluator, gpus ---------------------------------------------------------------------------------------
def test_hidden_files_only_in_evaluator_runs(ws, tmp_path):
    hidden = tmp_path / "labels"; hidden.mkdir(); (hidden / "y.csv").write_text("1,0,1\n")
    data = tmp_path / "data"; data.mkdir(); (data / "x.csv").write_text("x\n")
    sb = BwrapSandbox(ws, ro_binds={data: "/data"}, hidden={hidden: "/home/eval/labels"})
    assert sb.run("cat /data/x.csv").output == "x\n"
    assert "No such file" in sb.run("cat /data/x.csv > /dev/null; echo x >> /data/x.csv; cat /home/eval/labels/y.csv").output
    r = sb.run("cat /home/eval/labels/y.csv && cp /home/eval/labels/y.csv stolen.csv", evaluator=True)
    assert r.output.startswith("1,0,1\n") and "Read-only file system" in r.output and not (ws / "stolen.csv").exists()
    with ShellSession(sb) as sh:
        assert "No such file" in sh.run("ls /home/eval/labels").output

def test_gpu_option_binds_devices(ws):
    a = " ".join(BwrapSandbox(ws, gpus=True).argv(["nvidia-smi"]))
    assert "--dev-bind-try /dev/nvidiactl /dev/nvidiactl" in a and "--as=" not in a
    assert "--dev-bind-try /dev/nvidiactl" not in " ".join(BwrapSandbox(ws).argv(["true"]))

def test_network_opt_in(ws):
    assert "--share-net" in BwrapSandbox(ws, network=True).argv(["true"])
    assert "--share-net" not in BwrapSandbox(ws).argv(["true"])

# --- docker ----------------------------------------------------------------------------------------------------------
_docker_ok, _docker_why = docker_available()

@pytest.mark.skipif(not _docker_ok, reason=f"docker: {_docker_why}")
def test_docker_runs_isolated(ws):
    sb = get_sandbox("docker", ws, limits=SandboxLimits(timeout=60))
    r = sb.run(["python", "-c", "import socket; socket.create_connection(('1.1.1.1', 53), timeout=3)"])
    assert r.exit_code == 1 and "unreachable" in r.output.lower(), r
    assert sb.run("sleep 30", timeout=1).killed_by == "timeout"

def test_docker_without_daemon_is_one_line_error(ws):
    if _docker_ok: pytest.skip("a Docker daemon is reachable here")
    with pytest.raises(SynthsciError, match="docker backend: .*use --backend bwrap") as e: get_sandbox("docker", ws)
    assert "\n" not in str(e.value)

# --- bad input ---------------------------------------------------------------------------------------------------------
def test_missing_bwrap(ws, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SynthsciError, match="apt-get install bubblewrap") as e: get_sandbox(None, ws)
    assert "--backend subprocess" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SynthsciError, match="apt-get install bubblewrap"): BwrapSandbox(ws).run("true")

@pytest.mark.parametrize("cmd,msg", [([], "empty command"), ("   ", "empty command"), (["echo", "a\0b"], "NUL byte"),
                                     (["echo", "\udcff"], "not valid UTF-8"), ("echo \udcff", "not valid UTF-8")])
def test_bad_commands(ws, cmd, msg):
    with pytest.raises(SynthsciError, match=msg): box(ws).run(cmd)

def test_bad_workspace_and_backend(tmp_path):
    with pytest.raises(SynthsciError, match="does not exist"): get_sandbox("bwrap", tmp_path / "missing")
    with pytest.raises(SynthsciError, match="pick one of bwrap, docker, subprocess"): get_sandbox("chroot", tmp_path)

def test_subprocess_backend_warns(ws):
    with pytest.warns(RuntimeWarning, match="isolates nothing"): sb = get_sandbox("subprocess", ws)
    assert sb.run("echo $OPENAI_API_KEY; pwd").output == f"\n{ws.resolve()}\n"

# --- processes: pickling, workers --------------------------------------------------------------------------------------
def _work(sb): return sb.run(["python3", "-c", "print(6 * 7)"]).output, get_sandbox("bwrap", sb.workspace).run("echo made").output

def test_sandbox_in_worker_processes(ws):
    sb = box(ws)
    assert isinstance(pickle.loads(pickle.dumps(sb)), Sandbox)
    with ProcessPoolExecutor(2) as pool: out = list(pool.map(_work, [sb] * 3))
    assert out == [("42\n", "made\n")] * 3

# --- shell sessions ----------------------------------------------------------------------------------------------------
def test_session_state_and_timeout(ws):
    with ShellSession(box(ws)) as sh:
        sh.run("mkdir -p a/b; sleep 120 &")
        sh.run("cd a/b; export K=v")
        assert sh.run("echo $K; pwd").output == f"v\n{ws.resolve()}/a/b\n"
        r = sh.run("python3 -c 'import time; time.sleep(60)' & sleep 60", timeout=0.5)
        assert (r.timed_out, r.killed_by, r.exit_code) == (True, "timeout", 137), r
        out = sh.run("echo $K; pwd").output   # bash may first report the killed job ("... Killed ...")
        assert [l for l in out.splitlines() if "Killed" not in l] == ["v", f"{ws.resolve()}/a/b"], out  # nothing was lost
        assert "session restarted" not in r.output
        r = sh.run("exit 3")
        assert r.exit_code == 3 and "session restarted" in r.output and sh.run("pwd").output == f"{ws.resolve()}/a/b\n"

def test_session_output_flood_and_round_trip(ws):
    with ShellSession(box(ws, output_bytes=500, max_output_bytes=1_000_000)) as sh:
        r = sh.run("yes")
        assert r.killed_by == "output" and "output truncated" in r.output and len(r.output) < 700, r
        assert sh.run("echo still here").output == "still here\n"
        times = []
        for _ in range(50):
            t = time.perf_counter(); sh.run("true"); times.append(time.perf_counter() - t)
        assert sorted(times)[25] < 0.05   # generous: the benchmark measures the real figure

# --- command line ----------------------------------------------------------------------------------------------------
def test_cli_module(ws):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    run = lambda *a: subprocess.run([sys.executable, "-m", "synthsci.sandbox", "--workspace", str(ws), *a], capture_output=True, text=True, env=env)
    r = run("--", "sh", "-c", "echo out; exit 5")
    assert (r.returncode, r.stdout) == (5, "out\n")
    r = run("--timeout", "0.5", "--", "sleep", "10")
    assert r.returncode == 124 and "killed by the timeout limit" in r.stderr
    r = run("--", "python3", "-c", "import os; os.kill(os.getpid(), 24)")
    assert r.returncode == 137 and "killed by the cpu limit" in r.stderr
    assert sandbox_main(["--backend", "nope", "--workspace", str(ws), "--", "true"]) == 2
