"""AUP as reference/mlgym.md defines it: every rule pinned on small tables computed by hand, the CLI's output, and
MLGym's published tables (checked only against what can be derived by hand from them: the paper's own AUP table is
not among our references)."""
import csv, io, json, math
import numpy as np
from pathlib import Path
import pytest
from synthsci.core import EvalResult, SynthsciError
from synthsci.aup import (aup, aup_main, aup_report, performance_profiles, read_scores, score_tables, task_ratios,
                          tau_max_of, read_directions, minimize_of, drop_infeasible, AUPWarning, MLGYM_MINIMIZE)

DATA = Path(__file__).resolve().parents[1] / "data" / "mlgym"
M = ["baseline", "m1", "m2"]
# Task A: higher is better; m2 is below the baseline. Task B: lower is better; m1 has no result.
TABLE = {"A": {"baseline": 0.5, "m1": 1.0, "m2": 0.4}, "B": {"baseline": 10.0, "m1": None, "m2": 5.0}}
H = 0.5 / 499  # the grid step when tau_max = 0.5


def test_below_baseline_is_infeasible_and_gets_penalty():
    r, worst = task_ratios("A", TABLE["A"], M)
    assert worst == 2.0                       # the baseline, 1.0 / 0.5
    assert r == {"baseline": 2.0, "m1": 1.0, "m2": pytest.approx(2.1)}
    # equal to the baseline is feasible
    r, _ = task_ratios("A", {"baseline": 0.5, "m1": 1.0, "m2": 0.5}, M)
    assert r["m2"] == 2.0


def test_negative_score_is_never_feasible():
    # m2 beats the negative baseline but is negative itself: infeasible, like the baseline
    r, worst = task_ratios("C", {"baseline": -0.25, "m1": 0.1, "m2": -0.1}, M)
    assert worst == 1.0 and r == {"baseline": 1.05, "m1": 1.0, "m2": 1.05}
    with pytest.raises(SynthsciError, match="no method"):
        task_ratios("D", {"baseline": -1.0, "m1": -0.5}, ["baseline", "m1"])


def test_missing_method_gets_penalty_whether_empty_or_absent():
    r1, _ = task_ratios("B", {"baseline": 10.0, "m1": math.nan, "m2": 5.0}, M, minimize=True)
    r2, _ = task_ratios("B", {"baseline": 10.0, "m2": 5.0}, M, minimize=True)
    assert r1 == r2 and r1["m1"] == pytest.approx(2.1)
    # a method with no result anywhere is still compared (and ranks last)
    p = performance_profiles({"A": {"baseline": 1.0, "m1": 2.0, "ghost": None}})
    assert p.methods == ["baseline", "m1", "ghost"] and p.aup["ghost"] < p.aup["baseline"] < p.aup["m1"]


def test_lower_is_better_ratio_is_score_over_best():
    r, worst = task_ratios("B", {"baseline": 10.0, "m1": 8.0, "m2": 5.0}, M, minimize=True)
    assert r == {"baseline": 2.0, "m1": 1.6, "m2": 1.0} and worst == 2.0
    # the same numbers read as higher-is-better make the baseline best
    r, _ = task_ratios("B", {"baseline": 10.0, "m1": 8.0, "m2": 5.0}, M)
    assert r["baseline"] == 1.0 and r["m1"] == r["m2"] == pytest.approx(1.05)


def test_tau_max_rounds_up_to_one_decimal_over_both_tables():
    assert tau_max_of(TABLE, minimize=["B"]) == 0.5          # ceil(2.1) = 3, log10(3) = 0.477 -> 0.5
    assert tau_max_of({"A": {"baseline": 0.1, "m1": 0.94}}) == 1.0   # ceil(9.87) = 10: exactly 1.0, not 1.1
    assert tau_max_of({"A": {"baseline": 0.1, "m1": 1.0}}) == 1.1    # ceil(10.5) = 11, log10(11) = 1.041 -> 1.1
    other = {"A": {"baseline": 0.1, "m1": 0.94, "m2": 0.1}, "B": {"baseline": 1.0, "m1": 1.0, "m2": 1.0}}
    assert tau_max_of(TABLE, other, minimize=["B"]) == 1.0   # the larger of the two tables


