"""The command line and the papermill pipeline, run as a user runs them."""
import json, subprocess, sys
from pathlib import Path
import nbformat
import pytest
from synthsci.core import SynthsciError
from synthsci.pipeline import run_pipeline

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "synthsci.cli"]


def cli(*args, cwd=ROOT):
    return subprocess.run(CLI + list(args), cwd=cwd, capture_output=True, text=True, timeout=300)


def test_help_lists_every_stage():
    r = cli("--help")
    assert r.returncode == 0
    for stage in ["topics", "proposals", "grounding", "taskgen", "validate", "rollouts", "filter", "sftdata", "train", "evaluate", "aup", "figures"]:
        assert f"\n  {stage} " in r.stdout


def test_import_stays_light():
    code = ("import sys, synthsci, synthsci.core, synthsci.llm, synthsci.cli, synthsci.pipeline;"
            "print(sorted(m for m in ('torch','transformers','datasets','trl','matplotlib','anthropic','openai','pandas','papermill') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


@pytest.mark.parametrize("yaml_text,expected", [
    ("seed: abc\n", "config field 'seed' expects int, got 'abc'"),
    ("teacher:\n  cache: sometimes\n", "config field 'teacher.cache' expects 'off' or 'record' or 'replay'"),
    ("budget: 3\n", "unknown config field 'budget'"),
    ("- a\n- b\n", "must hold a mapping"),
])
def test_malformed_config_is_one_line(tmp_path, yaml_text, expected):
    (tmp_path / "c.yaml").write_text(yaml_text)
    r = cli("topics", str(tmp_path / "c.yaml"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and expected in r.stderr, r.stderr


def test_unknown_spec_and_missing_key_are_one_line():
    r = cli("llm", "--spec", "claude", "hi")
    assert r.returncode == 2 and "use one of anthropic:<model>" in r.stderr and r.stderr.count("\n") == 1
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENAI_API_KEY"}
    r = subprocess.run(CLI + ["llm", "--spec", "openai:gpt-5", "hi"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "set OPENAI_API_KEY" in r.stderr


def _run_notebook(path: Path, body: str):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('config = "configs/quickstart.yaml"\noverrides = []')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# a stage"), params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    nbformat.write(nb, path)


def test_pipeline_runs_stage_notebooks_through_papermill(tmp_path, capsys, monkeypatch):
    "Hand-written run notebooks: parameters injected, the kernel is this Python in the user's folder, the terminal shows signs of life."
    nbs = tmp_path / "runs"; nbs.mkdir()
    _run_notebook(nbs / "10_topics.ipynb", (
        "import os, sys\nfrom synthsci.core import *\ncfg = load_config(config, overrides)\nrun, ledger = open_run(cfg)\n"
        "print('kernel', sys.executable, os.getcwd())\nimport warnings; warnings.warn('a warning the user should see')\n"
        "run_stage(run, '01_topics', [(f'u{i}', i) for i in range(3)], lambda i: [Topic(id=f't{i}', area='a', name=f'seed {cfg.seed}')])"))
    _run_notebook(nbs / "12_proposals.ipynb", "raise ValueError('the teacher said nothing useful')")
    (tmp_path / "c.yaml").write_text("run_id: nbrun\nruns_dir: runs_out\npipeline: [topics]\n")   # relative: to the current folder
    monkeypatch.chdir(tmp_path)
    run_dir = run_pipeline("c.yaml", ["seed=7"], nbs_dir=nbs)
    assert run_dir.resolve() == (tmp_path / "runs_out" / "nbrun").resolve()
    executed = nbformat.read(run_dir / "notebooks" / "10_topics.ipynb", 4)
    assert any("overrides = [\"seed=7\"]" in c.source for c in executed.cells)           # papermill injected the parameters
    assert json.loads((run_dir / "01_topics" / "u2.jsonl").read_text())["name"] == "seed 7"
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["stages"]["01_topics"]["units_done"] == 3 and m["config"]["seed"] == 7
    out = capsys.readouterr().out
    assert f"  topics | kernel {sys.executable} {tmp_path}" in out                           # this Python, in the user's folder
    assert "a warning the user should see" in out and "[synthsci] topics: complete, " in out and "; 3/3 units, 0 errors;" in out
    assert "without encryption" not in out and "%|" not in out                              # no kernel noise, no progress bars
    assert (run_dir / "notebooks" / "10_topics.log").exists()                                # the kernel's own messages
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["config_file"] == "c.yaml" and s["overrides"] == ["seed=7"] and s["invocations"] == 1
    assert s["stages"]["topics"]["units_done"] == 3 and s["machine"]["cpu_count"] and s["wall_s"]["pipeline"] > 0
    with pytest.raises(SynthsciError, match=r"stage proposals failed: ValueError: the teacher said nothing useful") as e:
        run_pipeline("c.yaml", ["seed=7", "pipeline=[topics, proposals]"], nbs_dir=nbs, progress=False)
    assert "run again to resume" in str(e.value)
    assert (run_dir / "notebooks" / "12_proposals.ipynb").exists()                        # the failed notebook is kept
    invs = [json.loads(l) for l in (run_dir / "notebooks" / "invocations.jsonl").read_text().splitlines()]
    assert [i["status"] for i in invs] == ["complete", "failed: SynthsciError"]
    assert invs[1]["skipped"] == ["topics"] and invs[1]["ran"] == ["proposals"]            # the finished stage was not run again
    record = lambda: [(run_dir / f).read_text() for f in ("manifest.json", "notebooks/10_topics.ipynb")] + [
        {k: v for k, v in json.loads((run_dir / "summary.json").read_text()).items() if k != "disk_bytes"}]   # the log of runs grew
    before = record()
    capsys.readouterr()
    run_pipeline("c.yaml", ["seed=7"], nbs_dir=nbs)                                       # a finished run, run again: nothing to do
    assert "[synthsci] topics: complete before, skipped" in capsys.readouterr().out
    assert record() == before                                                             # its record stays as made


def test_a_bad_config_is_found_before_the_run_folder_is_made(tmp_path):
    "Every planned stage's options are checked first: a typo in the last stage costs nothing and says nothing of resuming."
    (tmp_path / "c.yaml").write_text(f"run_id: bad\nruns_dir: {tmp_path / 'runs'}\npipeline: [topics, proposals, figures]\n")
    for over, msg in [("stages.proposals.repairz=1", "unknown config field 'stages.proposals.repairz'"),
                      ("stages.figures={dpi: 300}", "the figures stage takes no options"),
                      ("stages.topicz={n_topics: 1}", "'stages.topicz' names no stage")]:
        with pytest.raises(SynthsciError, match=msg) as e: run_pipeline(tmp_path / "c.yaml", [over], progress=False)
        assert "run again" not in str(e.value)
        assert not (tmp_path / "runs").exists()
    r = cli("run", str(tmp_path / "c.yaml"), "stages.proposals.repairz=1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "repairz" in r.stderr, r.stderr


def test_papermill_runs_a_shipped_run_notebook_with_string_overrides(tmp_path):
    "The README's papermill example: overrides as papermill's -p passes them (a YAML list in a string, or one key=value)."
    nb = ROOT / "synthsci" / "runs" / "10_topics.ipynb"
    pm = [str(Path(sys.executable).parent / "papermill"), str(nb)]
    for i, over in enumerate([f'["seed=1", "runs_dir={tmp_path}", "run_id=a", "stages.topics.n_topics=2"]', f"runs_dir={tmp_path}"]):
        r = subprocess.run(pm + [str(tmp_path / f"out{i}.ipynb"), "-p", "config", "configs/quickstart.yaml", "-p", "overrides", over],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert m["config"]["seed"] == 1 and m["stages"]["01_topics"]["topics"] == 2
    assert json.loads((tmp_path / "quickstart" / "manifest.json").read_text())["stages"]["01_topics"]["status"] == "complete"


def test_summary_of_a_run_folder(tmp_path):
    "`synthsci summary` remakes summary.json from a run folder alone (hand-written fixture: a manifest and an aup table)."
    from synthsci.core import Run, atomic_write
    r = Run("s", tmp_path)
    r.update_stage("01_topics", units_done=2, units_total=3, topics=2, rejected=1, status="complete", calls=3, wall_s=1.0,
                   errors={"u3": "ValueError: x"})
    atomic_write(r.path / "11_aup" / "aup.csv", "method,best_aup,last_aup\nbaseline,1.000,1.000\n")
    out = cli("summary", str(r.path), "--out", str(tmp_path / "s.json"))
    assert out.returncode == 0 and out.stdout.strip() == str(tmp_path / "s.json"), out.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    t = s["stages"]["topics"]
    assert (t["units_done"], t["units_total"], t["kept"], t["rejected"], t["errors"], t["calls"]) == (2, 3, 2, 1, 1, 3)
    assert s["aup"] == [{"method": "baseline", "best_aup": 1.0, "last_aup": 1.0}] and not (r.path / "summary.json").exists()
    assert cli("summary", str(tmp_path)).returncode == 2


def test_status_reads_a_run(tmp_path):
    from synthsci.core import Run
    r = Run("s", tmp_path); r.update_stage("01_topics", units_done=2, units_total=5, cost_usd=0.25, status="stopped: budget")
    out = cli("status", str(tmp_path / "s")).stdout
    assert "01_topics" in out and "2/5" in out and "0.2500" in out and "stopped: budget" in out


def test_a_stage_that_ends_incomplete_exits_non_zero(tmp_path, monkeypatch, capsys):
    "A script must not take an unfinished stage for a finished one: the stage command exits 3 and says why."
    import synthsci.topics as topics_mod
    from synthsci.cli import main
    real = topics_mod.scripted_topics
    monkeypatch.setattr(topics_mod, "scripted_topics", lambda seed: (lambda m, **p: (_ for _ in ()).throw(RuntimeError("the server dropped the connection"))
                                                                     if "'audio'" in m[-1]["content"] else real(seed)(m, **p)))
    code = main(["topics", "configs/quickstart.yaml", f"runs_dir={tmp_path}", "teacher.cache='off'", "stages.topics.n_topics=2",
                 "stages.topics.areas=[graphs, audio]"])
    err = capsys.readouterr().err
    assert code == 3 and "stage 01_topics ended incomplete: 1 unit(s) failed" in err and "the server dropped the connection" in err, err
    assert main(["topics", "configs/quickstart.yaml", f"runs_dir={tmp_path}", "teacher.cache='off'", "stages.topics.n_topics=1",
                 "stages.topics.areas=[graphs]", "run_id=other"]) == 0


def test_a_stage_that_kept_nothing_exits_non_zero(tmp_path, monkeypatch, capsys):
    "A stage whose every unit was rejected (a weak teacher) says so and exits 3, rather than passing an empty stage on."
    import synthsci.proposals as proposals_mod
    from synthsci.cli import main
    over = [f"runs_dir={tmp_path}", "teacher.cache='off'", "stages.topics.n_topics=1", "stages.topics.areas=[graphs]"]
    assert main(["topics", "configs/quickstart.yaml", *over]) == 0
    monkeypatch.setattr(proposals_mod, "scripted_proposals", lambda seed: (lambda m, **p: "A nice task on some graph data."))
    code = main(["proposals", "configs/quickstart.yaml", *over])
    err = capsys.readouterr().err
    assert code == 3 and "stage 02_proposals ran every unit but kept none (0/1 kept/rejected)" in err and "02_proposals/rejected" in err, err
