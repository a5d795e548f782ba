"""Every library notebook's checks run as a test (nbdev's own runner), and the package is exactly what they export."""
import configparser, filecmp, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))
FLAGS = configparser.ConfigParser(delimiters=["="])
FLAGS.read(ROOT / "settings.ini")
SKIP = FLAGS["DEFAULT"]["tst_flags"].split("|")


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook(nb):
    from nbdev.test import test_nb
    ok, _ = test_nb(nb, skip_flags=SKIP)
    assert ok, f"{nb.name} failed (its traceback is above)"


def test_export_leaves_no_diff(tmp_path):
    for name in ("settings.ini", "nbs", "synthsci"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    exporter = Path(sys.executable).parent / "nbdev_export"
    subprocess.run([str(exporter)], cwd=tmp_path, check=True, capture_output=True)
    cmp = filecmp.dircmp(ROOT / "synthsci", tmp_path / "synthsci", ignore=["__pycache__"])
    assert (cmp.diff_files, cmp.left_only, cmp.right_only) == ([], [], []), "run nbdev_export and commit synthsci/"


RUN_NOTEBOOKS = sorted((ROOT / "synthsci" / "runs").glob("*.ipynb"))


def test_every_stage_ships_its_run_notebook():
    "The run notebooks are package data (synthsci/runs/), one per stage of the registry, and no other."
    from synthsci.core import STAGES
    assert sorted(p.name for p in RUN_NOTEBOOKS) == sorted(s.notebook for s in STAGES.values())
    assert not list((ROOT / "nbs").glob("runs/*.ipynb"))       # one copy: nbdev does not export them


@pytest.mark.parametrize("nb", RUN_NOTEBOOKS, ids=lambda p: p.stem)
def test_run_notebook_takes_papermill_parameters(nb, caplog):
    "papermill reads exactly `config` and `overrides` from the parameters cell (a line it cannot parse is a warning)."
    import nbformat, papermill
    params = papermill.inspect_notebook(str(nb))
    assert sorted(params) == ["config", "overrides"] and not [r for r in caplog.records if "Unable to parse" in r.getMessage()]
    cells = nbformat.read(nb, 4).cells
    assert any("notebook_config(config, overrides)" in c.source for c in cells)   # overrides from papermill's -p are strings
    assert not [c for c in cells if c.cell_type == "code" and c.outputs]          # shipped without outputs


@pytest.mark.parametrize("nb", RUN_NOTEBOOKS, ids=lambda p: p.stem)
def test_run_notebook_imports_exist_and_call_the_registered_stage(nb):
    "Every name a run notebook imports from synthsci exists, and it runs the function the stage registry names."
    import ast, importlib, nbformat
    from synthsci.core import STAGES
    (stage,) = [s for s, st in STAGES.items() if st.notebook == nb.name]
    imported = set()
    for c in nbformat.read(nb, 4).cells:
        if c.cell_type != "code": continue
        for node in ast.walk(ast.parse(c.source)):
            if isinstance(node, ast.ImportFrom) and node.module.startswith("synthsci"):
                mod = importlib.import_module(node.module)
                for a in node.names:
                    assert hasattr(mod, a.name), f"{nb.name}: {node.module} has no {a.name}"
                    imported.add(f"{node.module}:{a.name}")
    assert STAGES[stage].func in imported, f"{nb.name} does not import {STAGES[stage].func}"