def test_left_riemann_sum_over_500_points_by_hand():
    p = performance_profiles(TABLE, minimize=["B"])
    assert len(p.tau) == 500 and p.tau[0] == 0 and p.tau[-1] == 0.5
    # baseline: log ratio 0.30103 on both tasks; grid points 301..498 of the left sum are at or past it: 198 of 499.
    # A right sum would count 301..499 (199 h = 0.199), a trapezoid 198.5 h: both differ at 3 decimals.
    assert p.aup["baseline"] == round(198 * H, 3) == 0.198
    # m1: best on A (ratio 1), log10(2.1) = 0.32222 on B: 0.5 on points 0..321, 1 on 322..498
    assert p.aup["m1"] == p.aup["m2"] == round((322 * 0.5 + 177) * H, 3) == 0.339
    assert list(p.rho["m1"][:2]) == [0.5, 0.5] and p.rho["baseline"][300] == 0 and p.rho["baseline"][301] == 1


def test_best_everywhere_scores_tau_max_and_values_have_three_decimals():
    p = performance_profiles({"A": {"baseline": 1.0, "m1": 3.0}, "B": {"baseline": 2.0, "m1": 7.0}})
    assert p.aup["m1"] == p.tau_max
    unrounded = sum(p.rho["baseline"][:-1]) * (p.tau_max / 499)
    assert unrounded != round(unrounded, 3) and p.aup["baseline"] == round(unrounded, 3)


def test_aup_is_relative_to_the_set_of_methods():
    before = aup(TABLE, minimize=["B"])
    more = {"A": {**TABLE["A"], "m3": 2.0}, "B": {**TABLE["B"], "m3": 20.0}}
    after = aup(more, minimize=["B"])
    assert after["m1"] != before["m1"] and after["baseline"] != before["baseline"]


def test_user_errors_are_one_line():
    with pytest.raises(SynthsciError, match="not in the table"):
        aup(TABLE, minimize=["b"])
    with pytest.raises(SynthsciError, match="no baseline column 'base'"):
        aup(TABLE, minimize=["B"], baseline="base")
    with pytest.raises(SynthsciError, match="infinite"):
        aup({"A": {"baseline": 0.0, "m1": 1.0}})
    with pytest.raises(SynthsciError, match="same methods"):
        aup_report(TABLE, {"A": TABLE["A"]}, ["B"])


def test_eval_results_make_best_and_last_tables():
    res = [EvalResult(id="1", task_id="A", method="baseline", best_attempt=0.5, best_submission=0.5),
           EvalResult(id="2", task_id="A", method="m1", best_attempt=0.9, best_submission=None)]
    best, last = score_tables(res)
    assert aup(best)["m1"] > aup(best)["baseline"]
    assert aup(last)["m1"] < aup(last)["baseline"]          # no final submission: infeasible


def _write(tmp_path, name, rows):
    p = tmp_path / name
    p.write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return str(p)


