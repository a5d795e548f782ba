"""The agent-computer interface on a fixture task, in a real bwrap sandbox: file commands, timeouts, scoring, and
what the agent must not reach."""
import json, os, time
from pathlib import Path
import pandas as pd
import pytest
from synthsci.aci import ACI, load_task, prepare_workspace, parse_action, ACIError
from synthsci.core import SynthsciError
from synthsci.sandbox import SandboxLimits

FIX = Path(__file__).parent / "fixtures" / "tasks"


@pytest.fixture
def aci(tmp_path):
    a = ACI(load_task(FIX / "wine"), tmp_path / "ws", limits=SandboxLimits(timeout=120), window=20, command_timeout=2, training_timeout=60)
    yield a
    a.close()


def test_open_insert_goto_and_window(aci):
    o = aci.step("create notes.txt").observation
    assert o.startswith(f"[File: {aci.workspace}/notes.txt (0 lines total)]")
    assert "already exists" in aci.step("create notes.txt").observation
    o = aci.step("insert 0\n" + "\n".join(f"line {i}" for i in range(1, 51)) + "\nend_of_insert").observation
    assert "File updated" in o and "(50 lines total)" in o
    assert (aci.workspace / "notes.txt").read_text().splitlines()[49] == "line 50"
    o = aci.step("goto 45").observation.splitlines()
    assert o[1] == "(30 more lines above)" and o[2] == "31:line 31" and o[-1] == "50:line 50"
    o = aci.step("scroll_up").observation.splitlines()
    assert o[1] == "(12 more lines above)" and "(18 more lines below)" in o
    # a non-Python file is never linted
    assert "File updated" in aci.step("edit 1:2\ndef broken(:\nend_of_edit").observation
    assert (aci.workspace / "notes.txt").read_text().startswith("def broken(:\nline 3\n")


def test_python_edit_with_syntax_error_is_rejected_and_file_unchanged(aci):
    before = (aci.workspace / "baseline.py").read_text()
    aci.step('open "baseline.py"')
    o = aci.step("edit 8:8\nmodel = LogisticRegression(max_iter=\nend_of_edit").observation
    assert "NOT applied" in o and "SyntaxError" in o
    assert (aci.workspace / "baseline.py").read_text() == before
    assert "Usage: edit" in aci.step("edit 8\nx = 1\nend_of_edit").observation
    assert "end_of_edit" in aci.step("edit 8:8\nx = 1").observation


def test_search_commands(aci):
    o = aci.step("search_dir LogisticRegression").observation
    assert o.startswith('Found 1 matches for "LogisticRegression"') and "baseline.py (2 matches)" in o
    assert aci.step("search_dir nothing_like_this").observation.startswith("No matches found")
    assert aci.step("search_file read_csv baseline.py").observation.count("Line ") == 2
    assert "No file open" in aci.step("search_file x").observation


def test_timeouts_short_for_shell_long_for_python(aci):
    t = time.monotonic()
    o = aci.step("sleep 10").observation
    assert "TIMED OUT" in o and "MORE THAN 2 SECONDS" in o and time.monotonic() - t < 6
    assert aci.timeout_for("python train.py") == 60 and aci.timeout_for("cd x && python3 -c 1") == 60 and aci.timeout_for("ls") == 2
    assert aci.step("echo still here").observation == "still here"     # the session survived the timeout
    assert "not supported" in aci.step("python").observation


def test_file_commands_cannot_reach_outside_the_sandbox(aci, tmp_path):
    secret = tmp_path / "host_secret.txt"
    secret.write_text("TOP SECRET")
    os.symlink(secret, aci.workspace / "link.txt")
    o = aci.step('open "link.txt"').observation
    assert "TOP SECRET" not in o and "not found" in o
    assert "TOP SECRET" not in aci.step(f'open "{secret}"').observation
    aci.step("create x.txt")
    aci.step("edit 1:1\nhello\nend_of_edit")
    assert secret.read_text() == "TOP SECRET"


def test_validate_scores_validation_split_and_submit_the_test_split(aci):
    assert not list(aci.workspace.rglob("validation.csv")) and not list(aci.workspace.rglob("hidden"))
    assert "cannot access" in aci.step("ls /task/hidden").observation
    aci.step("python baseline.py")
    sub = pd.read_csv(aci.workspace / "submission.csv")
    acc = lambda split: round(float((pd.read_csv(FIX / "wine/hidden" / f"{split}.csv").merge(sub, on="id", suffixes=("", "_p"))
                                     .pipe(lambda m: m.cultivar == m.cultivar_p)).mean()), 4)
    assert acc("validation") != acc("test")
    assert aci.step("validate").score == {"accuracy": acc("validation")}
    # the agent rewrites the workspace's evaluator: scoring still uses the task's own
    (aci.workspace / "evaluate.py").write_text('print(\'{"accuracy": 1.0}\')\n')
    r = aci.step("submit")
    assert (r.done, r.exit_status, r.score) == (True, "submitted", {"accuracy": acc("test")})


