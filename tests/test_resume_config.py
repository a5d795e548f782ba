"""A resumed stage refuses a config that would change what its units contain, naming the fields; a change of how it
runs (budget, concurrency, rate limits, workers, timeouts, the cache) is accepted, and so is another teacher for a
stage that has no units yet (a run may mix teachers on purpose). And the run config checks its ranges."""
import dataclasses, json
from pathlib import Path
import pytest
from synthsci.core import (OPERATIONAL_FIELDS, Record, Run, RunConfig, SynthsciError, check_ranges, load_config, open_run, resume_conflicts,
                           run_stage)

QUICKSTART = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"


def config(tmp_path, *overrides):
    "The quickstart config, small, in `tmp_path`."
    return load_config(QUICKSTART, [f"runs_dir={tmp_path}", "stages.topics.n_topics=4", *overrides])


def manifest(tmp_path, run_id="quickstart"): return json.loads((tmp_path / run_id / "manifest.json").read_text())


@pytest.fixture
def topics_done(tmp_path):
    "A quickstart run whose topics stage is done (the real stage, with the scripted teacher)."
    from synthsci.topics import run_topics
    run_topics(config(tmp_path))
    m = manifest(tmp_path)["stages"]["01_topics"]
    assert m["status"] == "complete" and m["units_done"] > 0
    return tmp_path


def test_resuming_with_another_teacher_is_refused_and_relabels_nothing(topics_done, monkeypatch):
    from synthsci.topics import run_topics
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")   # the backend is built; the refusal comes before any call
    before = manifest(topics_done)
    with pytest.raises(SynthsciError) as e:
        run_topics(config(topics_done, "teacher.spec=anthropic:claude-sonnet-4-6", "budget_usd=5"))
    assert str(e.value) == ("run quickstart was made with teacher.spec=scripted (01_topics has units); this config has "
                            "teacher.spec=anthropic:claude-sonnet-4-6: use a new run_id (e.g. run_id=quickstart-2) or the run's own config")
    assert manifest(topics_done) == before                       # the manifest still says who made the units
    (topics_done / "quickstart-2").mkdir()
    with pytest.raises(SynthsciError, match=r"run_id=quickstart-3\)"): open_run(config(topics_done, "seed=1"), stages=["topics"])


def test_every_content_field_that_differs_is_named(topics_done):
    with pytest.raises(SynthsciError) as e:
        open_run(config(topics_done, "seed=3", "teacher.params.temperature=0.7", "stages.topics.n_topics=5", "student.spec=local:/ckpt"),
                 stages=["topics", "proposals"])
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("run quickstart was made with seed=0, stages.topics.n_topics=4, student.spec=local, teacher.params.temperature=(unset) "
                          "(01_topics has units); this config has seed=3, stages.topics.n_topics=5, student.spec=local:/ckpt, "
                          "teacher.params.temperature=0.7: use a new run_id")


def test_operational_changes_and_stages_without_units_are_free(topics_done):
    from synthsci.topics import run_topics
    ops = ["budget_usd=5", "pipeline=[topics]", "teacher.max_concurrency=2", "teacher.max_retries=1", "teacher.timeout_s=30",
           "teacher.requests_per_minute=50", "teacher.tokens_per_minute=30000", f"teacher.cache_dir={topics_done / 'elsewhere'}",
           "student.timeout_s=5", "stages.validate.timeout_s=5", "stages.rollouts.workers=8",
           "stages.proposals.repairs=3", "stages.taskgen.p_bug=0.9",          # options of stages that have no units yet
           "stages.topics.dedupe_threshold=0.6"]                              # the default, now written out: the same options
    assert resume_conflicts(config(topics_done, *ops)) == {}
    run_topics(config(topics_done, *ops))
    m = manifest(topics_done)
    assert (m["config"]["budget_usd"], m["config"]["teacher"]["requests_per_minute"], m["stages"]["01_topics"]["status"]) == (5.0, 50, "complete")


def test_a_stages_workers_and_timeouts_may_change_but_not_its_options(tmp_path):
    base = [f"runs_dir={tmp_path}", "stages.validate.k=3", "stages.validate.workers=2"]
    run, _ = open_run(load_config(overrides=base))
    run_stage(run, "05_validated", [("u", 1)], lambda x: [Record(id="r")], progress=False)
    assert resume_conflicts(load_config(overrides=base + ["stages.validate.workers=4", "stages.validate.timeout_s=30",
                                                          "stages.validate.eval_timeout_s=10"])) == {}
    assert resume_conflicts(load_config(overrides=[f"runs_dir={tmp_path}", "stages.validate.workers=2"])) == {}   # k=3 is the default
    bad = resume_conflicts(load_config(overrides=base + ["stages.validate.k=5", "stages.validate.p_debug=1.0"]))
    assert {k: v[:2] for k, v in bad.items()} == {"stages.validate.k": (3, 5), "stages.validate.p_debug": (0.5, 1.0)}
    assert all(v[2] == ["05_validated"] for v in bad.values())
    assert {"budget_usd", "stages.*.workers", "*timeout_s", "teacher.requests_per_minute"} <= set(OPERATIONAL_FIELDS)