def test_cli_prints_csv_and_names_the_methods(tmp_path, capsys):
    best = _write(tmp_path, "best.csv", [["Task", "baseline", "m1", "m2"], ["A", 0.5, 1.0, 0.4], ["B", 10, "", 5]])
    # in the last table m1 is far ahead on A: its worst ratio (5) raises tau_max to log10(ceil(5.25)) = 0.78 -> 0.8
    last = _write(tmp_path, "last.csv", [["Task", "baseline", "m1", "m2"], ["A", 0.5, 2.5, 0.5], ["B", 10, "", 5]])
    assert aup_main([best, "--minimize", "B"]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [["method", "best_aup"], ["baseline", "0.198"], ["m1", "0.339"], ["m2", "0.339"]]
    assert "methods compared (3): baseline, m1, m2" in err and "tau_max = 0.5" in err
    assert aup_main([best, "--last", last, "--minimize", "B"]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["method", "best_aup", "last_aup"] and [r[0] for r in rows[1:]] == ["baseline", "m1", "m2"]
    assert rows[1][1] != "0.198" and "tau_max = 0.8" in err   # tau_max now spans both tables
    assert all(len(v.split(".")[1]) == 3 for r in rows[1:] for v in r[1:])


def test_cli_errors_exit_2_with_a_message(tmp_path, capsys):
    best = _write(tmp_path, "best.csv", [["Task", "baseline", "m1"], ["A", 0.5, 1.0]])
    assert aup_main([best, "--minimize", "3-SAT"]) == 2
    assert "error: lower-is-better task(s) ['3-SAT']" in capsys.readouterr().err
    assert aup_main([str(tmp_path / "none.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_mlgym_published_tables_by_hand():
    best, last = read_scores(DATA / "mlgym_v1_best_attempt_scores.csv"), read_scores(DATA / "mlgym_v1_best_submission_scores.csv")
    assert len(best) == 13 and set(MLGYM_MINIMIZE) <= set(best)
    rep = aup_report(best, last, MLGYM_MINIMIZE)
    # the widest task is Blotto: baseline negative (infeasible), worst feasible 0.043 (llama), best 0.576 (claude):
    # ceil(1.05 * 0.576 / 0.043) = 15, log10(15) = 1.176 -> 1.2
    assert rep["tau_max"] == 1.2
    r = rep["best"].ratios
    assert r["Blotto"]["baseline"] == pytest.approx(1.05 * 0.576 / 0.043)
    # Mountain Car: gpt4o2 is negative, llama below the baseline: both get 1.05 x the baseline's ratio 96.335 / 33.794
    assert r["Mountain Car Continuous"]["gpt4o2"] == r["Mountain Car Continuous"]["llama3-405b-tools"] == pytest.approx(1.05 * 96.335 / 33.794)
    # Language Modeling is lower-is-better and llama has no result
    assert r["Language Modeling"]["gpt-o1"] == 1.0
    assert r["Language Modeling"]["llama3-405b-tools"] == pytest.approx(1.05 * 4.673 / 3.966)
    assert r["3-SAT"]["gpt-o1"] == 1.0 and r["3-SAT"]["baseline"] == pytest.approx(16.158 / 13.652)


def test_cli_aup_of_a_small_table_worked_out_on_paper(tmp_path, capsys):
    """Every number below is worked out by hand, not by the code (a hand-written table).
    Task A, higher is better: baseline 1, m1 10, m2 2. Task B, lower is better: baseline 4, m1 no result, m2 1.
    Ratios to the best: A: m1 10/10 = 1, m2 10/2 = 5, baseline 10/1 = 10; B: m2 1/1 = 1, baseline 4/1 = 4, and m1,
    missing, 1.05 x the worst feasible ratio (4) = 4.2.
    tau_max: ceil(1.05 x 10) = 11 (A) beats ceil(1.05 x 4) = 5 (B); log10(11) = 1.041 -> 1.1. Grid step h = 1.1 / 499.
    A task with log10 ratio x > 0 counts at the grid points i >= x / h = 453.64 x, of the 499 points 0..498 of the left
    Riemann sum; x = 0 counts at all 499:
      baseline: A x = 1       -> i >= 454 (453.64): 45 points;  B x = log10 4 = 0.60206   -> i >= 274 (273.12): 225 points
      m1:       A x = 0       -> 499 points;                    B x = log10 4.2 = 0.62325 -> i >= 283 (282.73): 216 points
      m2:       A x = log10 5 = 0.69897 -> i >= 318 (317.08): 181 points;  B x = 0 -> 499 points
    AUP = h x (points on A + points on B) / 2 tasks:
      baseline 1.1 x 270 / 998 = 0.29760 -> 0.298;  m1 1.1 x 715 / 998 = 0.78808 -> 0.788;  m2 1.1 x 680 / 998 = 0.74950 -> 0.749"""
    best = _write(tmp_path, "best.csv", [["Task", "baseline", "m1", "m2"], ["A", 1, 10, 2], ["B", 4, "", 1]])
    assert aup_main([best, "--minimize", "B"]) == 0
    out, err = capsys.readouterr()
    assert out == "method,best_aup\nbaseline,0.298\nm1,0.788\nm2,0.749\n" and "tau_max = 1.1" in err
    p = performance_profiles(read_scores(best), minimize=["B"])
    assert p.ratios == {"A": {"baseline": 10.0, "m1": 1.0, "m2": 5.0}, "B": {"baseline": 4.0, "m1": pytest.approx(4.2), "m2": 1.0}}
    assert [p.rho["m2"][i] for i in (0, 317, 318, 498)] == [0.5, 0.5, 1.0, 1.0]          # A joins at point 318
    assert [p.rho["baseline"][i] for i in (273, 274, 453, 454)] == [0.0, 0.5, 0.5, 1.0]   # B at 274, A at 454


# --- directions (directions.json, --minimize, --maximize) and tasks where no method is feasible ---------------------

# A and B are lower-is-better when the directions say so; C is higher-is-better. Minimizing A changes every AUP.
HEAD = ["Task", "baseline", "m1", "m2"]
BEST3 = [HEAD, ["A", 10, 5, 8], ["B", 10, "", 5], ["C", 0.5, 1.0, 0.4]]
LAST3 = [HEAD, ["A", 10, 6, 8], ["B", 10, "", 7], ["C", 0.5, 0.6, 0.4]]
# a task where no method is feasible: the baseline is negative, m1 is negative too and m2 has no score
BLOTTO = ["Blotto", -0.25, -0.3, ""]


def _table(rows):
    return {r[0]: dict(zip(HEAD[1:], r[1:])) for r in rows[1:]}


def _cli(capsys, *argv):
    rc = aup_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _csv_of(rep):
    "What the CLI prints on stdout for a report."
    rows = ["method,best_aup" + (",last_aup" if rep["last"] else "")]
    rows += [f"{m},{rep['best'].aup[m]:.3f}" + (f",{rep['last'].aup[m]:.3f}" if rep["last"] else "") for m in rep["methods"]]
    return "\n".join(rows) + "\n"


def test_minimize_repeats_and_lists_minimize_every_task(tmp_path, capsys):
    best, last = _write(tmp_path, "best.csv", BEST3), _write(tmp_path, "last.csv", LAST3)
    rc1, repeated, _ = _cli(capsys, best, "--last", last, "--minimize", "A", "--minimize", "B")
    rc2, listed, err = _cli(capsys, best, "--last", last, "--minimize", "A", "B")
    assert rc1 == rc2 == 0 and repeated == listed
    assert repeated == _csv_of(aup_report(_table(BEST3), _table(LAST3), ["A", "B"]))
    assert "lower is better: A, B" in err
    _, only_last, _ = _cli(capsys, best, "--last", last, "--minimize", "B")   # what the old parser kept of the repeats
    assert only_last == _csv_of(aup_report(_table(BEST3), _table(LAST3), ["B"])) and only_last != repeated


def test_minimize_names_a_task_of_neither_table(tmp_path, capsys):
    best, last = _write(tmp_path, "best.csv", BEST3), _write(tmp_path, "last.csv", LAST3)
    rc, out, err = _cli(capsys, best, "--last", last, "--minimize", "A", "Zed")
    assert rc == 2 and out == "" and err == "error: lower-is-better task(s) ['Zed'] are not in the tables; tasks are: A, B, C\n"
    rc, _, err = _cli(capsys, best, "--maximize", "Zed")
    assert rc == 2 and err == "error: higher-is-better task(s) ['Zed'] are not in the table; tasks are: A, B, C\n"
    rc, _, err = _cli(capsys, best, "--minimize", "A", "--maximize", "A")
    assert rc == 2 and "['A'] are both minimized and maximized" in err and err.count("\n") == 1


def test_directions_json_beside_the_tables_equals_the_flags(tmp_path, capsys):
    flags = tmp_path / "flags"; flags.mkdir()
    side = tmp_path / "side"; side.mkdir()
    f_best, f_last = _write(flags, "best_attempt.csv", BEST3), _write(flags, "best_submission.csv", LAST3)
    s_best, s_last = _write(side, "best_attempt.csv", BEST3), _write(side, "best_submission.csv", LAST3)
    # the adapter's sidecar: every task's direction, and a task that has no row (ignored)
    (side / "directions.json").write_text('{"A": "min", "B": "min", "C": "max", "Unscored": "min"}')
    _, by_flags, err = _cli(capsys, f_best, "--last", f_last, "--minimize", "A", "B")
    assert "directions: no directions.json beside" in err
    rc, by_file, err = _cli(capsys, s_best, "--last", s_last)
    assert rc == 0 and by_file == by_flags
    assert f"directions: from {side / 'directions.json'}" in err and "ignored: Unscored" in err and "lower is better: A, B" in err
    # the API reads the same file
    dirs = read_directions(side / "directions.json")
    assert minimize_of(dirs, _table(BEST3)) == ["A", "B"]
    assert _csv_of(aup_report(read_scores(s_best), read_scores(s_last), minimize_of(dirs, _table(BEST3)))) == by_flags
    # --directions names a file elsewhere
    _, by_option, _ = _cli(capsys, f_best, "--last", f_last, "--directions", side / "directions.json")
    assert by_option == by_flags


def test_flags_add_to_and_override_the_sidecar(tmp_path, capsys):
    side = tmp_path / "side"; side.mkdir()
    s_best = _write(side, "best.csv", BEST3)
    (side / "directions.json").write_text('{"A": "min", "B": "max"}')
    ref = tmp_path / "ref"; ref.mkdir()
    r_best = _write(ref, "best.csv", BEST3)
    _, only_b, _ = _cli(capsys, r_best, "--minimize", "B")
    _, a_and_b, _ = _cli(capsys, r_best, "--minimize", "A", "B")
    rc, out, err = _cli(capsys, s_best, "--maximize", "A", "--minimize", "B")   # --maximize overrides the file's "min"
    assert rc == 0 and out == only_b and "--maximize: A" in err and "lower is better: B;" in err
    _, out, _ = _cli(capsys, s_best, "--minimize", "B")                        # --minimize overrides its "max"
    assert out == a_and_b
    assert minimize_of({"A": "min", "B": "max"}, maximize=["A"], minimize=["B"]) == ["B"]


def test_malformed_sidecar_is_a_one_line_error_naming_it(tmp_path, capsys):
    best = _write(tmp_path, "best.csv", BEST3)
    side = tmp_path / "directions.json"
    for text, says in (('["A", "B"]', "not a JSON list"), ('{"A": "minimize"}', 'not {"A": "minimize"}'),
                       ('{"A": null}', 'not {"A": null}'), ('{"A": "min",', "not valid JSON")):
        side.write_text(text)
        rc, out, err = _cli(capsys, best)
        assert rc == 2 and out == "" and err.startswith(f"error: {side}: ") and says in err and err.count("\n") == 1, err
        with pytest.raises(SynthsciError, match="directions.json"):
            read_directions(side)
    rc, _, err = _cli(capsys, best, "--directions", tmp_path / "none.json")
    assert rc == 2 and "does not exist" in err


def test_task_with_no_feasible_method_is_left_out_with_a_warning(tmp_path, capsys):
    with_blotto = BEST3 + [BLOTTO]
    with pytest.warns(AUPWarning, match="'Blotto'"):
        rep = aup_report(_table(with_blotto), _table(LAST3 + [BLOTTO]), ["A", "B"])
    without = aup_report(_table(BEST3), _table(LAST3), ["A", "B"])
    assert rep["tasks"] == ["A", "B", "C"] and list(rep["dropped"]) == ["Blotto"] and rep["best"].dropped == rep["dropped"]
    assert "no method is feasible" in rep["dropped"]["Blotto"] and "baseline -0.25" in rep["dropped"]["Blotto"]
    assert (rep["best"].aup, rep["last"].aup, rep["tau_max"]) == (without["best"].aup, without["last"].aup, without["tau_max"])
    with pytest.warns(AUPWarning, match="'Blotto'"):
        assert aup(_table(with_blotto), ["A", "B"]) == aup(_table(BEST3), ["A", "B"])
    # the CLI: exit 0, the same CSV as without the row, and the task named on stderr
    best, last = _write(tmp_path, "best.csv", with_blotto), _write(tmp_path, "last.csv", LAST3 + [BLOTTO])
    rc, out, err = _cli(capsys, best, "--last", last, "--minimize", "A", "B")
    assert rc == 0 and out == _csv_of(without)
    assert "tasks compared (3 of 4): A, B, C" in err and "warning: task 'Blotto' left out: no method is feasible" in err


def test_task_infeasible_in_one_table_is_left_out_of_both():
    # Blotto: m1 beats the negative baseline in the best attempt, but has no final submission
    best = {**_table(BEST3), "Blotto": {"baseline": -0.25, "m1": 0.1, "m2": None}}
    last = {**_table(LAST3), "Blotto": {"baseline": -0.25, "m1": None, "m2": None}}
    with pytest.warns(AUPWarning):
        rep = aup_report(best, last, ["A", "B"])
    assert rep["best"].tasks == rep["last"].tasks == ["A", "B", "C"]
    assert "best submission (baseline -0.25)" in rep["dropped"]["Blotto"] and "best attempt" not in rep["dropped"]["Blotto"]


def test_no_task_left_is_a_one_line_error(tmp_path, capsys):
    rows = [HEAD, BLOTTO, ["Other", -1, "", -0.5]]
    with pytest.raises(SynthsciError, match="no task has a feasible method") as e:
        aup_report(_table(rows), _table(rows))
    assert "\n" not in str(e.value) and "'Blotto'" in str(e.value) and "'Other'" in str(e.value)
    rc, out, err = _cli(capsys, _write(tmp_path, "best.csv", rows))
    assert rc == 2 and out == "" and err.startswith("error: no task has a feasible method") and err.count("\n") == 1


def test_mlgym_published_tables_unchanged_by_every_way_of_giving_directions(tmp_path, capsys):
    best, last = DATA / "mlgym_v1_best_attempt_scores.csv", DATA / "mlgym_v1_best_submission_scores.csv"
    rc, want, err = _cli(capsys, best, "--last", last, "--minimize", "3-SAT", "--minimize", "Language Modeling")
    assert rc == 0 and "tasks compared (13 of 13)" in err and "warning" not in err
    assert want.splitlines()[0] == "method,best_aup,last_aup" and len(want.splitlines()) == 7      # the baseline and five models
    # the same tables as the adapter would leave them: a sidecar with every task's direction
    (tmp_path / "best_attempt.csv").write_text(best.read_text())
    (tmp_path / "best_submission.csv").write_text(last.read_text())
    dirs = {t: "min" if t in MLGYM_MINIMIZE else "max" for t in read_scores(best)}
    (tmp_path / "directions.json").write_text(__import__("json").dumps(dirs))
    rc, out, _ = _cli(capsys, tmp_path / "best_attempt.csv", "--last", tmp_path / "best_submission.csv")
    assert rc == 0 and out == want
    rep = aup_report(read_scores(best), read_scores(last), MLGYM_MINIMIZE)
    assert rep["dropped"] == {} and rep["minimize"] == ["3-SAT", "Language Modeling"] and _csv_of(rep) == want


# --- evaluation statistics: scored submissions, format errors, the paired bootstrap (hand-written results) -----------

from synthsci.aup import (AUPOptions, STATS_FILE, eval_stats, identity_draw, mean_difference, resamples, run_aup)


def _runs(t, m, vals, subs=None, exits=None):
    subs = vals if subs is None else subs
    return EvalResult(id=f"{m}-{t}", task_id=t, method=m, runs=len(vals), best_attempt=max((v for v in vals if v is not None), default=None),
                      best_submission=max((v for v in subs if v is not None), default=None),
                      scores=[{"run": f"{m}-{t}-{i}", "best_attempt": v, "submission": s} for i, (v, s) in enumerate(zip(vals, subs))],
                      exit_statuses=exits or ["submitted" if s is not None else "autosubmission (max_steps)" for s in subs])


def _base(t, v=1.0):
    return EvalResult(id=f"baseline-{t}", task_id=t, method="baseline", runs=1, best_attempt=v, best_submission=v, scores=[{"m": v}])


def test_bootstrap_interval_excludes_zero_when_every_task_gains():
    """Baseline 1.0 (higher is better) on three tasks, k = 3. The base student scores 1.0 on every run (normalized 0);
    the fine-tuned 1.1, 1.2, 1.3 on every run of tasks a, b, c (normalized 0.1, 0.2, 0.3). Every resample's mean of the
    per-task differences is a mean of three of {0.1, 0.2, 0.3}: at least 0.1, at most 0.3; the estimate is 0.2."""
    ev = [r for t, g in zip("abc", (1.1, 1.2, 1.3)) for r in (_base(t), _runs(t, "base", [1.0] * 3), _runs(t, "finetuned", [g] * 3))]
    c = eval_stats(ev, {}, AUPOptions(n_resamples=400, seed=3))["comparison"]
    s = c["score_difference"]["best_attempt"]
    assert s["estimate"] == pytest.approx(0.2) and 0.1 - 1e-9 <= s["low"] < s["high"] <= 0.3 + 1e-9 and s["excludes_zero"] is True
    assert c["k_min"] == 3 and "note" not in c and c["tasks"] == ["a", "b", "c"]
    # AUP: the fine-tuned student is the best on every task (ratio 1), the base student ties the baseline: the difference is positive in every resample
    a = c["aup_difference"]["best_attempt"]
    assert a["estimate"] > 0 and a["low"] > 0 and a["excludes_zero"] is True


def test_bootstrap_interval_includes_zero_and_its_quantiles_by_hand():
    """k = 1, two tasks, baseline 1.0: on p the fine-tuned student scores 2.0 (normalized +1) and the base 1.0 (0); on q
    the fine-tuned 0.0 (-1) and the base 1.0 (0). Per-task differences +1 and -1; a resample of two tasks has mean -1
    (probability 1/4), 0 (1/2) or +1 (1/4). The 95 % interval is [-1, 1] (it includes zero); the 40 % interval, the 30th
    and 70th percentiles, is [0, 0]."""
    ev = [_base("p"), _runs("p", "base", [1.0]), _runs("p", "finetuned", [2.0]),
          _base("q"), _runs("q", "base", [1.0]), _runs("q", "finetuned", [0.0])]
    wide = eval_stats(ev, {}, AUPOptions(n_resamples=1500, seed=0, confidence=0.95))["comparison"]
    s = wide["score_difference"]["best_attempt"]
    assert (s["estimate"], s["low"], s["high"], s["excludes_zero"]) == (0.0, -1.0, 1.0, False)
    assert "fewer than 3 runs per task" in wide["note"]
    narrow = eval_stats(ev, {}, AUPOptions(n_resamples=1500, seed=0, confidence=0.4))["comparison"]["score_difference"]["best_attempt"]
    assert (narrow["low"], narrow["high"]) == (0.0, 0.0)


def test_bootstrap_matches_scipy_when_each_task_has_one_run():
    "With one run per method and task the within-task draw is the identity: the statistic is a plain bootstrap of the mean of the differences."
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    d = rng.normal(0.1, 0.2, 15)
    z = {f"t{i}": {"finetuned": np.array([v]), "base": np.array([0.0])} for i, v in enumerate(d)}
    runs = {t: {"finetuned": 1, "base": 1} for t in z}
    ours = np.array([mean_difference(z, draw, "finetuned", "base") for draw in resamples(runs, 6000, seed=1)])
    lo, hi = np.quantile(ours, [0.05, 0.95])
    ref = stats.bootstrap((d,), np.mean, confidence_level=0.9, n_resamples=6000, method="percentile", random_state=2).confidence_interval
    assert mean_difference(z, identity_draw(runs), "finetuned", "base") == pytest.approx(d.mean())
    assert lo == pytest.approx(ref.low, abs=0.01) and hi == pytest.approx(ref.high, abs=0.01)


def test_within_task_runs_are_resampled():
    "One task, so the task draw is fixed: the interval's width comes from the fine-tuned student's three different runs alone."
    ev = [_base("a"), _runs("a", "base", [1.0] * 3), _runs("a", "finetuned", [1.0, 1.5, 2.0])]
    s = eval_stats(ev, {}, AUPOptions(n_resamples=2000, seed=0))["comparison"]["score_difference"]["best_attempt"]
    # normalized runs 0, 0.5, 1: a resample's mean is a mean of three draws, between 0 and 1, all three 0 with probability 1/27
    assert s["estimate"] == pytest.approx(0.5) and s["low"] < 0.5 < s["high"] and 0 <= s["low"] and s["high"] <= 1


def _write_traj(root, method, run_id, format_errors, api_calls):
    p = root / method / "traj" / run_id / f"{run_id}.traj"
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps({"trajectory": [], "info": {"model_stats": {"format_errors": format_errors, "api_calls": api_calls}}}))


def test_the_stage_writes_the_statistics(tmp_path):
    """A run folder written by hand as the evaluate stage writes it: task `m` lower-is-better (rmse, baseline 10), k = 3.
    The base student's runs: one submits 9, one has no submission (format errors ended it), one submits 11; the fine-tuned
    student submits 8, 8, 9. Format errors from the .traj files: base 2 + 3 + 0 of 6 + 6 + 5 turns, fine-tuned 0 of 15."""
    from synthsci.core import Run, load_config, write_jsonl
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=r", "stages.aup.n_resamples=200", "stages.aup.seed=4"])
    run = Run("r", tmp_path)
    ev = [_base("m", 10.0), _runs("m", "base", [9.0, 10.0, 11.0], [9.0, None, 11.0], ["submitted", "autosubmission (exit_format)", "submitted"]),
          _runs("m", "finetuned", [8.0, 8.0, 9.0])]
    for r in ev: write_jsonl([r], run.unit_path("10_eval", r.id))
    (run.path / "10_eval" / "tasks.json").write_text(json.dumps({"directions": {"m": "min"}}))
    for i, (fe, calls) in enumerate([(2, 6), (3, 6), (0, 5)]): _write_traj(run.path / "10_eval" / "runs", "base", f"base-m-{i}", fe, calls)
    for i in range(3): _write_traj(run.path / "10_eval" / "runs", "finetuned", f"finetuned-m-{i}", 0, 5)
    out = run_aup(cfg, progress=False)
    st = json.loads((out / STATS_FILE).read_text())
    b, f = st["methods"]["base"], st["methods"]["finetuned"]
    assert (b["scored_submission_share"], b["format_errors"], b["turns"], b["format_error_turn_share"]) == (2 / 3, 5, 17, 5 / 17)
    assert (b["format_error_run_share"], b["exit_format_share"]) == (2 / 3, 1 / 3)
    assert (f["scored_submission_share"], f["format_error_turn_share"], f["format_error_run_share"]) == (1.0, 0.0, 0.0)
    assert st["methods"]["baseline"]["aup"]["best_attempt"] is not None and "note" in st["methods"]["baseline"]
    c = st["comparison"]
    # best submission, normalized by the baseline 10 (lower is better): base (0.1 + -1 + -0.1) / 3 = -1/3; fine-tuned (0.2 + 0.2 + 0.1) / 3 = 1/6
    assert c["per_task"]["best_submission"]["m"]["difference"] == pytest.approx(1 / 6 + 1 / 3)
    assert c["score_difference"]["best_submission"]["estimate"] == pytest.approx(0.5) and (c["n_resamples"], c["seed"]) == (200, 4)
    manifest = json.loads((run.path / "manifest.json").read_text())["stages"]["11_aup"]
    assert manifest["stats"] == STATS_FILE and manifest["comparison"]["score_difference"] == c["score_difference"]


def test_stage_options_are_checked(tmp_path):
    from synthsci.core import load_config
    for bad, says in (("stages.aup.confidence=1.5", "confidence must be between 0 and 1"), ("stages.aup.normalize=z", "normalize must be one of"),
                      ("stages.aup.n_resamples=0", "n_resamples must be >= 1")):
        with pytest.raises(SynthsciError, match=says):
            run_aup(load_config(overrides=[f"runs_dir={tmp_path}", "run_id=r", bad]), progress=False)


def test_format_errors_are_each_methods_own_when_run_ids_repeat(tmp_path):
    "Every method runs the same run ids (task-s0...): base's format errors must not be read from the fine-tuned student's files."
    from synthsci.aup import method_stats, traj_index
    from synthsci.core import EvalResult
    def res(method, fe):
        return EvalResult(id=f"eval-{method}", parent_id="t", task_id="t", method=method, runs=2,
                          scores=[{"run": f"t-s{i}", "best_attempt": None, "submission": None, "format_errors": fe, "turns": 4} for i in range(2)],
                          exit_statuses=["submission_not_found (exit_format)"] * 2)
    base, tuned = method_stats([res("base", 3)], {}), method_stats([res("finetuned", 0)], {})
    assert (base["format_errors"], base["format_error_turn_share"], base["format_error_run_share"]) == (6, 0.75, 1.0)
    assert (tuned["format_errors"], tuned["format_error_run_share"]) == (0, 0.0)
    for m in ("base", "finetuned"):   # older records: the same run id under two methods' folders is ambiguous, so not read
        (tmp_path / m / "traj" / "t-s0").mkdir(parents=True)
        (tmp_path / m / "traj" / "t-s0" / "t-s0.traj").write_text('{"info": {"model_stats": {"format_errors": 1, "api_calls": 1}}}')
    assert traj_index(tmp_path) == {}
