"""`synthsci run --from RUN` (synthsci.pipeline.branch_run): an ablation copies the stages it leaves unchanged from the
full run and re-runs the rest. Real stages (the scripted teacher, a real validation in the sandbox) on the copies show
that the copied records point into the new run and that its later stages never write into the source run; hand-made
evaluation folders show which evaluate units are copied (those training does not touch) and when none are."""
import hashlib, json
from pathlib import Path
import pytest
from synthsci.core import Run, Task, load_config, atomic_write
from synthsci.pipeline import branch_run, run_summary


def tree_digest(path: Path) -> dict:
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}


def test_an_ablation_of_validation_reruns_validation_on_its_own_copies_of_the_tasks(tmp_path):
    from synthsci.topics import run_topics
    from synthsci.proposals import run_proposals
    from synthsci.grounding import run_grounding
    from synthsci.taskgen import run_taskgen
    from synthsci.validate import run_validate
    common = [f"runs_dir={tmp_path}", "teacher.spec=scripted", "teacher.cache=off", "seed=0", "stages.topics.n_topics=2",
              "stages.taskgen.p_bug=1.0", "stages.validate={k: 2, p_debug: 1.0, timeout_s: 60, quality: false, workers: 1}"]
    full = load_config(overrides=["run_id=full", *common])
    for stage in (run_topics, run_proposals, run_grounding, run_taskgen): stage(full)
    src = Run("full", tmp_path)
    before = tree_digest(src.path / "04_tasks")

    abl = load_config(overrides=["run_id=abl", *common, "stages.validate.k=1"])    # no self-debugging: validation differs
    assert branch_run(src.path, abl, ["topics", "proposals", "grounding", "taskgen", "validate"]) == ["topics", "proposals", "grounding", "taskgen"]
    new = Run("abl", tmp_path)
    tasks = new.read("04_tasks", Task)
    assert tasks and all(Path(t.path).resolve().is_relative_to(new.path.resolve()) for t in tasks)   # the copies, not the source's folders
    assert str(src.path.resolve()) not in "".join(p.read_text() for p in (new.path / "04_tasks").glob("*.jsonl"))
    run_validate(abl)                                                               # validation writes its fixes into the new run's folders
    assert tree_digest(src.path / "04_tasks") == before                             # the source run is untouched
    m = new.manifest["stages"]
    assert m["04_tasks"]["copied_from"] == str(src.path.resolve()) and "copied_from" not in m["05_validated"]
    assert m["05_validated"]["units_done"] == len(tasks)
    assert run_summary(new.path)["stages"]["taskgen"]["copied_from"] == str(src.path.resolve())


def test_an_ablation_of_validation_validates_the_first_drafts_not_the_sources_fixed_tasks(tmp_path):
    "The source's validation fixed its seeded bugs in its taskgen folder; `no_self_debugging` branched from it must see the drafts, not those fixes."
    from synthsci.topics import run_topics
    from synthsci.proposals import run_proposals
    from synthsci.grounding import run_grounding
    from synthsci.taskgen import run_taskgen
    from synthsci.validate import run_validate, read_attempts, _teacher_files
    common = [f"runs_dir={tmp_path}", "teacher.spec=scripted", "teacher.cache=off", "seed=0", "stages.topics.n_topics=2",
              "stages.taskgen.p_bug=1.0", "stages.validate={k: 2, p_debug: 1.0, timeout_s: 60, quality: false, workers: 1}"]
    full = load_config(overrides=["run_id=full", *common])
    for stage in (run_topics, run_proposals, run_grounding, run_taskgen, run_validate): stage(full)
    src = Run("full", tmp_path)
    drafts = {a.task_id: a.files for a in read_attempts(src) if a.n == 1}
    fixed = {t.id: _teacher_files(Path(t.path))[0] for t in src.read("04_tasks", Task)}
    assert drafts and any(fixed[k] != v for k, v in drafts.items())       # some task's code in the source is its validation's fix, not its draft

    abl = load_config(overrides=["run_id=abl", *common, "stages.validate.k=1"])    # no self-debugging: first drafts only
    assert branch_run(src.path, abl, ["topics", "proposals", "grounding", "taskgen", "validate"]) == ["topics", "proposals", "grounding"]
    run_taskgen(abl)
    new = Run("abl", tmp_path)
    assert {t.id: _teacher_files(Path(t.path))[0] for t in new.read("04_tasks", Task)} == drafts   # the same drafts the source validated first