def test_a_manifest_without_stage_configs_is_checked_against_the_runs_config(tmp_path):
    cfg = load_config(overrides=[f"runs_dir={tmp_path}", "seed=1"])
    run = Run(cfg.run_id, cfg.runs_dir, dataclasses.asdict(cfg))
    run.update_stage("02_proposals", units_done=2, units_total=2, status="complete")   # as written before stages kept their config
    with pytest.raises(SynthsciError, match=r"made with seed=1 \(02_proposals has units\); this config has seed=2"):
        open_run(load_config(overrides=[f"runs_dir={tmp_path}", "seed=2"]), stages=["proposals"])


def test_a_stage_without_units_may_run_with_another_config_and_the_run_says_which_made_which(tmp_path):
    unit = lambda x: [Record(id="r")]
    run, _ = open_run(load_config(overrides=[f"runs_dir={tmp_path}", "teacher.spec=scripted"]))
    run_stage(run, "01_topics", [("u", 1)], unit, progress=False)
    hybrid = load_config(overrides=[f"runs_dir={tmp_path}", "teacher.spec=openai:gpt-5"])
    run, _ = open_run(hybrid, stages=["proposals"])                   # the taskgen-by-an-LLM runs of tests/test_real_model.py do this
    run_stage(run, "02_proposals", [("u", 1)], unit, progress=False)
    m = json.loads(run.manifest_path.read_text())
    assert {f: e["config"]["teacher"]["spec"] for f, e in m["stages"].items()} == {"01_topics": "scripted", "02_proposals": "openai:gpt-5"}
    assert m["config"]["teacher"]["spec"] == "openai:gpt-5"          # the run's config: the latest that ran a stage
    with pytest.raises(SynthsciError, match=r"made with teacher.spec=scripted \(01_topics has units\)"):
        run_stage(run, "01_topics", [("u", 1)], unit, progress=False)
    with pytest.raises(SynthsciError, match=r"\(01_topics has units\)"): open_run(hybrid, stages=["topics", "proposals"])
    assert set(resume_conflicts(hybrid)) == {"teacher.spec"} and resume_conflicts(hybrid)["teacher.spec"][2] == ["01_topics"]


# -- the run config's own checks

@pytest.mark.parametrize("override,message", [
    ("seed=-1", "seed must be between 0 and 4294967295, not -1"),
    ("seed=1.5", "config field 'seed' expects int, got 1.5 (float)"),
    ("budget_usd=0", "budget_usd must be a number > 0 (or null: no cap), not 0.0"),
    ("budget_usd=-2.5", "budget_usd must be a number > 0 (or null: no cap), not -2.5"),
    ("teacher.max_concurrency=0", "teacher.max_concurrency must be >= 1, not 0"),
    ("teacher.tokens_per_minute=0", "teacher.tokens_per_minute must be >= 1, not 0"),
    ("student.timeout_s=0", "student.timeout_s must be > 0, not 0.0"),
    ("teacher.max_retries=-1", "teacher.max_retries must be >= 0, not -1"),
])
def test_run_config_ranges_are_one_line_errors_naming_the_field(override, message):
    with pytest.raises(SynthsciError) as e: load_config(overrides=[override])
    assert str(e.value) == message


def test_run_config_checks_hold_without_yaml_too():
    with pytest.raises(SynthsciError, match=r"^seed must be an integer, not '3'$"): RunConfig(seed="3")
    with pytest.raises(SynthsciError, match=r"^seed must be an integer, not True$"): RunConfig(seed=True)
    with pytest.raises(SynthsciError, match=r"^budget_usd must be a number > 0"): RunConfig(budget_usd=0.0)
    assert RunConfig(seed=2**32 - 1, budget_usd=0.01).budget_usd == 0.01


def test_check_ranges_names_the_stage_field_and_value():
    @dataclasses.dataclass
    class Options:
        n_topics: int = 12
        dedupe_threshold: float = 0.6
        temperatures: list = dataclasses.field(default_factory=lambda: [0.0])
        def __post_init__(self): check_ranges(self, "stages.topics", n_topics=(0, None), dedupe_threshold=(0, 1), temperatures=(0, 2))
    with pytest.raises(SynthsciError, match=r"^stages.topics.n_topics must be >= 0, not -3$"): Options(n_topics=-3)
    with pytest.raises(SynthsciError, match=r"^stages.topics.dedupe_threshold must be between 0 and 1, not 1.5$"): Options(dedupe_threshold=1.5)
    with pytest.raises(SynthsciError, match=r"^stages.topics.temperatures\[1\] must be between 0 and 2, not 3$"): Options(temperatures=[0.2, 3])
    assert Options(n_topics=0, dedupe_threshold=1.0).n_topics == 0
