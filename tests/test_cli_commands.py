"""Every command `synthsci --help` shows runs as written (its runs folder moved to a temporary one), and every
subcommand answers --help."""
import shlex, subprocess, sys
from pathlib import Path
import pytest
from synthsci.cli import EXAMPLES, TOOLS, build_parser

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "synthsci.cli"]


def help_examples() -> list[str]:
    "The commands under 'examples:' in `synthsci --help`, as printed."
    out = subprocess.run(CLI + ["--help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    block = out.split("\nexamples:\n", 1)[1].split("\n\n", 1)[0]
    return [l.strip() for l in block.splitlines() if l.startswith("  synthsci ")]


def test_the_help_shows_the_examples():
    assert help_examples() == [c for c, _ in EXAMPLES] and len(EXAMPLES) >= 5


def as_run_here(command: str, runs: Path) -> list[str]:
    "The example's argv, with `data/runs` moved to `runs` (a config gets runs_dir=<runs>)."
    argv = shlex.split(command)
    assert argv[0] == "synthsci"
    argv = [str(runs) + a[len("data/runs"):] if a.startswith("data/runs") else a for a in argv[1:]]
    if any(a.endswith((".yaml", ".yml")) for a in argv): argv.append(f"runs_dir={runs}")
    return CLI + argv


def test_every_example_runs_as_written(tmp_path):
    runs = tmp_path / "runs"
    for command in help_examples():    # in order: status and summary read the run the first example made
        r = subprocess.run(as_run_here(command, runs), cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{command}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        assert r.stdout.strip(), command
    assert (runs / "quickstart" / "summary.json").exists() and (runs / "seed1" / "01_topics").is_dir()
    assert sorted(p.name for p in (runs / "quickstart" / "12_figures").glob("*.png"))


SUBCOMMANDS = sorted(build_parser().commands)


def test_the_subcommands_are_the_stages_the_tools_and_the_rest():
    from synthsci.core import STAGES
    assert set(SUBCOMMANDS) == set(STAGES) | set(TOOLS) | {"run", "status", "summary", "llm"}


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_answers_help(command):
    r = subprocess.run(CLI + [command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("usage"), r.stdout + r.stderr
    assert f"synthsci {command}" in r.stdout
