"""Figures: the reference figures from data/, the paper's numbers and their sources, a run's figures drawn from small
hand-made records (EvalResult, Trajectory, a run manifest), and the figures stage."""
import csv, json
from pathlib import Path
import pytest
from synthsci import plots
from synthsci.aup import aup
from synthsci.core import (EvalResult, Run, Step, Task, Topic, Trajectory, ValidationReport, SynthsciError, load_config, write_jsonl)
from synthsci.plots import (FigureSet, draw_reference_figures, draw_run_figures, figures_main, funnel_counts, no_score_reason,
                            plot_funnel, plot_paper_results, plot_score_over_steps, plot_stage_costs, plot_task_scores,
                            plot_trajectory_lengths, read_rows, run_figures, task_label)

DATA = Path(__file__).resolve().parents[1] / "data"
REFERENCE = ["mlgym_profiles", "mlgym_aup", "paper_results", "paper_pipeline"]


def _traj(i, task, n, scored, status="submitted"):
    steps = [Step(action="validate", score={"acc": 0.1 * k}) if k in scored else Step(action="ls") for k in range(n)]
    return Trajectory(id=f"tr{i}", task_id=task, exit_status=status, steps=steps)


def _run(tmp_path) -> Path:
    "A run folder written the way the stages write it: one JSONL file per unit, and the manifest."
    run = Run("demo", tmp_path / "runs")
    write_jsonl([Topic(id=f"t{i}", area="a", name="n") for i in range(10)], run.unit_path("01_topics", "u0"))
    write_jsonl([Task(id=f"k{i}", name=f"task{i}", path=".", dataset_id="iris", metric="loss" if i == 1 else "acc",
                      direction="min" if i == 1 else "max") for i in range(4)], run.unit_path("04_tasks", "u0"))
    write_jsonl([ValidationReport(id=f"v{i}", task_id=f"k{i}", passed=i != 3) for i in range(4)], run.unit_path("05_validated", "u0"))
    trajs = [_traj(i, f"k{i % 3}", 3 + i, [1, 2 + i]) for i in range(9)]
    write_jsonl(trajs[:5], run.unit_path("06_rollouts", "u0")); write_jsonl(trajs[5:], run.unit_path("06_rollouts", "u1"))
    write_jsonl(trajs[:4], run.unit_path("07_filtered", "u0"))
    scores = {"k0": (0.5, 0.6, 0.8), "k1": (2.0, 1.5, 1.0), "k2": (0.3, None, 0.4)}
    write_jsonl([EvalResult(id=f"e{t}{m}", task_id=t, method=m, best_attempt=v, best_submission=v)
                 for t, vs in scores.items() for m, v in zip(("baseline", "base", "sft"), vs)], run.unit_path("10_eval", "u0"))
    run.update_stage("01_topics", wall_s=1.5, cost_usd=0.01)
    run.update_stage("06_rollouts", wall_s=40.0, cost_usd=0.2)
    return run.path


def test_paper_numbers_carry_sources_and_agree_with_each_other():
    for name in ("results", "pipeline"):
        rows = read_rows(DATA / "paper" / f"{name}.csv")
        assert rows and all(r["source"] in {"P", "R", "AI"} for r in rows)
    rows = {(r["model"], r["quantity"]): r for r in read_rows(DATA / "paper" / "results.csv")}
    for model in ("Qwen3-4B", "Qwen3-8B"):
        assert rows[(model, "aup_base")]["source"] == rows[(model, "aup_sft")]["source"] == "AI"
        # the AI-summary AUPs are consistent with the gains the paper states (+9 %, +12 %), to the percent
        gain = 100 * (rows[(model, "aup_sft")]["value"] / rows[(model, "aup_base")]["value"] - 1)
        assert rows[(model, "aup_gain_percent")]["source"] == "P" and round(gain) == rows[(model, "aup_gain_percent")]["value"]