def test_bad_submission_and_missing_submission(aci):
    assert aci.step("validate").score is None
    r = aci.step("submit")
    assert (r.exit_status, r.score) == ("submission_not_found (submit)", None)
    aci.step("echo 'id,label' > submission.csv")                      # a header and no rows: refused before the evaluator
    r = aci.step("validate")
    assert r.score is None and "not scored: empty" in r.observation and r.events[0]["reason"] == "empty" and not r.events[0]["integrity"]
    aci.step("printf 'id,wrong\\n' > submission.csv && tail -n +2 data/test.csv | cut -d, -f1 | sed 's/$/,1/' >> submission.csv")
    r = aci.step("submit")                                             # the evaluator's own refusal (its output shown)
    assert r.exit_status == "evaluation_format_error (submit)" and r.score is None and r.events[0]["reason"] == "columns", r


def test_task_folder_errors(tmp_path):
    with pytest.raises(SynthsciError, match="no task.yaml"): load_task(tmp_path)
    (tmp_path / "task.yaml").write_text("id: t\nname: x\n")
    with pytest.raises(SynthsciError, match="has no 'description'"): load_task(tmp_path)
    (tmp_path / "task.yaml").write_text("id: t\ndescription: d\nstarter_code: [hidden]\nsecret_files: [hidden]\n")
    (tmp_path / "hidden").mkdir()
    with pytest.raises(SynthsciError, match="holds secret files"): prepare_workspace(load_task(tmp_path), tmp_path / "ws")
    with pytest.raises(ACIError): parse_action("insert 3\nno end")


def test_workspace_path_presents_the_workspace_where_mlgym_puts_it(tmp_path):
    "An evaluator that opens /home/agent/workspace/... (as MLGym's House Price and Titanic do) scores; the agent works there too."
    import yaml
    task = tmp_path / "task"; (task / "data").mkdir(parents=True)
    (task / "data/answer.csv").write_text("id,y\n1,1\n2,0\n")
    (task / "sample_submission.csv").write_text("id,y\n1,0\n2,0\n")
    (task / "evaluate.py").write_text("import argparse, json, pandas as pd\np = argparse.ArgumentParser(); p.add_argument('--submission_file'); a = p.parse_args()\n"
                                      "t = pd.read_csv('/home/agent/workspace/data/answer.csv'); s = pd.read_csv(a.submission_file)\n"
                                      "m = t.merge(s, on='id', suffixes=('', '_p')); print(json.dumps({'accuracy': float((m.y == m.y_p).mean())}))\n")
    (task / "task.yaml").write_text(yaml.safe_dump(dict(id="abs", description="d", metric="accuracy", secret_files=[], workspace_path="/home/agent/workspace",
                                                        starter_code=["evaluate.py", "sample_submission.csv", "data"])))
    for p in [tmp_path, *tmp_path.rglob("*")]: p.chmod(0o755 if p.is_dir() else 0o644)
    a = ACI(load_task(task), tmp_path / "ws", limits=SandboxLimits(timeout=120))
    try:
        assert a.step("pwd").observation == "/home/agent/workspace" and a.cwd == "/home/agent/workspace"
        a.step("printf 'id,y\\n1,1\\n2,1\\n' > /home/agent/workspace/submission.csv")
        r = a.step("validate")
        assert r.score == {"accuracy": 0.5} and "/home/agent/workspace/submission.csv" in r.observation, r
        assert (tmp_path / "ws" / "submission.csv").read_text() == "id,y\n1,1\n2,1\n"   # the host folder is the workspace
    finally: a.close()


@pytest.mark.parametrize("text,message", [
    ("id: [broken\n", "is not valid YAML: "),                       # the parser's first line says where
    ("- id: t\n- description: d\n", "must hold a mapping of fields, not a list"),
    ("id: t\nname: T\n", "has no 'description'"),
])
def test_a_bad_task_yaml_is_one_line_naming_the_file(tmp_path, text, message):
    (tmp_path / "task.yaml").write_text(text)
    with pytest.raises(SynthsciError) as e: load_task(tmp_path)
    assert str(tmp_path / "task.yaml") in str(e.value) and message in str(e.value) and "\n" not in str(e.value)
