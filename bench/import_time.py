"""How long `import synthsci` (and the CLI's --help) takes, beside a bare `python -c pass` measured in the same run.

Target (issue 2): `import synthsci` well under a second. --quick: 5 runs each, no results file; the full run (20 each)
writes bench/results/import_time.json. Last line: the headline figure."""
import argparse, json, statistics, subprocess, sys, time
from _common import Bench

def timed(cmd, n):
    out = []
    for _ in range(n):
        t = time.perf_counter(); subprocess.run(cmd, check=True, capture_output=True); out.append(time.perf_counter() - t)
    return statistics.median(out) * 1000

def main(quick: bool):
    bench = Bench("import_time", quick)
    n = 5 if quick else 20
    py = sys.executable
    bare = timed([py, "-c", "pass"], n)
    pkg = timed([py, "-c", "import synthsci, synthsci.core, synthsci.llm, synthsci.pipeline, synthsci.cli"], n)
    helpcmd = timed([py, "-m", "synthsci.cli", "--help"], n)
    res = dict(runs=n, bare_python_ms=round(bare, 1), import_synthsci_ms=round(pkg, 1), import_extra_ms=round(pkg - bare, 1),
               cli_help_ms=round(helpcmd, 1), target="import synthsci well under 1000 ms")
    print(json.dumps(res, indent=1))
    bench.write(res)
    print(f"import synthsci: {pkg:.0f} ms median of {n} ({pkg - bare:.0f} ms over bare python, {pkg / bare:.1f}x); target well under 1000 ms "
          f"({bench.load()})")

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("--quick", action="store_true")
    main(p.parse_args().quick)