def test_paper_figure_marks_ai_only_values():
    rows = read_rows(DATA / "paper" / "results.csv")
    fig = plot_paper_results(rows)
    bars = fig.axes[0].patches
    assert len(bars) == 4 and all(b.get_hatch() == "////" for b in bars)     # all four AUPs are AI-only
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "+9 % [P]" in texts and "+12 % [P]" in texts and any("AI-written summaries" in t for t in texts)
    rows = [dict(r, source="P") if r["quantity"] == "aup_base" else r for r in rows]
    hatches = [b.get_hatch() for b in plot_paper_results(rows).axes[0].patches]
    assert hatches == [None, "////", None, "////"]                             # base (now P) plain, SFT (AI) hatched


def test_reference_figures_are_written_small_and_reproducible(tmp_path):
    paths = draw_reference_figures(tmp_path / "a", DATA)
    assert sorted(p.name for p in paths) == sorted(f"{n}.{e}" for n in REFERENCE for e in ("png", "pdf"))
    for p in paths:
        data = p.read_bytes()
        assert data[:4] in (b"\x89PNG", b"%PDF") and 5_000 < len(data) < 200_000, (p.name, len(data))
    again = draw_reference_figures(tmp_path / "b", DATA)
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]


def test_funnel_counts_records_of_each_stage(tmp_path):
    counts = funnel_counts(_run(tmp_path))
    assert counts == {"topics": 10, "tasks": 4, "validated tasks": 3, "trajectories": 9, "kept trajectories": 4}
    labels = [t.get_text() for t in plot_funnel(counts).axes[0].texts]
    assert labels == ["10", "4  (40% of topics)", "3  (75% of tasks)", "9  (3.0 per task)", "4  (44% of trajectories)"]


def test_task_scores_from_eval_results():
    res = [EvalResult(id=f"e{i}", task_id=t, method=m, best_attempt=a, best_submission=b)
           for i, (t, m, a, b) in enumerate([("A", "base", 0.5, 0.4), ("A", "sft", 0.7, None), ("B", "base", 3.0, 2.0), ("B", "sft", 2.0, 2.5)])]
    fig = plot_task_scores(res, "best_submission", minimize=["B"])
    assert [a.get_title() for a in fig.axes] == ["A", "B (lower is better)"]
    assert [t.get_text() for t in fig.axes[0].texts] == ["0.4", "n/a: no scored submission"]   # sft scored, never submitted
    assert [b.get_height() for b in fig.axes[1].patches] == [2.0, 2.5]
    assert [t.get_text() for t in plot_task_scores(res).axes[0].texts] == ["0.5", "0.7"]


def test_missing_scores_say_why_from_the_records():
    "Hand-written records of the three ways a method ends up without a score (as the quickstart's base student did)."
    fmt = lambda m, t, n=1: EvalResult(id=f"{m}{t}", task_id=t, method=m, runs=n, exit_statuses=["submission_not_found (exit_format)"] * n)
    res = [EvalResult(id="b", task_id="A", method="baseline", runs=1, best_attempt=0.9, best_submission=0.9), fmt("base", "A"),
           EvalResult(id="bB", task_id="B", method="baseline", runs=1, best_attempt=0.5, best_submission=0.5),
           EvalResult(id="sB", task_id="B", method="sft", runs=2, exit_statuses=["submitted", "autosubmission (max_steps)"],
                      best_attempt=None, best_submission=None), fmt("base", "B", 2)]
    fig = plot_task_scores(res, metrics={"A": "accuracy"})
    assert [t.get_text() for t in fig.axes[0].texts] == ["0.9", "n/a: format errors", "n/a: not run"]   # no sft record on A
    assert [t.get_text() for t in fig.axes[1].texts] == ["0.5", "n/a: format errors (2/2 runs)", "n/a: no valid score (2/2 runs)"]
    assert fig.axes[0].get_ylabel() == "accuracy"
    assert not any(t.get_text() == "n/a" for a in fig.axes for t in a.texts)      # never a bare n/a
    assert no_score_reason(EvalResult(id="x", task_id="A", method="sft", runs=1, exit_statuses=["exit_environment_error"])) == "sandbox error"
    assert no_score_reason(EvalResult(id="x", task_id="A", method="sft")) == "not run"


