"""The learning effect (issue 15): `make effect`'s run, measured. The full run runs `synthsci run configs/effect.yaml`
(and, with --ablations, one run per ablation named in the Makefile, each one config flag), then reads each run's
summary: every stage's wall time, tokens trained, the AUP table (baseline, base and fine-tuned student; Best Attempt and
Best Submission) with the paired bootstrap interval of fine-tuned minus base, the format-error and scored-submission
shares, and the verdict against the issue's target (the AUP difference's interval above zero and at least half of the
fine-tuned student's held-out runs scored). It writes bench/results/effect.json, the figures into figures/effect/, the
full run's summary into data/summaries/effect.json and each ablation's into data/summaries/effect_ablations/<name>.json
(what the README reads). With --mlgym-root, the full run's students are also evaluated on the tasks of a user's MLGym
checkout that run offline here (a run of its own, `<run_id>-mlgym`, branched from the full run: only its evaluate and
aup stages run), summarised in data/summaries/effect_mlgym.json. A run that was finished before is not run again (`synthsci run` skips its complete stages): its
numbers come from its committed summary, so re-reporting never replaces the record of the run that made them. Ablations
(and the MLGym evaluation) measured before for the same full run, and not named now, stay in the report and the ablation
figure from their committed summaries: measuring one more ablation adds it to the comparison. With --learning-curve, the
full loop is trained again keeping its checkpoints (run `<run_id>-curve`, from the full run's data), each checkpoint
evaluated on the same held-out suite: the learning curve's held-out AUP, summarised in data/summaries/effect_curve.json.

--quick: no new run (the effect takes up to two hours on 2 cores): the report re-made from the newest effect run folder
(data/runs/effect), or else from the committed summary, in seconds; it writes nothing. Last line: the headline.
Usage: python bench/effect.py [--quick] [--ablations no_filter,no_self_debugging,...] [--learning-curve] [--mlgym-root DIR [--mlgym-tasks T ...]]
                              [--overrides k=v ...] [--run-id ID --from RUN_DIR]"""
import argparse, json, os, re, shutil, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Bench

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "effect.yaml"
SUMMARY = ROOT / "data" / "summaries" / "effect.json"
ABLATION_SUMMARIES = ROOT / "data" / "summaries" / "effect_ablations"
MLGYM_SUMMARY = ROOT / "data" / "summaries" / "effect_mlgym.json"
CURVE_SUMMARY = ROOT / "data" / "summaries" / "effect_curve.json"
# The learning curve's run: the full loop trained again keeping its checkpoints (every save_steps), each evaluated on
# the same held-out suite as method finetuned@<step>; it also measures how far a second training of the same config lands.
CURVE_FLAGS = ["stages.train.save_total_limit=100", "stages.evaluate.checkpoints=true"]
# MLGym's tasks that run offline on a CPU machine (the others need the Hub, a GPU, data MLGym does not ship, or the RL extra);
# regressionKaggleHousePriceL1 is left out: the same task and id as regressionKaggleHousePrice, with a shorter prompt.
MLGYM_TASKS = ["regressionKaggleHousePrice", "titanic", "battleOfSexes", "prisonersDilemma", "blotto"]


