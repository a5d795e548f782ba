"""synthsci runs anywhere: the wheel, installed in a fresh virtual environment outside the repository, runs
`synthsci run` in an empty folder through the run notebooks it ships."""
import json, os, shutil, subprocess, sys, sysconfig
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["settings.ini", "setup.py", "pyproject.toml", "README.md", "MANIFEST.in", "synthsci"]
STAGES = ["topics", "proposals", "grounding", "taskgen", "validate", "rollouts"]

# The tiny run: the scripted teacher, two tabular topics, one trajectory per valid task.
TINY = """run_id: tiny
runs_dir: runs            # relative: to the folder synthsci runs in
teacher: {spec: scripted, cache: record}
pipeline: [topics, proposals, grounding, taskgen, validate, rollouts]
stages:
  topics: {n_topics: 2, areas: [tabular]}
  taskgen: {p_bug: 0.0, workers: 1}
  validate: {k: 2, timeout_s: 60, workers: 1, quality: false}   # this test is about the installed package; the task-quality checks have their own tests
  rollouts: {n_per_task: 1, workers: 1, max_steps: 30, expert: {attempts: [1, 1], p_slow: 0, run_timeout_s: 60}}
"""


def _share_packages(site: Path) -> bool:
    """Make the project venv's packages the new venv's own, without downloading or copying them: hard links (a real
    install holds its packages under its prefix, which is what the sandbox mounts). Where hard links cannot be made
    (another filesystem), a .pth file points at them instead, and the stages that need the sandbox cannot run."""
    proj = Path(sysconfig.get_paths()["purelib"])
    if subprocess.run(["cp", "-al", f"{proj}/.", str(site)], capture_output=True).returncode == 0:
        for p in site.iterdir():    # the project's editable synthsci must not be what the new venv imports
            if p.name.startswith(("__editable__", "synthsci-", "synthsci.")): shutil.rmtree(p) if p.is_dir() else p.unlink()
        return True
    (site / "project_deps.pth").write_text(f"{proj}\n")   # a plain path: the editable synthsci's own .pth there is not run
    return False


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    "A fresh venv with synthsci's wheel installed (no dependencies: those of the project's venv are shared)."
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"; src.mkdir()
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir(): shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else: shutil.copy(p, src / name)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"), str(src)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("synthsci-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True, timeout=300)
    py = tmp / "venv" / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    linked = _share_packages(site)
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp / "venv", linked


def clean_env():
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    return {**env, "HF_HUB_OFFLINE": "1"}


def test_the_wheel_ships_the_run_notebooks_and_imports_itself(venv, tmp_path):
    venv, _ = venv
    code = "import json, synthsci, synthsci.pipeline as p; print(synthsci.__file__); print(json.dumps(sorted(x.name for x in p.run_notebooks().values())))"
    r = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, capture_output=True, text=True, env=clean_env())
    assert r.returncode == 0, r.stderr
    where, names = r.stdout.splitlines()
    assert Path(where).resolve().is_relative_to(venv.resolve()), where               # not the project's editable synthsci
    from synthsci.core import STAGES as REG
    assert json.loads(names) == sorted(s.notebook for s in REG.values())


def test_synthsci_run_in_an_empty_folder(venv, tmp_path):
    venv, linked = venv
    stages = STAGES if linked else STAGES[:4]     # validate and rollouts need the packages inside the venv (the sandbox mounts it)
    here = tmp_path / "somewhere"; here.mkdir()
    (here / "tiny.yaml").write_text(TINY.replace("pipeline: [topics, proposals, grounding, taskgen, validate, rollouts]", f"pipeline: [{', '.join(stages)}]"))
    r = subprocess.run([str(venv / "bin" / "synthsci"), "run", "tiny.yaml"], cwd=here, capture_output=True, text=True, timeout=900, env=clean_env())
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    run = here / "runs" / "tiny"                                                      # where the config says, from the current folder
    m = json.loads((run / "manifest.json").read_text())
    from synthsci.core import STAGES as REG
    assert {s: m["stages"][REG[s].folder]["status"] for s in stages} == {s: "complete" for s in stages}, m["stages"]
    if linked: assert m["stages"]["05_validated"]["valid"] >= 1 and m["stages"]["06_rollouts"]["units_done"] >= 1
    assert sorted(p.name for p in (run / "notebooks").glob("*.ipynb")) == sorted(REG[s].notebook for s in stages)
    inv = json.loads((run / "notebooks" / "invocations.jsonl").read_text().splitlines()[-1])
    assert Path(inv["executable"]).parent == venv / "bin"                             # the pipeline and its kernels: the new venv's Python
    s = json.loads((run / "summary.json").read_text())
    assert s["config_file"] == "tiny.yaml" and list(s["stages"]) == stages and s["git_revision"] is None
    for stage in stages: assert f"[synthsci] {stage}: complete, " in r.stdout
    assert "without encryption" not in r.stdout + r.stderr
    assert sorted(p.name for p in here.iterdir()) == ["runs", "tiny.yaml"]             # nothing else written in the user's folder