def test_trajectory_figures_from_records():
    trajs = [_traj(0, "A", 5, [1, 4]), _traj(1, "A", 3, [2]), _traj(2, "B", 8, [], "autosubmission (max_steps)"),
             _traj(3, "C", 2, [1], "format_error")]
    fig = plot_trajectory_lengths(trajs)
    legend = sorted(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert legend == ["autosubmission (1)", "format_error (1)", "submitted (2)"]
    assert "median 4 steps, n = 4" in fig.axes[0].get_title()
    fig = plot_score_over_steps(trajs, minimize=["C"])
    visible = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in visible] == ["A (2 runs)", "C (1 run)"]  # B never scored; no task records: the ids
    assert [a.get_ylabel() for a in visible] == ["acc (higher is better)", "acc (lower is better)"]
    assert [list(l.get_xdata()) for l in visible[0].lines] == [[2, 5], [3]]
    assert [list(l.get_ydata()) for l in visible[0].lines][0] == pytest.approx([0.1, 0.4])
    with pytest.raises(SynthsciError, match="rollouts stage"):
        plot_trajectory_lengths([])


def test_score_over_steps_names_tasks_and_has_a_legend():
    "Hand-written Task records as the taskgen stage writes them: the panels are titled by task, not by hash."
    tasks = [Task(id="task-0c61140606ba", name="Plant species identification from measurements with self-supervised pretraining",
                  path=".", dataset_id="sklearn/iris", metric="accuracy", description="The dataset is sklearn/iris; predict `species`."),
             Task(id="task-8a3714e9c71a", name="Sea surface temperature forecasting", path=".", dataset_id="statsmodels/elnino",
                  metric="mae", direction="min", description="predict `temperature`.")]
    trajs = [_traj(0, tasks[0].id, 5, [1, 4]), _traj(1, tasks[0].id, 4, [2], "autosubmission (max_steps)"), _traj(2, tasks[1].id, 3, [1, 2])]
    fig = plot_score_over_steps(trajs, tasks=tasks)
    titles = [a.get_title() for a in fig.axes]
    assert titles == ["Plant species identification from…\niris: species (2 runs)", "Sea surface temperature forecasting\nelnino: temperature (1 run)"]
    assert not any("task-" in t for t in titles)
    assert [a.get_ylabel() for a in fig.axes] == ["acc (higher is better)", "acc (lower is better)"]   # direction from the Task record
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["submitted (2 runs)", "autosubmission (1 run)", "submitted score"]
    assert task_label(Task(id="k", name="iris", path=".", dataset_id="sklearn/iris", metric="acc")) == "iris"


def test_stage_costs_from_manifest():
    manifest = {"run_id": "r", "stages": {"01_topics": {"wall_s": 2.0, "cost_usd": 0.5}, "06_rollouts": {"wall_s": 30.0}}}
    fig = plot_stage_costs(manifest)
    assert [t.get_text() for t in fig.axes[0].texts] == ["2", "30"] and [t.get_text() for t in fig.axes[1].texts] == ["0.5", "0"]
    assert "Run r" in fig._suptitle.get_text()


