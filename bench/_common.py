"""What every benchmark records beside its figures, and where it writes them.

A figure means little without the machine that measured it and how busy that machine was: `Bench` notes the start
(time and load average) when a benchmark begins, `machine()` describes the machine at the end (cpus, load averages at
start and end, the GPU if any, wall time), and `write()` puts that record beside the figures in
bench/results/<name>.json. A quick run writes nothing, so that it never overwrites a full run's results.

    python bench/_common.py --quick   # prints this machine's record (so `make bench`, which runs bench/*.py, passes it)
"""
import json, os, platform, shutil, subprocess, sys, time
from pathlib import Path
from typing import Optional

RESULTS = Path(__file__).resolve().parent / "results"


def loadavg() -> list[float]:
    "The 1, 5 and 15 minute load averages."
    return [round(x, 2) for x in os.getloadavg()]


def gpu_name() -> Optional[str]:
    "The first GPU's name: from torch when it is already imported (importing it costs seconds), else nvidia-smi; None without one."
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available(): return torch.cuda.get_device_name(0)
    if shutil.which("nvidia-smi"):
        try:
            r = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
            names = [l.strip() for l in r.stdout.splitlines() if l.strip()]
            if r.returncode == 0 and names: return names[0]
        except (OSError, subprocess.SubprocessError): pass
    return None


class Bench:
    "One run of a benchmark: its name, whether it is quick, and when it started and how loaded the machine was then."
    def __init__(self, name: str, quick: bool):
        self.name, self.quick = name, quick
        self.t0, self.load0, self.started = time.perf_counter(), loadavg(), time.strftime("%Y-%m-%dT%H:%M:%S%z")

    def wall_s(self) -> float: return round(time.perf_counter() - self.t0, 1)

    def machine(self) -> dict:
        "The machine as this run found it: cpus, load averages (1, 5, 15 min) at start and end, GPU, wall time so far."
        return dict(cpus=os.cpu_count(), cpus_usable=len(os.sched_getaffinity(0)), platform=platform.platform(),
                    processor=platform.processor() or platform.machine(), python=sys.version.split()[0], gpu=gpu_name(),
                    load_avg_1_5_15=dict(start=self.load0, end=loadavg()), started=self.started, wall_s=self.wall_s(),
                    quick=self.quick)

    def load(self) -> str:
        "The load for a headline: '1-min load 2.6->3.1 on 2 cpus'."
        return f"1-min load {self.load0[0]:.1f}->{loadavg()[0]:.1f} on {os.cpu_count()} cpus"

    def write(self, result: dict, name: Optional[str] = None) -> Optional[Path]:
        "bench/results/<name>.json: `result` with the machine beside it; nothing for a quick run (it never overwrites a full one)."
        if self.quick: return None
        out = RESULTS / f"{name or self.name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"benchmark": name or self.name, **result, "machine": self.machine()}, indent=1) + "\n")
        print(f"wrote {out.relative_to(RESULTS.parents[1])}")
        return out


if __name__ == "__main__":
    b = Bench("machine", quick=True)
    m = b.machine()
    print(f"machine: {m['cpus']} cpus ({m['cpus_usable']} usable), {m['processor']}, GPU {m['gpu'] or 'none'}, "
          f"load {m['load_avg_1_5_15']['end']} (1, 5, 15 min), python {m['python']}")