def ablation_flags() -> dict:
    "Ablation name -> its one config flag, as the Makefile states them (one source for both)."
    return dict(re.findall(r"^ABLATION_(\w+)\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M))


def run_effect(run_id: str, overrides: list, branch_from=None) -> tuple[Path, float, list]:
    "One `synthsci run configs/effect.yaml` as `make effect` runs it (an ablation from the full run's unchanged stages); its run folder, wall time and the stages it ran."
    from synthsci.pipeline import read_invocations
    t0 = time.perf_counter()
    cmd = [str(Path(sys.executable).parent / "synthsci"), "run", str(CONFIG), f"run_id={run_id}", *overrides,
           *(["--from", str(branch_from)] if branch_from else [])]
    print("$", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode: raise SystemExit(f"the effect run {run_id} failed (exit {r.returncode}); its folder is kept for `synthsci run` to resume")
    path = ROOT / "data" / "runs" / run_id
    return path, round(time.perf_counter() - t0, 1), (read_invocations(path) or [{}])[-1].get("ran", [])


def summary_path(name) -> Path:
    "Where the summary of the full loop (name None), of an ablation, of the MLGym evaluation ('mlgym') or of the learning curve's run ('curve') is committed."
    return SUMMARY if name is None else MLGYM_SUMMARY if name == "mlgym" else CURVE_SUMMARY if name == "curve" else ABLATION_SUMMARIES / f"{name}.json"


def summary_run_id(path: Path):
    "The run id a committed summary records (None where there is none)."
    return json.loads(path.read_text()).get("run_id") if path.exists() else None


def measured_before(run_id: str, names, have) -> dict:
    """The ablations (and 'curve', 'mlgym') of `names` not in `have` whose committed summary is of this full run's branch
    (`<run_id>-<name>`): name -> that summary. Another full run's summaries are not mixed in."""
    return {n: summary_path(n) for n in names if n not in have and summary_run_id(summary_path(n)) == f"{run_id}-{n}"}


def suite_pin(run_id: str, full_run: Path) -> list:
    """The override that evaluates an ablation on the full run's held-out tasks (as `make effect ABLATE=...` does); a run
    made before keeps the setting it was made with, so that resuming it changes nothing."""
    m = ROOT / "data" / "runs" / run_id / "manifest.json"
    if not m.exists(): return [f"stages.evaluate.heldout_tasks_from={full_run}"]
    pinned = (((json.loads(m.read_text()).get("config") or {}).get("stages") or {}).get("evaluate") or {}).get("heldout_tasks_from")
    return [f"stages.evaluate.heldout_tasks_from={pinned}"] if pinned else []


def headline(report: dict, source: str) -> str:
    n, v = report["runs"][0], report["verdict"]
    d = ((n.get("difference") or {}).get("best_attempt") or {}).get("aup_difference") or {}
    fmt = lambda x: "n/a" if x is None else f"{x:.3f}"
    return (f"effect ({source}): AUP fine-tuned - base {fmt(d.get('estimate'))} [{fmt(d.get('low'))}, {fmt(d.get('high'))}], "
            f"fine-tuned runs scored {fmt(v['scored_share'])}, target {'met' if v['met'] else 'missed'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ablations", default="", help="comma-separated ablation names (the Makefile's ABLATION_<name>)")
    ap.add_argument("--overrides", nargs="*", default=[], help="overrides for every run (e.g. to size a rehearsal)")
    ap.add_argument("--mlgym-root", default=None, help="also evaluate the full run's students on this MLGym checkout (`synthsci mlgym prepare` it first)")
    ap.add_argument("--mlgym-tasks", nargs="*", default=MLGYM_TASKS, help="its task YAMLs to run (default: those that run offline on a CPU)")
    ap.add_argument("--learning-curve", action="store_true", help="also train the full loop again keeping its checkpoints, and evaluate each on the held-out suite (run <run_id>-curve)")
    ap.add_argument("--run-id", default="effect", help="the full loop's run id (default effect)")
    ap.add_argument("--from", dest="branch_from", default=None, help="start the full loop from this run's stages that the config leaves unchanged")
    a = ap.parse_args()
    if a.mlgym_root and not (Path(a.mlgym_root).expanduser() / "configs" / "tasks").is_dir():   # before hours of runs
        print(f"error: --mlgym-root {a.mlgym_root} is not an MLGym checkout (no configs/tasks)", file=sys.stderr); sys.exit(2)
    from synthsci.effect import effect_report
    bench = Bench("effect", a.quick)
    if a.quick:
        run = ROOT / "data" / "runs" / "effect"
        src = run if (run / "manifest.json").exists() else SUMMARY if SUMMARY.exists() else None
        if src is None: raise SystemExit("no effect run (data/runs/effect) and no committed summary: run `make effect` (or python bench/effect.py)")
        print(headline(effect_report([src]), f"report re-made from {src.relative_to(ROOT)}, no new run"))
        return
    flags = ablation_flags()
    names = [x for x in a.ablations.split(",") if x]
    unknown = [x for x in names if x not in flags]
    if unknown: raise SystemExit(f"unknown ablation(s) {unknown}: known are {sorted(flags)}")
    from synthsci.pipeline import write_summary
    runs, walls, sources = [], {}, {}                                         # name (None: the full loop) -> the summary reported
    mlgym = [(f"{a.run_id}-mlgym", "mlgym", ["stages.evaluate.heldout=false", f"stages.evaluate.mlgym_root={Path(a.mlgym_root).expanduser().resolve()}",
                                            f"stages.evaluate.mlgym_tasks=[{', '.join(a.mlgym_tasks)}]"])] if a.mlgym_root else []
    full_run = ROOT / "data" / "runs" / a.run_id
    curve = [(f"{a.run_id}-curve", "curve", [*CURVE_FLAGS, *suite_pin(f"{a.run_id}-curve", full_run)])] if a.learning_curve else []
    for rid, name, extra in [(a.run_id, None, [])] + [(f"{a.run_id}-{x}", x, [flags[x], *suite_pin(f"{a.run_id}-{x}", full_run)]) for x in names] + curve + mlgym:
        fresh = not (ROOT / "data" / "runs" / rid / "manifest.json").exists()
        src = (runs[0] if runs else a.branch_from) if fresh else None          # an ablation: from the full run
        path, wall, ran = run_effect(rid, a.overrides + extra, src)
        runs.append(path)
        committed = summary_path(name)
        if ran: walls[rid] = wall                                                # the wall of the work done now (a run's own is in its summary)
        if ran or summary_run_id(committed) != rid: write_summary(path, committed)   # made (or resumed) now: its summary is the record
        sources[name] = committed                                               # else the committed record, as the run made it
    sources.update(measured_before(a.run_id, [*flags, "curve", "mlgym"], sources))   # still in the comparison
    report = effect_report([p for n, p in sources.items() if n not in ("curve", "mlgym")], ROOT / "figures" / "effect", curve=sources.get("curve"))
    if "mlgym" in sources:
        from synthsci.core import _parse_override
        said = dict(_parse_override(o) for o in json.loads(sources["mlgym"].read_text()).get("overrides", []))   # the checkout and tasks as that run was given them
        report["mlgym"] = dict(checkout=said.get("stages.evaluate.mlgym_root"), tasks=said.get("stages.evaluate.mlgym_tasks"), **effect_report([sources["mlgym"]]))
    bench.write(dict(config=str(CONFIG.relative_to(ROOT)), overrides=a.overrides, branched_from=a.branch_from, ablations={x: flags[x] for x in names},
                     run_wall_s=walls, summaries=[str(p.relative_to(ROOT)) for p in sources.values()], **report))
    print(headline(report, f"{len(runs)} run(s), {bench.load()}"))


if __name__ == "__main__":
    main()
