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
