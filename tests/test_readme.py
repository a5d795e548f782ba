"""The README is made from nbs/index.ipynb and cannot drift from it; the numbers it shows are those of the committed run
summaries (data/summaries/), read from its tables and sentences independently of the notebook's code; every command
in its bash blocks runs as written, except those named in NOT_RUN with the reason (a key, a server, an MLGym checkout,
a cluster or an hour), which are parsed instead."""
import json, os, re, shlex, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SUMS = ROOT / "data" / "summaries"
VENV = Path(sys.executable).parent.parent          # the venv running the tests (the README says .venv)
FIXTURE_TRAJ = ROOT / "tests" / "fixtures" / "trajectories" / "mlgym_foreign.traj.json"


def summary() -> dict: return json.loads((SUMS / "quickstart.json").read_text())
def plan_json() -> dict: return json.loads((SUMS / "plan_paper" / "plan.json").read_text())
def time_record() -> dict:
    "GNU time -v's record: label -> value."
    return dict(l.strip().rsplit(": ", 1) for l in (SUMS / "quickstart.time.txt").read_text().splitlines()
                if ": " in l and not l.strip().startswith("Command"))


def copy_of_the_working_folder(dest: Path, *names: str) -> Path:
    "`names` (files or folders of the repository) copied into `dest`, with .venv linked to the venv running the tests."
    for n in names:
        src = ROOT / n
        if src.is_dir(): shutil.copytree(src, dest / n, ignore=lambda d, names: [x for x in names if x == "__pycache__"
                                                                  or (Path(d) == ROOT / "data" and x in ("runs", "cache"))])
        else: (dest / n).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(src, dest / n)
    (dest / ".venv").symlink_to(VENV)
    return dest


# ---------------------------------------------------------------------------------------------- (a) one source