def _source_with_evaluation(root: Path, cut="stages.sftdata.max_observation_chars=600") -> Run:
    "A hand-made finished run: every stage complete, and an evaluate folder with the baseline's, the base's and the fine-tuned student's units."
    cfg = load_config(overrides=[f"runs_dir={root}", "run_id=full", cut])
    src = Run.from_config(cfg)
    for folder in ("01_topics", "02_proposals", "03_grounded", "04_tasks", "05_validated", "06_rollouts", "07_filtered", "08_sft", "09_train", "10_eval"):
        src.update_stage(folder, record_config=True, units_done=1, units_total=1, status="complete", wall_s=1.0)
    for name in ("baseline-t1.jsonl", "base-t1.jsonl", "finetuned-t1.jsonl", "runs/base/traj/t1-s0/t1-s0.traj", "runs/finetuned/traj/t1-s0/t1-s0.traj", "best_attempt.csv"):
        atomic_write(src.path / "10_eval" / name, "{}\n")
    return src


@pytest.mark.parametrize("flag, copied, eval_units", [
    ("stages.filter.enabled=false", ["topics", "proposals", "grounding", "taskgen", "validate", "rollouts"], ["base-t1", "baseline-t1"]),
    ("stages.sftdata.max_observation_chars=null", ["topics", "proposals", "grounding", "taskgen", "validate", "rollouts", "filter"], None),   # the student's view changed
    ("stages.validate.k=1", ["topics", "proposals", "grounding"], None),   # other tasks, from the first drafts (the source's validation fixed its own)
    ("stages.evaluate.k=5", ["topics", "proposals", "grounding", "taskgen", "validate", "rollouts", "filter", "sftdata", "train"], None),
    ("stages.evaluate.checkpoints=true", ["topics", "proposals", "grounding", "taskgen", "validate", "rollouts", "filter", "sftdata", "train"],
     ["base-t1", "baseline-t1"]),                                                                                                        # more methods beside the same ones
])
def test_which_stages_and_evaluate_units_an_ablation_copies(tmp_path, flag, copied, eval_units):
    src = _source_with_evaluation(tmp_path)
    abl = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=abl", "stages.sftdata.max_observation_chars=600", flag])
    got = branch_run(src.path, abl)
    assert got == copied + (["evaluate (base, baseline)"] if eval_units else [])
    ev = tmp_path / "abl" / "10_eval"
    if eval_units:
        assert sorted(p.stem for p in ev.glob("*.jsonl")) == eval_units and (ev / "runs/base/traj/t1-s0/t1-s0.traj").exists()
        assert not (ev / "runs/finetuned").exists() and not (ev / "best_attempt.csv").exists()
        assert Run("abl", tmp_path).manifest["stages"]["10_eval"]["status"] == "partial: copied"
        st = run_summary(tmp_path / "abl")["stages"]["evaluate"]                      # the rest of the stage is this run's own work
        assert "copied_from" not in st and st["copied_units"] == 2 and st["units_copied_from"] == str(src.path.resolve())
    else: assert not ev.exists()


def test_the_students_view_is_compared_with_defaults_filled_in(tmp_path):
    "A source that spelled out the default observation cut and an ablation that leaves it unsaid show the student the same text: the base's units are copied."
    from synthsci.sftdata import SFTDataOptions
    src = _source_with_evaluation(tmp_path, f"stages.sftdata.max_observation_chars={SFTDataOptions().max_observation_chars}")
    abl = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=abl", "stages.filter.enabled=false"])
    assert branch_run(src.path, abl)[-1] == "evaluate (base, baseline)"
    other = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=abl2", "stages.filter.enabled=false", "stages.sftdata.max_observation_chars=1999"])
    assert "evaluate (base, baseline)" not in branch_run(src.path, other)          # one character less is another view


def test_an_unchanged_config_copies_every_finished_stage_and_a_bad_source_is_one_line(tmp_path):
    src = _source_with_evaluation(tmp_path)
    same = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=same", "stages.sftdata.max_observation_chars=600"])
    assert branch_run(src.path, same)[-1] == "evaluate"
    again = load_config(overrides=[f"runs_dir={tmp_path}", "run_id=again", "stages.sftdata.max_observation_chars=600", "stages.filter.enabled=false"])
    assert branch_run(tmp_path / "same", again)[-1] == "evaluate (base, baseline)"            # a branch of a branch (whose stages say copied_from)
    assert Run("again", tmp_path).manifest["stages"]["06_rollouts"]["copied_from"] == str((tmp_path / "same").resolve())
    with pytest.raises(Exception, match="not a run folder"): branch_run(tmp_path / "missing", same)
    with pytest.raises(Exception, match="this run's own folder"): branch_run(src.path, load_config(overrides=[f"runs_dir={tmp_path}", "run_id=full"]))