def test_stage_costs_of_a_run_that_paid_nothing_draw_no_empty_cost_axis():
    "A hand-written manifest shaped like the quickstart's: the scripted teacher and the local student cost $0."
    stages = {"01_topics": {"wall_s": 0.05, "cost_usd": 0.0, "calls": 10, "input_tokens": 825, "output_tokens": 394},
              "06_rollouts": {"wall_s": 604.2, "cost_usd": 0.0, "calls": 396, "input_tokens": 454825, "output_tokens": 7188},
              "09_train": {"wall_s": 975.2, "cost_usd": 0.0, "calls": 0, "input_tokens": 0, "output_tokens": 0}}
    manifest = {"run_id": "qs", "config": {"teacher": {"spec": "scripted"}, "student": {"spec": "local"}}, "stages": stages}
    for fig in (plot_stage_costs(manifest), plot_stage_costs({"run_id": "qs", "stages": {s: {"wall_s": 1.0} for s in stages}})):
        for ax in fig.axes:
            assert ax.get_xscale() == "linear" and ax.get_xlim()[1] >= 1            # no 1e-9 axis
            assert "cost" not in ax.get_xlabel().lower()                              # no all-zero cost panel
    fig = plot_stage_costs(manifest)
    assert [a.get_xlabel() for a in fig.axes] == ["wall time (s)", "LLM tokens (input + output)"]
    assert [t.get_text() for t in fig.axes[1].texts] == ["1.22k tok, 10 calls", "462k tok, 396 calls", ""]
    notes = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    assert any(n.startswith("no paid LLM calls: every stage cost $0 (teacher 'scripted', student 'local')") for n in notes)


def test_run_figures_and_cli(tmp_path, capsys):
    run_dir = _run(tmp_path)
    assert figures_main(["--no-reference", "--run", str(run_dir), "--out", str(tmp_path / "figs")]) == 0
    written = [Path(l) for l in capsys.readouterr().out.splitlines()]
    names = {p.name for p in written if p.parent.name == "demo"}
    expected = ["stage_costs", "funnel", "trajectory_lengths", "score_over_steps", "task_scores_best_attempt",
                "task_scores_best_submission", "profiles", "aup"]
    assert names == {f"{n}.{e}" for n in expected for e in ("png", "pdf")}
    assert len(written) == len(names)                   # --no-reference: the run's figures only
    assert all(p.stat().st_size < 200_000 for p in written)
    # default output of draw_run_figures: the run's figures stage folder
    assert all(p.parent == run_dir / "12_figures" for p in draw_run_figures(run_dir))
    assert figures_main(["--no-reference", "--run", str(tmp_path / "nothing")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_figures_stage_draws_the_runs_figures_with_aup_bars_in_the_recorded_directions(tmp_path, monkeypatch):
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=r"])
    run = Run("r", tmp_path)
    scores = {"a": {"baseline": 0.5, "finetuned": 0.8, "base": 0.6}, "b": {"baseline": 0.7, "finetuned": 0.4, "base": None}}
    for t, row in scores.items():
        for m, v in row.items():
            write_jsonl([EvalResult(id=f"{m}-{t}", task_id=t, method=m, best_attempt=v, best_submission=v)], run.unit_path("10_eval", f"{m}-{t}"))
    (run.path / "10_eval" / "tasks.json").write_text(json.dumps({"directions": {"a": "max", "b": "min"}}))   # as the evaluate stage writes it
    drawn, real = [], plots.plot_aup_bars
    monkeypatch.setattr(plots, "plot_aup_bars", lambda profs, who: drawn.append(profs) or real(profs, who))
    out = run_figures(cfg, progress=False)
    names = {p.name for p in out.iterdir()}
    assert {"aup.png", "aup.pdf", "task_scores_best_attempt.png", "profiles.png", "profiles.pdf"} <= names
    assert drawn[0]["Best Attempt"].aup == aup(scores, minimize=["b"]) != aup(scores)    # task b is lower-is-better, as recorded
    fs = run.read(out.name, FigureSet)
    assert len(fs) == 1 and {Path(p).name for p in fs[0].paths} >= {"aup.png", "profiles.pdf"}
    run_figures(cfg, progress=False)                                                       # redrawn: one record, not two
    assert len(run.read(out.name, FigureSet)) == 1