def render(tmp: Path) -> str:
    "README.md as `make readme` renders it from nbs/index.ipynb, in a copy of the working folder."
    copy_of_the_working_folder(tmp, "nbs/index.ipynb", "data/summaries", "figures", "Makefile", "settings.ini", "setup.py")
    r = subprocess.run(["make", "-o", ".venv/.installed", "readme"], cwd=tmp, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return (tmp / "README.md").read_text()


def test_readme_is_rendered_from_index(tmp_path):
    "README.md is exactly what `make readme` makes of nbs/index.ipynb: edit the notebook, then run `make readme`."
    assert render(tmp_path) == README.read_text(), "README.md differs from nbs/index.ipynb rendered: run `make readme`"


def test_index_notebook_runs_under_nbdev():
    "nbdev's own runner executes the index (as `nbdev_test` would), and nothing in it is slow."
    from nbdev.test import test_nb
    ok, seconds = test_nb(ROOT / "nbs" / "index.ipynb")
    assert ok and seconds < 60, seconds


def test_rendering_reads_the_summary(tmp_path):
    "A changed summary changes the rendered README: its numbers are read, not typed."
    s = summary()
    s["stages"]["rollouts"]["calls"] = 123457
    text = render_with(tmp_path, s)
    assert "123,457" in text and "123,457" not in README.read_text()
    assert mismatches(text) and any("rollouts" in m and "teacher calls" in m for m in mismatches(text))


def render_with(tmp: Path, s: dict) -> str:
    copy_of_the_working_folder(tmp / "w", "nbs/index.ipynb", "data/summaries", "figures", "Makefile", "settings.ini", "setup.py")
    (tmp / "w" / "data" / "summaries" / "quickstart.json").write_text(json.dumps(s))
    r = subprocess.run(["make", "-o", ".venv/.installed", "readme"], cwd=tmp / "w", capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return (tmp / "w" / "README.md").read_text()


# ---------------------------------------------------------------------------------------------- (b) the numbers

NUMBER = re.compile(r"^-?[\d,]*\.?\d+$")


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    "Every markdown table in `text`: (header cells, rows of cells)."
    out, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|(\s*:?-+:?\s*\|)+$", lines[i + 1]):
            cells = lambda l: [c.strip() for c in l.strip()[1:-1].split(" | ")]
            header, rows, i = cells(lines[i]), [], i + 2
            while i < len(lines) and lines[i].startswith("|"): rows.append(cells(lines[i])); i += 1
            out.append((header, rows))
        else: i += 1
    return out


def same(cell: str, value) -> bool:
    "Does the README's `cell` state `value`, to the precision the cell shows? ('-', '' and 'n/a' state None.)"
    if value is None: return cell in ("-", "", "n/a")
    if isinstance(value, str) and not NUMBER.match(value.replace(",", "")): return cell == value
    if not NUMBER.match(cell.replace(",", "")): return False
    shown = float(cell.replace(",", ""))
    decimals = len(cell.split(".")[1]) if "." in cell else 0
    return abs(shown - float(str(value).replace(",", ""))) <= 0.5 * 10 ** -decimals + 1e-12


def key(cell: str) -> str:
    "The summary key a first cell names in backticks (`valid`, `grounding:contaminated`, `base`: ...)."
    m = re.match(r"^`([^`]+)`", cell)
    return m.group(1) if m else cell


def section(text: str, start: str, end: str) -> str:
    a = text.index(start)
    return text[a:text.index(end, a)]


STAGE_COLUMNS = {"units done": "units_done", "kept": "kept", "rejected": "rejected", "failed units": "errors",
                 "teacher calls": "calls", "tokens in": "input_tokens", "tokens out": "output_tokens", "wall (s)": "wall_s"}


def check_table(header: list[str], rows: list[list[str]], s: dict, t: dict, p: dict) -> list[str]:
    "What in one README table disagrees with the summary (s), the time record (t) or the plan (p); a table of unknown shape is one problem."
    bad, h = [], header[0]
    F = s["funnels"]["validate"]
    def keyed(rows, d, what):
        if {key(r[0]) for r in rows} != set(d): bad.append(f"{what}: rows {sorted(key(r[0]) for r in rows)} != summary {sorted(d)}")
        bad.extend(f"{what} {key(r[0])}: README {r[1]!r}, summary {d.get(key(r[0]))!r}" for r in rows if not same(r[1], d.get(key(r[0]))))
    if h == "time and memory":
        for label, value, source in rows:
            m = re.match(r"^(GNU time|summary): `(.+)`$", source)
            if not m: bad.append(f"time row {label!r}: no source"); continue
            if m.group(1) == "GNU time": want = t.get(m.group(2))
            else:
                want = s
                for k in m.group(2).split("."): want = want[k]
            if not same(value, want): bad.append(f"time row {label!r}: README {value!r}, {m.group(1)} {want!r}")
    elif header[:2] == ["stage", "units done"]:
        if [key(r[0]) for r in rows] != list(s["stages"]): bad.append(f"stage rows {[key(r[0]) for r in rows]} != summary {list(s['stages'])}")
        for r in rows:
            st = s["stages"].get(key(r[0]), {})
            for col, cell in zip(header[1:], r[1:]):
                want = st.get("disk_bytes", 0) / 1e6 if col == "disk (MB)" else st.get(STAGE_COLUMNS[col])
                if not same(cell, want): bad.append(f"stage {key(r[0])}, {col}: README {cell!r}, summary {want!r}")
    elif h == "validation funnel":
        keyed(rows, {k: v for k, v in F.items() if not isinstance(v, dict)}, "validation funnel")
    elif h == "rejection (`stage:reason`)": keyed(rows, F["rejections"], "rejection")
    elif h == "failed attempt, by kind": keyed(rows, F["failed_attempts"], "failed attempt")
    elif h == "kind of valid task": keyed(rows, F["valid_kinds"], "valid kind")
    elif h == "trajectory filter step":
        want = [[f"`{r['step']}`", r["kept"], r["dropped"]] for r in s["funnels"]["filter"]]
        if len(rows) != len(want) or any(a[0] != b[0] or not same(a[1], b[1]) or not same(a[2], b[2]) for a, b in zip(rows, want)):
            bad.append(f"filter funnel: README {rows}, summary {want}")
    elif h == "held-out task":
        methods, tables_ = [key(c) for c in header[2:]], {"best attempt": "best_attempt", "best submission": "best_submission"}
        seen = set()
        for r in rows:
            task, which = key(r[0]), tables_.get(r[1])
            seen.add((which, task))
            for m, cell in zip(methods, r[2:]):
                want = (s["scores"] or {}).get(which, {}).get(task, {}).get(m, "missing")
                if want == "missing" or not same(cell, want): bad.append(f"score {which} {task} {m}: README {cell!r}, summary {want!r}")
        if seen != {(w, task) for w, tb in (s["scores"] or {}).items() for task in tb}: bad.append(f"score rows {sorted(seen)}")
    elif h == "method":
        aup = {r["method"]: r for r in s["aup"] or []}
        if {key(r[0]) for r in rows} != set(aup): bad.append(f"AUP rows {[key(r[0]) for r in rows]} != summary {sorted(aup)}")
        for r in rows:
            a = aup.get(key(r[0]), {})
            if not (same(r[1], a.get("best_aup")) and same(r[2], a.get("last_aup"))): bad.append(f"AUP {key(r[0])}: README {r[1:]}, summary {a}")
    elif header == ["stage", "quantity", "value", "unit", "source"]:
        prow = {(r["stage"], r["quantity"]): r for r in p["rows"]}
        for st, q, value, unit, source in rows:
            want = prow.get((st, q))
            if want is None or not same(value, want["value"]) or unit != want["unit"] or source != want["source"]:
                bad.append(f"plan {st} {q}: README {value!r} {unit!r}, plan.json {want and (want['value'], want['unit'])}")
    else: bad.append(f"a table the test cannot check: {header}")
    return bad


OPTIONAL = {r"Every grounding refusal \((\d+)\)", r"grounded = proposals = (\d+)", r"any of the (\d+) held-out tasks"}   # sentences the data may leave out
PROSE = [  # (a claim in the quickstart section's sentences, what it must state): every number there is one of these
    (r"created (\S+)\)", lambda s, t: s["created"]),
    (r"commit `(\w+)` with that", lambda s, t: s["git_revision"][:7]),
    (r"The job got (\d+%) of one CPU", lambda s, t: t["Percent of CPU this job got"]),
    (r"they cost \$([\d.]+)\.", lambda s, t: sum(st["cost_usd"] or 0 for st in s["stages"].values())),
    (r"run folder holds ([\d,]+) MB", lambda s, t: s["disk_bytes"]["total"] / 1e6),
    (r"([\d.]+)% of it the train stage", lambda s, t: 100 * s["stages"]["train"]["disk_bytes"] / s["disk_bytes"]["total"]),
    (r"Every grounding refusal \((\d+)\)", lambda s, t: sum(v for k, v in s["funnels"]["validate"]["rejections"].items() if k.startswith("grounding:"))),
    (r"grounded = proposals = (\d+)", lambda s, t: s["funnels"]["validate"]["grounded"]),
    (r"failed attempts (\d+);", lambda s, t: sum(s["funnels"]["validate"]["failed_attempts"].values())),
    (r"fixes tried (\d+)", lambda s, t: s["funnels"]["validate"]["fixes"]),
    (r"rewrites\s+tried (\d+)", lambda s, t: s["funnels"]["validate"]["rewrites"]),
    (r"rescued by a fix (\d+)", lambda s, t: s["funnels"]["validate"]["rescued_by_fix"]),
    (r"by a rewrite\s+(\d+);", lambda s, t: s["funnels"]["validate"]["rescued_by_rewrite"]),
    (r"tasks discarded (\d+)\.", lambda s, t: s["funnels"]["validate"]["validated"] - s["funnels"]["validate"]["valid"]),
    (r"any of the (\d+) held-out tasks", lambda s, t: len(s["scores"]["best_attempt"])),
]
STANDALONE_NUMBER = re.compile(r"(?<![\w.$-])\$?\d[\d,]*(?:\.\d+)?%?(?![\w-])")


def mismatches(text: str) -> list[str]:
    "Every disagreement between the README `text` and the committed summaries (an empty list: none)."
    s, t, p = summary(), time_record(), plan_json()
    bad = []
    qs = section(text, "### What the quickstart did", "### A real teacher")
    found = tables(qs)
    want = {"time and memory", "stage", "validation funnel", "rejection (`stage:reason`)", "failed attempt, by kind",
            "kind of valid task", "trajectory filter step", "held-out task", "method"}
    if {h[0] for h, _ in found} != want: bad.append(f"the quickstart section's tables are {sorted(h[0] for h, _ in found)}, expected {sorted(want)}")
    plan = [tb for tb in tables(section(text, "## Scale", "## Offline by design")) if tb[0][:2] == ["stage", "quantity"]]
    if len(plan) != 1: bad.append(f"the Scale section has {len(plan)} plan tables, expected 1")
    for header, rows in found + plan: bad.extend(check_table(header, rows, s, t, p))
    # the sentences: each claim above states its value, and no other number is there unchecked
    prose = "\n".join(l for l in qs.splitlines() if not l.startswith("|"))
    checked = []
    for pattern, value in PROSE:
        ms = list(re.finditer(pattern, prose))
        if not ms and pattern in OPTIONAL: continue
        if len(ms) != 1: bad.append(f"the claim /{pattern}/ is in the quickstart section {len(ms)} times, expected once"); continue
        if not same(ms[0].group(1).rstrip("%"), value(s, t) if not isinstance(value(s, t), str) else value(s, t).rstrip("%")):
            bad.append(f"the claim /{pattern}/: README {ms[0].group(1)!r}, summary {value(s, t)!r}")
        checked.append(ms[0].span())
    for m in STANDALONE_NUMBER.finditer(prose):
        inside_code = prose[:m.start()].count("`") % 2 == 1
        if not inside_code and not any(a <= m.start() < b for a, b in checked):
            bad.append(f"an unchecked number in the quickstart section: {m.group()!r} in {prose[max(0, m.start() - 60):m.end() + 20]!r}")
    return bad


def test_readme_numbers_match_the_summaries():
    assert mismatches(README.read_text()) == []


# ---------------------------------------------------------------------------------------------- the learning effect
def _hms(seconds) -> str:
    h, r = divmod(round(seconds), 3600)
    return f"{h}:{r // 60:02d}:{r % 60:02d}"

def _diff(e, kind, part):
    return (((e.get("eval_stats") or {}).get("comparison") or {}).get("aup_difference") or {}).get(kind, {}).get(part)

EFFECT_PROSE = [  # (a claim in the effect section's sentences, what it must state, from data/summaries/effect.json)
    (r"The measured run: `([\w-]+)`", lambda e: e["run_id"]),
    (r"\(created (\S+), commit", lambda e: e["created"]),
    (r", commit `(\w+)`,", lambda e: e["git_revision"][:7]),
    (r"there\), (\d+:\d\d:\d\d) \(h:mm:ss\)", lambda e: _hms(e["wall_s"]["pipeline"] or e["wall_s"]["stages"])),
    (r"on (\d+) CPUs", lambda e: e["machine"]["cpu_count"]),
    (r"load average was ([\d.]+) at the start", lambda e: e["machine"]["load_avg_start"][0]),
    (r"and ([\d.]+) at the end", lambda e: e["machine"]["load_avg_end"][0]),
    (r"best attempt ([+-][\d.]+) \[", lambda e: _diff(e, "best_attempt", "estimate")),
    (r"best attempt [+-][\d.]+ \[([+-][\d.]+),", lambda e: _diff(e, "best_attempt", "low")),
    (r"best attempt [+-][\d.]+ \[[+-][\d.]+, ([+-][\d.]+)\]", lambda e: _diff(e, "best_attempt", "high")),
    (r"best submission ([+-][\d.]+) \[", lambda e: _diff(e, "best_submission", "estimate")),
    (r"best submission [+-][\d.]+ \[([+-][\d.]+),", lambda e: _diff(e, "best_submission", "low")),
    (r"best submission [+-][\d.]+ \[[+-][\d.]+, ([+-][\d.]+)\]", lambda e: _diff(e, "best_submission", "high")),
    (r"\((\d+)% paired bootstrap", lambda e: 100 * e["eval_stats"]["comparison"]["confidence"]),
    (r"over (\d+) held-out tasks", lambda e: len(e["eval_stats"]["comparison"]["tasks"])),
    (r"k at least (\d+)\)", lambda e: e["eval_stats"]["comparison"]["k_min"]),
    (r"Training: (\d+)\s+steps", lambda e: e["train"]["steps"]),
    (r"steps, ([\d,]+) tokens", lambda e: e["train"]["tokens_trained"]),
    (r"on (\d+) trajectories", lambda e: e["train"]["data"]["train"]["rows"]),
    (r"equals the baseline's score on (\d+) of", lambda e: sum(1 for v in e["eval_stats"]["comparison"]["per_task"]["best_submission"].values() if v["treatment"] == 0)),
    (r"score on \d+ of (\d+) held-out", lambda e: len(e["eval_stats"]["comparison"]["per_task"]["best_submission"])),
    (r"(\d+) of its \d+ runs ended without a `submit`", lambda e: sum(n for k, n in e["eval_stats"]["methods"]["finetuned"]["exit_statuses"].items() if k.startswith("autosubmission"))),
    (r"\d+ of its (\d+) runs ended without a `submit`", lambda e: e["eval_stats"]["methods"]["finetuned"]["runs"]),
    (r"(\d+) of the run's \d+ SFT examples were cut", lambda e: e["student_view"]["truncated_to_context"]),
    (r"\d+ of the run's (\d+) SFT examples were cut", lambda e: e["student_view"]["examples"]),
    (r"\d+ of the run's \d+ SFT examples were cut at a turn boundary to fit the training context \(`stages.sftdata.max_tokens`\), so (none of them|\d+) show",
     lambda e: "none of them" if e["student_view"]["truncated_to_context"] == e["student_view"]["examples"] else e["student_view"]["examples"] - e["student_view"]["truncated_to_context"]),
    (r"and beats it on (\d+)\.", lambda e: sum(1 for v in e["eval_stats"]["comparison"]["per_task"]["best_submission"].values() if v["treatment"] > 0)),
    (r"\) is (met|missed)\.", lambda e: "met" if (_diff(e, "best_attempt", "low") or 0) > 0
        and (e["eval_stats"]["methods"]["finetuned"].get("scored_submission_share") or 0) >= 0.5 else "missed"),
]


CURVE_PROSE = [  # (a claim in the learning curve's sentences, what it must state, from the full run's summary e and the curve run's c)
    (r"run `([\w-]+)` trained the full loop again", lambda e, c: c["run_id"]),
    (r"fine-tuned student's AUP \(best attempt\) is\s+([\d.]+) where", lambda e, c: c["eval_stats"]["methods"]["finetuned"]["aup"]["best_attempt"]),
    (r"where `([\w-]+)`'s is [\d.]+\.", lambda e, c: e["run_id"]),
    (r"where `[\w-]+`'s is ([\d.]+)\.", lambda e, c: e["eval_stats"]["methods"]["finetuned"]["aup"]["best_attempt"]),
]


def curve_step(method: str, c):
    "The training step the learning curve's run evaluated `method` at (None: the baseline)."
    return 0 if method == "base" else int(method.split("@")[1]) if method.startswith("finetuned@") else c["train"]["steps"] if method == "finetuned" else None


def effect_mismatches(text: str, e, ablations=None, mlgym=..., curve=...) -> list[str]:
    """Every disagreement between the README's effect section and the effect run's summary `e` (None: no run committed),
    the ablations' (name -> summary; default: data/summaries/effect_ablations/), the MLGym run's and the learning curve run's."""
    ablations = ablation_summaries() if ablations is None else ablations
    mlgym = mlgym_summary() if mlgym is ... else mlgym
    curve = curve_summary() if curve is ... else curve
    sec = section(text, "### Does the loop teach?", "## A tour")
    bad_mlgym = ["the MLGym summary and the README's MLGym table: one is there without the other"] if (mlgym is not None) != ("effect on MLGym: method" in sec) else []
    if e is None:
        return [] if "No full effect run has been measured yet" in sec else ["no effect summary is committed, yet the README states an effect"]
    bad, sec = bad_mlgym, sec[sec.index("The measured run:"):]
    if (curve is not None) != ("effect: learning curve, method" in sec): bad.append("the learning curve's summary and its README table: one is there without the other")
    if curve is None and "the held-out AUP of the checkpoints in between is not measured yet" not in sec: bad.append("no learning curve run, and the README does not say so")
    for header, rows in tables(sec):
        if header[0].startswith("effect on MLGym") and mlgym is None: continue          # said above
        if header[0] in ("effect: method", "effect on MLGym: method"):
            bad.extend(method_mismatches(header[0], rows, e if header[0] == "effect: method" else mlgym))
        elif header[0] == "effect on MLGym: fine-tuned - base":
            ran = re.search(r"the stages it ran itself: ((?:`\w+`(?:, )?)+)\)", sec)
            if not ran or re.findall(r"`(\w+)`", ran.group(1)) != [k for k, v in mlgym["stages"].items() if not v.get("copied_from")]:
                bad.append(f"MLGym run's own stages: README {ran and ran.group(1)!r}")
            if [key(r[0]) for r in rows] != ["best_attempt", "best_submission"]: bad.append(f"MLGym intervals: rows {[key(r[0]) for r in rows]}")
            if not header[1].startswith(f"AUP difference [{100 * mlgym['eval_stats']['comparison']['confidence']:.0f}% "): bad.append(f"MLGym intervals: {header[1]!r}")
            bad.extend(f"MLGym interval {r[0]}: README {r[1]!r}" for r in rows if not interval_is(r[1], mlgym, key(r[0])))
        elif header[0] == "effect on MLGym: task (best submission)":
            subs = mlgym["scores"]["best_submission"]
            none = [t for t, row in subs.items() if all(v is None for m, v in row.items() if m != "baseline")]
            said = re.search(r"Neither student produced a scored submission on ((?:`\w+`(?:, )?)+)\.", sec)
            if (re.findall(r"`(\w+)`", said.group(1)) if said else []) != none: bad.append(f"MLGym tasks without a submission: README {said and said.group(1)!r}, summary {none}")
            above = (_diff(mlgym, "best_attempt", "low") or 0) > 0
            if ("is above the base student's" in sec) != above or ("is not distinguishable from the base student's" in sec) == above:
                bad.append("the MLGym verdict disagrees with its best-attempt interval")
            if [key(r[0]) for r in rows] != list(subs) or [key(h) for h in header[1:]] != list(next(iter(subs.values()))):
                bad.append(f"MLGym tasks/methods: README {[key(r[0]) for r in rows]} {header[1:]}, summary {list(subs)}")
            else: bad.extend(f"MLGym {key(r[0])}: README {r[1:]}" for r in rows
                             if not all(same(c, subs[key(r[0])].get(key(h))) for c, h in zip(r[1:], header[1:])))
        elif header[0] == "effect: stage":
            if [key(r[0]) for r in rows] != list(e["stages"]): bad.append(f"effect stages {[key(r[0]) for r in rows]} != summary {list(e['stages'])}")
            bad.extend(f"effect stage {key(r[0])}: README {r[1]!r}" for r in rows if not same(r[1], e["stages"].get(key(r[0]), {}).get("wall_s")))
            made = lambda st: f"copied from `{Path(st['copied_from']).name}` (`--from`)" if st.get("copied_from") else "this run"
            bad.extend(f"effect stage {key(r[0])} made by: README {r[2]!r}" for r in rows if r[2] != made(e["stages"].get(key(r[0]), {})))
        elif header[0] == "effect: learning curve, method" and curve is not None:
            if header[-1] != "training step": bad.append(f"learning curve columns: {header}")
            by_step = dict(sorted(curve["eval_stats"]["methods"].items(), key=lambda kv: -1 if curve_step(kv[0], curve) is None else curve_step(kv[0], curve)))
            bad.extend(method_mismatches(header[0], [r[:-1] for r in rows], {"eval_stats": {"methods": by_step}}))   # in training order
            bad.extend(f"learning curve {key(r[0])}: README step {r[-1]!r}" for r in rows if not same(r[-1], curve_step(key(r[0]), curve)))
        elif header[0] == "effect: ablation":
            bad.extend(ablation_mismatches(rows, e, ablations))
        else: bad.append(f"a table the test cannot check in the effect section: {header}")
    prose = "\n".join(l for l in sec.splitlines() if not l.startswith("|") and not l.startswith("!["))
    if ablations and not any(h[0] == "effect: ablation" for h, _ in tables(sec)): bad.append("ablation summaries are committed, yet the README has no ablation table")
    said = dict((n, v) for clause in (re.search(r"Best-attempt intervals: ([^(]*)\(", prose) or [None, ""])[1].split("; ")
                if clause.strip() for names, v in [re.match(r"((?:`\w+`(?:, )?)+) (.*?)\s*$", clause.replace("\n", " ")).groups()]
                for n in re.findall(r"`(\w+)`", names))
    want = {n: ablation_against(_diff(a, "best_attempt", "estimate"), _diff(a, "best_attempt", "low"), _diff(a, "best_attempt", "high"), e)
            for n, a in ablations.items()}
    if said != want: bad.append(f"the ablations' verdicts: README {said}, summaries {want}")
    checked = []
    for pattern, value in EFFECT_PROSE + (CURVE_PROSE if curve is not None else []):
        ms_ = list(re.finditer(pattern, prose))
        if len(ms_) != 1: bad.append(f"the effect claim /{pattern}/ is there {len(ms_)} times, expected once"); continue
        want = value(e) if (pattern, value) in EFFECT_PROSE else value(e, curve)
        if not same(ms_[0].group(1).rstrip("%").lstrip("+"), want): bad.append(f"the effect claim /{pattern}/: README {ms_[0].group(1)!r}, summary {want!r}")
        checked.append(ms_[0].span(1))
    for m in re.finditer(r"(?<![\w.$-])[+-]?\d[\d,]*(?:\.\d+)?%?(?![\w-])", prose):
        inside_code = prose[:m.start()].count("`") % 2 == 1
        if not inside_code and not any(a <= m.start() < b for a, b in checked):
            bad.append(f"an unchecked number in the effect section: {m.group()!r} in {prose[max(0, m.start() - 60):m.end() + 20]!r}")
    return bad


def curve_summary():
    return json.loads((SUMS / "effect_curve.json").read_text()) if (SUMS / "effect_curve.json").exists() else None


def mlgym_summary():
    return json.loads((SUMS / "effect_mlgym.json").read_text()) if (SUMS / "effect_mlgym.json").exists() else None


def interval_is(cell: str, summary, kind: str) -> bool:
    "Does `cell` ('+0.208 [+0.038, +0.384]') state the summary's AUP difference (fine-tuned - base) of `kind`?"
    m = re.fullmatch(r"([+-][\d.]+) \[([+-][\d.]+), ([+-][\d.]+)\]", cell)
    return bool(m) and all(same(c.lstrip("+"), _diff(summary, kind, part)) for c, part in zip(m.groups(), ("estimate", "low", "high")))


def _pct(share): return None if share is None else 100 * share


def method_mismatches(name, rows, summary) -> list[str]:
    "A table of methods (AUP both ways, runs, scored and format-error shares) against a run summary's evaluation."
    ms = summary["eval_stats"]["methods"]
    if [key(r[0]) for r in rows] != list(ms): return [f"{name}: methods {[key(r[0]) for r in rows]} != summary {list(ms)}"]
    bad = []
    for r in rows:
        v = ms[key(r[0])]
        want = [v.get("aup", {}).get("best_attempt"), v.get("aup", {}).get("best_submission"), v.get("runs"),
                _pct(v.get("scored_submission_share")), _pct(v.get("format_error_turn_share"))]
        if not all(same(c.rstrip("%"), w) for c, w in zip(r[1:], want)): bad.append(f"{name} {key(r[0])}: README {r[1:]}, summary {want}")
    return bad


def ablation_summaries() -> dict:
    return {p.stem: json.loads(p.read_text()) for p in sorted((SUMS / "effect_ablations").glob("*.json"))}


def ablation_against(est, low, high, e) -> str:
    "Where an ablation's best-attempt interval lies against the full loop's (the README's words)."
    lo, hi = _diff(e, "best_attempt", "low"), _diff(e, "best_attempt", "high")
    if est is None or lo is None: return "not compared"
    return "below the full loop's" if high < lo else "above the full loop's" if low > hi else "overlapping the full loop's"


def ablation_mismatches(rows, e, ablations) -> list[str]:
    "The README's ablation table against the full loop's summary `e` and each ablation's."
    runs = {"full_loop": e, **ablations}
    if [key(r[0]) for r in rows] != list(runs): return [f"ablation rows {[key(r[0]) for r in rows]} != summaries {list(runs)}"]
    bad = []
    for r in rows:
        s = runs[key(r[0])]
        ft = s["eval_stats"]["methods"].get("finetuned") or {}
        flag = next((o for o in s.get("overrides") or [] if not o.startswith("run_id=")), None)
        if r[1] != (f"`{flag}`" if flag else "-") or r[2] != f"`{s['run_id']}`": bad.append(f"ablation {key(r[0])}: flag/run {r[1:3]}")
        bad.extend(f"ablation {key(r[0])} {kind}: README {cell}" for kind, cell in (("best_attempt", r[7]), ("best_submission", r[8]))
                   if not interval_is(cell, s, kind))
        want = [s["train"]["data"]["train"]["rows"], s["train"]["data"]["train"]["tasks"], s["train"]["tokens_trained"], ft.get("aup", {}).get("best_attempt"),
                _pct(ft.get("scored_submission_share")), _pct(ft.get("format_error_turn_share"))]
        if not all(same(c.rstrip("%"), w) for c, w in zip(r[3:7] + r[9:11], want)): bad.append(f"ablation {key(r[0])}: README {r[3:7] + r[9:11]}, summaries {want}")
        ev = s["stages"]["evaluate"]
        base_runs = f"copied from `{Path(ev['units_copied_from']).name}`" if ev.get("copied_units") else "made by this run"
        if r[11] != base_runs: bad.append(f"ablation {key(r[0])}: base student's runs README {r[11]!r}, summary {base_runs!r}")
    return bad


def effect_summary():
    return json.loads((SUMS / "effect.json").read_text()) if (SUMS / "effect.json").exists() else None


def test_readme_effect_numbers_match_the_effect_summary():
    assert effect_mismatches(README.read_text(), effect_summary()) == []


def test_a_planted_effect_error_is_found():
    "Drift between the README's effect section and its summary is caught, with a hand-written summary standing in when none is committed."
    text, e = README.read_text(), effect_summary()
    if e is None: assert effect_mismatches(text.replace("No full effect run has been measured yet", "The effect"), None); return
    assert effect_mismatches(text, {**e, "run_id": e["run_id"] + "x"})
    ev = json.loads(json.dumps(e["eval_stats"])); ev["methods"]["finetuned"]["aup"]["best_attempt"] += 0.01
    assert effect_mismatches(text, {**e, "eval_stats": ev})
    ev = json.loads(json.dumps(e["eval_stats"])); ev["comparison"]["aup_difference"]["best_attempt"]["low"] += 0.01
    assert effect_mismatches(text, {**e, "eval_stats": ev})
    ev = json.loads(json.dumps(e["eval_stats"])); ev["methods"]["finetuned"]["exit_statuses"] = {"submitted": ev["methods"]["finetuned"]["runs"]}
    assert effect_mismatches(text, {**e, "eval_stats": ev})                            # runs that submitted by themselves
    assert effect_mismatches(text, {**e, "student_view": {**e["student_view"], "truncated_to_context": e["student_view"]["examples"] - 1}})   # one SFT example whole
    assert effect_mismatches(text.replace("on 2 CPUs", "on 2 CPUs (16 threads)"), e)     # a number typed by hand
    for name, a in ablation_summaries().items():                                       # an ablation's numbers, and its verdict
        t = json.loads(json.dumps(a)); t["train"]["tokens_trained"] += 1000
        assert effect_mismatches(text, e, {**ablation_summaries(), name: t})
        t = json.loads(json.dumps(a)); t["stages"]["evaluate"]["copied_units"] = 0 if a["stages"]["evaluate"].get("copied_units") else 10
        t["stages"]["evaluate"].setdefault("units_copied_from", "/x/effect2")
        assert effect_mismatches(text, e, {**ablation_summaries(), name: t})      # whose base-student runs it compares with
        t = json.loads(json.dumps(a)); t["eval_stats"]["comparison"]["aup_difference"]["best_attempt"].update(estimate=9.0, low=8.0, high=10.0)
        assert any("verdicts" in x for x in effect_mismatches(text, e, {**ablation_summaries(), name: t}))
    assert effect_mismatches(text, e, {**ablation_summaries(), "planted": e})
    c = curve_summary()
    if c is None: assert effect_mismatches(text, e, curve=e)                           # a learning curve the README does not show
    else:
        t = json.loads(json.dumps(c)); m = next(k for k in t["eval_stats"]["methods"] if k.startswith("finetuned@"))
        t["eval_stats"]["methods"][m]["aup"]["best_attempt"] += 0.01
        assert effect_mismatches(text, e, curve=t)
        assert effect_mismatches(text, e, curve={**c, "train": {**c["train"], "steps": c["train"]["steps"] + 1}})
        assert effect_mismatches(text, e, curve=None)
    g = mlgym_summary()
    if g is None: assert effect_mismatches(text, e, mlgym=e); return                   # a summary the README does not show
    for path in (("eval_stats", "methods", "finetuned", "aup", "best_submission"), ("eval_stats", "comparison", "aup_difference", "best_attempt", "low")):
        t = json.loads(json.dumps(g)); leaf = t
        for k in path[:-1]: leaf = leaf[k]
        leaf[path[-1]] += 0.01
        assert effect_mismatches(text, e, mlgym=t), path
    t = json.loads(json.dumps(g)); task = next(iter(t["scores"]["best_submission"])); t["scores"]["best_submission"][task]["baseline"] += 1
    assert effect_mismatches(text, e, mlgym=t)
    assert effect_mismatches(text, e, mlgym=None)


@pytest.mark.parametrize("old, new", [
    ("| `valid` | 11 |", "| `valid` | 12 |"),                              # a count of the funnel
    ("| `rollouts` | 22 |", "| `rollouts` | 23 |"),                        # a stage's units
    ("| 0.400 | 0.400 |", "| 0.400 | 0.410 |"),                            # an AUP
    ("| 1:12:23 |", "| 0:42:23 |"),                                        # the wall time
    ("| 13% |", "| 31% |"),                                                # the machine's share
    ("| `time-series-forecasting` | 3 |\n", ""),                            # a row left out
    ("run folder holds 3,790 MB", "run folder holds 379 MB"),               # a number in a sentence
    ("| wall | total days | 0.2966 |", "| wall | total days | 0.1966 |"),   # the plan
    ("The job got 13% of one CPU over the run:", "The job got 13% of one CPU over the run, 2 cores:"),   # a number typed by hand
])
def test_a_planted_error_is_found(old, new):
    "Each kind of drift between the README and the summaries is caught (the edits are made to a copy)."
    text = README.read_text()
    assert old in text, old
    assert mismatches(text.replace(old, new, 1)), (old, new)


def test_every_link_and_image_exists():
    "The files the README links to (figures, notebooks, folders) are in the repository."
    text = README.read_text()
    paths = [p for p in re.findall(r"\]\(([^)]+)\)", text) if "://" not in p and not p.startswith("#")]
    assert paths and [p for p in paths if not (ROOT / p).exists()] == []


def test_the_tour_names_every_notebook_and_command():
    from synthsci.cli import build_parser
    text = README.read_text()
    assert [nb.stem for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")) if f"`{nb.stem}`" not in text] == []
    assert [c for c in build_parser().commands if f"synthsci {c}" not in text and c not in ("topics", "proposals", "grounding",
            "taskgen", "validate", "rollouts", "filter", "sftdata", "train", "evaluate")] == []


# ---------------------------------------------------------------------------------------------- (c) the commands

def commands(text: str) -> list[str]:
    "The command lines of the README's bash blocks, in order (continuation lines joined)."
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip(): out.append(line.strip())
    return out


def run_verbatim(command: str, cwd: Path, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def config_parses(command: str, cwd: Path):
    "A `synthsci run` line (after any `/usr/bin/time -v -o FILE`): its arguments, its config, its overrides and every stage's options are accepted."
    from synthsci.cli import build_parser
    from synthsci.core import load_config
    from synthsci.pipeline import check_options, plan
    argv = shlex.split(command, comments=True)
    if argv[0] == "/usr/bin/time": argv = argv[argv.index("-o") + 2:]
    assert argv[0] == ".venv/bin/synthsci" and argv[1] == "run", argv
    args = build_parser().commands["run"].parse_intermixed_args(argv[2:])
    cfg = load_config(ROOT / args.config, args.overrides)
    check_options(cfg, plan(cfg, None, args.stages.split(",") if args.stages else None))


def answers_help(command: list[str], *flags: str):
    def check(cmd, cwd):
        r = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and all(f in r.stdout for f in flags), r.stdout + r.stderr
    return check


def ablations_are_the_makefiles(cmd, cwd):
    "bench/effect.py's ablation names are the Makefile's (one source), and each is one config flag that parses."
    sys.path.insert(0, str(ROOT / "bench"))
    import effect
    flags = effect.ablation_flags()
    named = cmd.split("--ablations ", 1)[1].split()[0].split(",")
    assert sorted(named) == sorted(flags), (named, flags)
    from synthsci.core import load_config
    for flag in flags.values(): load_config(ROOT / "configs" / "effect.yaml", [flag])


def test_the_effect_bench_keeps_what_was_measured_before_for_the_same_full_run(tmp_path, monkeypatch):
    "An ablation measured in an earlier invocation stays in the comparison; one of another full run, or named now, is not taken from before."
    sys.path.insert(0, str(ROOT / "bench"))
    import effect
    monkeypatch.setattr(effect, "ABLATION_SUMMARIES", tmp_path / "abl"); monkeypatch.setattr(effect, "MLGYM_SUMMARY", tmp_path / "mlgym.json")
    (tmp_path / "abl").mkdir()
    for name, rid in [("no_filter", "effect2-no_filter"), ("fewer_tasks", "effect-fewer_tasks")]: (tmp_path / "abl" / f"{name}.json").write_text(json.dumps(dict(run_id=rid)))
    (tmp_path / "mlgym.json").write_text(json.dumps(dict(run_id="effect2-mlgym")))
    names = [*effect.ablation_flags(), "mlgym"]
    assert effect.measured_before("effect2", names, {}) == {"no_filter": tmp_path / "abl" / "no_filter.json", "mlgym": tmp_path / "mlgym.json"}
    assert effect.measured_before("effect2", names, {"no_filter": None, "mlgym": None}) == {}
    assert effect.measured_before("effect", names, {}) == {"fewer_tasks": tmp_path / "abl" / "fewer_tasks.json"}


def dry_run_of_make(target: str, expected: str):
    def check(cmd, cwd):
        r = subprocess.run(["make", "-n", "-o", ".venv/.installed", *target.split()], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and expected in r.stdout, r.stdout + r.stderr
    return check


def effect_bench_needs_a_checkout(cmd, cwd):
    "Run as written in the repository (bench/ is there), HOME in the test's folder: it stops at once, saying the checkout is missing."
    r = run_verbatim(cmd, ROOT, env={"HOME": str(cwd / "home")}, timeout=120)
    assert r.returncode == 2 and "is not an MLGym checkout" in r.stderr, r.stderr


def one_line_error_not_usage(expected: str):
    "Run as written with HOME in the test's folder (no MLGym checkout there): the arguments parse, and the command says what is missing."
    def check(cmd, cwd):
        r = run_verbatim(cmd, cwd, env={"HOME": str(cwd / "home")})
        assert r.returncode == 2 and "usage:" not in r.stderr and expected in r.stderr, r.stderr
    return check


def shell_syntax(cmd, cwd):
    assert subprocess.run(["bash", "-n", "-c", cmd]).returncode == 0


def time_and_config(cmd, cwd):
    config_parses(cmd, cwd)
    if not Path("/usr/bin/time").exists(): pytest.skip("GNU time is not installed here (apt-get install time); the rest of the line parsed")


NOT_RUN = {  # README command -> (why it is not run here, what is checked instead)
    "make quickstart   # set up (venv, packages, bubblewrap) and run the pipeline end to end on the offline defaults":
        ("the whole pipeline: over an hour here (the quickstart section)", dry_run_of_make("quickstart", "synthsci run configs/quickstart.yaml")),
    "make test         # set up and run every test, offline":
        ("every test, this one included", dry_run_of_make("test", "pytest")),
    "export ANTHROPIC_API_KEY=...        # or OPENAI_API_KEY=...":
        ("sets the reader's key", shell_syntax),
    ".venv/bin/synthsci run configs/quickstart.yaml teacher.spec=anthropic:claude-sonnet-4-6 budget_usd=5 run_id=sonnet":
        ("needs an Anthropic key and spends money", config_parses),
    ".venv/bin/synthsci run configs/quickstart.yaml teacher.spec=openai:Qwen3-8B@http://127.0.0.1:8000/v1 run_id=qwen3-8b   # vLLM, Ollama, transformers serve":
        ("needs a Qwen3-8B server on 127.0.0.1:8000", config_parses),
    ".venv/bin/synthsci serve --port 8000":
        ("a server that runs until stopped, on a fixed port other tests may hold (tests/test_real_model.py and tests/test_llm_batch.py drive the same server)",
         answers_help([str(VENV / "bin" / "synthsci"), "serve", "--help"], "--port")),
    ".venv/bin/synthsci run configs/quickstart.yaml teacher.spec=openai:smollm2@http://127.0.0.1:8000/v1 teacher.max_concurrency=1 teacher.timeout_s=900 run_id=smollm2":
        ("needs the server above, and hours of CPU", config_parses),
    ".venv/bin/synthsci mlgym prepare --mlgym-root ~/MLGym                # build what MLGym's helper scripts build (House Price's split)":
        ("needs an MLGym checkout (tests/test_mlgym.py runs the adapter on a fixture checkout)", one_line_error_not_usage("is not an MLGym checkout")),
    ".venv/bin/synthsci mlgym --mlgym-root ~/MLGym --policy local --k 4   # your MLGym checkout, unmodified: every task YAML a row":
        ("needs an MLGym checkout, and hours", one_line_error_not_usage("is not an MLGym checkout")),
    ".venv/bin/synthsci aup mlgym_results/best_attempt.csv --last mlgym_results/best_submission.csv   # directions come with the tables":
        ("reads the tables the mlgym command above writes", one_line_error_not_usage("best_attempt.csv does not exist")),
    "/usr/bin/time -v -o data/summaries/quickstart.time.txt .venv/bin/synthsci run configs/quickstart.yaml":
        ("the whole pipeline: over an hour here", time_and_config),
    "make readme":
        ("test_readme_is_rendered_from_index runs it, in a copy of the working folder", dry_run_of_make("readme", "nbconvert")),
    ".venv/bin/ray start --head --port=6379 --resources='{\"synthsci_sandbox\": N}'":
        ("starts a Ray cluster's daemons, which outlive the command (tests/test_ray_cluster.py starts a three-node cluster with it)",
         answers_help([str(VENV / "bin" / "ray"), "start", "--help"], "--head", "--port")),
    ".venv/bin/ray start --address=HEAD_IP:6379 --resources='{\"synthsci_sandbox\": N}'":
        ("needs a head node", answers_help([str(VENV / "bin" / "ray"), "start", "--help"], "--address")),
    ".venv/bin/synthsci run configs/quickstart.yaml stages.validate.ray_address=auto stages.rollouts.ray_address=auto run_id=onray":
        ("needs the Ray cluster above, and an hour", config_parses),
    "make effect                    # the full loop: tasks, expert trajectories, a fine-tuned SmolLM2, k=3 held-out runs":
        ("hours on 2 cores (bench/effect.py runs it and records it)", dry_run_of_make("effect", "synthsci run configs/effect.yaml")),
    "make effect ABLATE=no_filter   # one ablation, one config flag, as its own run (data/runs/effect-no_filter)":
        ("hours on 2 cores", dry_run_of_make("effect ABLATE=no_filter", "stages.filter.enabled=false")),
    ".venv/bin/python bench/effect.py --ablations no_self_debugging,no_filter,fewer_tasks,no_observation_cut":
        ("runs the effect five times", ablations_are_the_makefiles),
    ".venv/bin/python bench/effect.py --mlgym-root ~/MLGym   # after `synthsci mlgym prepare`: the full run's students on its offline tasks":
        ("needs an MLGym checkout, and an hour", effect_bench_needs_a_checkout),
}

EXPECTED = {  # README command run as written -> (exit status, text its output must hold); the others: 0 and some output
    '.venv/bin/synthsci sandbox --timeout 10 -- python3 -c "import socket; socket.create_connection((\'1.1.1.1\', 53))"   # fails: no network':
        (1, "Network is unreachable"),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A copy of the working folder with a small run in data/runs/quickstart (its first two stages, the scripted teacher)
    and, where the run's rollouts would be, a fixture trajectory (the rollouts take minutes)."""
    tmp = copy_of_the_working_folder(tmp_path_factory.mktemp("readme"), "configs", "data", "synthsci", "Makefile", "settings.ini", "setup.py")
    (tmp / "home").mkdir()
    r = subprocess.run([str(tmp / ".venv" / "bin" / "synthsci"), "run", "configs/quickstart.yaml", "--stages", "topics,proposals"],
                       cwd=tmp, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    traj = tmp / "data" / "runs" / "quickstart" / "06_rollouts" / "traj" / "fixture" / "fixture.traj"
    traj.parent.mkdir(parents=True)
    shutil.copy(FIXTURE_TRAJ, traj)
    return tmp


def test_every_command_is_run_or_named():
    "No README command is skipped silently: each is run, or named in NOT_RUN; every NOT_RUN entry is still in the README."
    cmds = commands(README.read_text())
    assert len(cmds) >= 20
    assert [c for c in NOT_RUN if c not in cmds] == []
    assert [c for c in EXPECTED if c not in cmds] == []


@pytest.mark.parametrize("command", [c for c in commands(README.read_text()) if c in NOT_RUN])
def test_a_command_not_run_parses(command, folder):
    NOT_RUN[command][1](command, folder)


def test_every_other_command_runs_as_written(folder):
    "In README order, from the copy's root, as bash runs them."
    ran = []
    for command in commands(README.read_text()):
        if command in NOT_RUN: continue
        r = run_verbatim(command, folder, timeout=600)
        status, text = EXPECTED.get(command, (0, ""))
        assert r.returncode == status and text in r.stdout + r.stderr and (r.stdout + r.stderr).strip(), \
            f"{command}\nexit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        ran.append(command)
    assert len(ran) >= 10
    assert (folder / "traj.html").exists() and (folder / "data" / "runs" / "seed3" / "01_topics").is_dir()
    assert list(json.loads((folder / "data" / "summaries" / "quickstart.json").read_text())["stages"]) == ["topics", "proposals"]
    assert (folder / "data" / "summaries" / "plan_paper" / "plan.md").read_text().startswith("# Plan: configs/paper.yaml from data/runs/quickstart")


def test_yaml_blocks_are_valid_configs(tmp_path):
    "A YAML block in the README is a run config (or part of one) that synthsci accepts."
    from synthsci.core import load_config
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)
    assert blocks
    for i, b in enumerate(blocks):
        (tmp_path / f"{i}.yaml").write_text(b)
        load_config(tmp_path / f"{i}.yaml")