def test_synthsci_run_from_a_run(tmp_path):
    import subprocess, sys
    exe = [sys.executable, "-m", "synthsci.cli"]
    (tmp_path / "c.yaml").write_text("teacher: {spec: scripted}\nstages: {topics: {n_topics: 2}}\n")
    common = [str(tmp_path / "c.yaml"), f"runs_dir={tmp_path}"]
    r = subprocess.run([*exe, "run", "--stages", "topics,proposals", *common, "run_id=full", "--from", str(tmp_path / "nope")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "not a run folder" in r.stderr.strip().splitlines()[-1]
    assert subprocess.run([*exe, "run", "--stages", "topics,proposals", *common, "run_id=full"], capture_output=True, cwd=tmp_path).returncode == 0
    r = subprocess.run([*exe, "run", "--stages", "topics,proposals", *common, "run_id=abl", "stages.proposals.repairs=0", "--from", str(tmp_path / "full")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "topics copied (the same config)" in r.stdout
    m = Run("abl", tmp_path).manifest
    assert "copied_from" in m["stages"]["01_topics"] and "copied_from" not in m["stages"]["02_proposals"] and m["stages"]["02_proposals"]["status"] == "complete"


def test_an_ablation_is_measured_on_the_full_loops_heldout_suite(tmp_path):
    """`stages.evaluate.heldout_tasks_from`: the full loop's held-out tasks (validated, on its held-out datasets), copied into
    the ablation's evaluate folder; the split comes with the branch (`heldout.json`), and a run with another split is refused.
    Hand-written fixture tasks stand in for the full loop's."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
    from staged_tasks import stage_tasks
    from synthsci.core import ValidationReport, write_jsonl
    from synthsci.evaluate import EvalOptions, eval_tasks
    common = [f"runs_dir={tmp_path}", "stages.evaluate={heldout: true, heldout_fraction: 0.5}"]
    cfg = load_config(overrides=["run_id=full", *common])
    src = Run.from_config(cfg)
    tasks = stage_tasks(tmp_path, "full", ["wine", "diabetes", "friedman"], None)
    for t in tasks: write_jsonl([ValidationReport(id=f"v-{t.id}", parent_id=t.id, task_id=t.id, passed=t.id != "friedman")], src.unit_path("05_validated", t.id))
    for folder in ("01_topics", "02_proposals", "03_grounded", "04_tasks", "05_validated", "06_rollouts", "07_filtered", "08_sft", "09_train", "10_eval"):
        src.update_stage(folder, record_config=True, units_done=1, units_total=1, status="complete")
    for name in ("baseline-diabetes.jsonl", "base-diabetes.jsonl", "finetuned-diabetes.jsonl"): atomic_write(src.path / "10_eval" / name, "{}\n")
    atomic_write(src.path / "heldout.json", json.dumps(dict(fraction=0.5, seed=0, datasets=["sklearn:diabetes", "sklearn:friedman"])))
    before = tree_digest(tmp_path / "full-tasks")

    abl = load_config(overrides=["run_id=abl", *common[:1], "stages.validate.k=1",
                                 f"stages.evaluate={{heldout: true, heldout_fraction: 0.5, heldout_tasks_from: {src.path}}}"])
    assert branch_run(src.path, abl) == ["topics", "proposals", "grounding", "evaluate (base, baseline)"]   # other tasks (from the drafts), the same suite
    new = Run("abl", tmp_path)
    assert sorted(p.name for p in (new.path / "10_eval").glob("*.jsonl")) == ["base-diabetes.jsonl", "baseline-diabetes.jsonl"]
    assert json.loads((new.path / "heldout.json").read_text())["datasets"] == ["sklearn:diabetes", "sklearn:friedman"]   # the split came along
    got, skipped = eval_tasks(EvalOptions(heldout=True, heldout_tasks_from=str(src.path)), new.path / "10_eval", 0, new, abl)
    assert [t.id for t in got] == ["diabetes"] and not skipped                      # validated and held out; friedman failed validation
    assert Path(got[0].path).resolve().is_relative_to((new.path / "10_eval" / "heldout_tasks").resolve()) and got[0].baseline_scores
    assert tree_digest(tmp_path / "full-tasks") == before
    (new.path / "heldout.json").unlink()
    with pytest.raises(Exception, match="the student may have trained on that suite"):
        eval_tasks(EvalOptions(heldout=True, heldout_tasks_from=str(src.path)), new.path / "10_eval", 0, new, abl)
    with pytest.raises(Exception, match="needs stages.evaluate.heldout: true"): EvalOptions(heldout_tasks_from=str(src.path))
