"""`synthsci plan`: a config's whole run projected from a measured run's per-unit figures. The measured run is a
hand-written fixture (tests/fixtures/plan: its README tabulates the per-unit figures); every expected number below
is worked out by hand in the comment beside it."""
import json, shutil
from pathlib import Path
import pytest
import synthsci.llm as llm
from synthsci.core import SynthsciError, load_config
from synthsci.plan import NEEDS_RUN, Cluster, make_plan, measure, plan_main, project

FIX = Path(__file__).resolve().parent / "fixtures" / "plan"
TARGET = FIX / "target.yaml"
# GPU-hours: 6 x 4e9 params x 364.8e6 tokens = 8.7552e18 FLOPs; / (0.35 MFU x 989e12 FLOP/s) = 25,293.08 s = 7.02586 h
GPU_H = 6 * 4e9 * 364.8e6 / (0.35 * 989e12) / 3600


@pytest.fixture
def run_copy(tmp_path):
    "A writable copy of the fixture run, and a function that edits its manifest."
    d = tmp_path / "run"
    shutil.copytree(FIX / "run", d)
    def edit(fn):
        m = json.loads((d / "manifest.json").read_text()); fn(m); (d / "manifest.json").write_text(json.dumps(m))
    return d, edit


def plan8(run=FIX / "run", **kw):
    return make_plan(TARGET, run, Cluster(nodes=8, cores_per_node=64, gpus_per_node=8), **kw)


def test_measured_figures_by_hand():
    figs, _, notes = measure(FIX / "run")
    v = {k: r.value for k, r in figs.items()}
    assert v["topics.kept_per_unit"] == 1.0 and v["topics.calls"] == 0.2            # 20/20 topics, 4 calls / 20
    assert v["proposals.kept_per_unit"] == 0.8 and v["proposals.input_tokens"] == 2000.0   # 16/20; 40000 / 20
    assert v["grounding.kept_per_unit"] == 0.75                                     # 12 / 16
    assert v["taskgen.kept_per_unit"] == 0.75 and v["taskgen.output_tokens"] == 5000.0     # 9 / (11 done + 1 failed); 60000 / 12
    assert v["validate.kept_per_unit"] == pytest.approx(2 / 3)                      # 6 / 9
    assert v["validate.core_s"] == 200.0                                            # 450 s x 4 workers / 9 tasks
    assert v["rollouts.core_s"] == 360.0 and v["rollouts.input_tokens"] == 20000.0  # 900 s x 8 / 20; 400000 / 20
    assert v["filter.kept_per_unit"] == 0.5                                         # 10 of 20
    assert v["sftdata.kept_per_unit"] == 1.0 and v["sftdata.tokens_per_example"] == 5000.0  # (40000 + 10000) / 10
    assert v["train.tokens_per_s"] == 200.0                                         # 40000 x 2 epochs / 400 s
    assert "slot-seconds" in figs["validate.core_s"].source and "estimate" in figs["validate.core_s"].source
    assert any("rollouts was measured while 'running' (20 of 24" in n for n in notes)


def test_projection_by_hand():
    p = plan8()
    # the funnel: 1000 topics x 1 -> x 0.8 = 800 -> x 0.75 = 600 -> x 0.75 = 450 -> x 2/3 = 300 valid
    assert [p.value(s, "kept") for s in ("topics", "proposals", "grounding", "taskgen")] == [1000, 800, 600, 450]
    assert p.value("validate", "kept") == pytest.approx(300)
    assert p.value("rollouts", "units") == pytest.approx(76800)          # 300 x 256
    assert p.value("filter", "kept") == pytest.approx(38400)             # 76,800 x 0.5
    assert p.value("sftdata", "SFT tokens") == pytest.approx(192e6)      # 38,400 x 1 x 5000
    assert p.value("train", "training tokens") == pytest.approx(364.8e6) # 192M x 0.95 x 2 epochs
    # tokens: rollouts 76,800 x 20,000 = 1.536e9 in, 76,800 x 2,000 = 153.6M out; calls 76,800 x 20 = 1,536,000
    assert p.value("rollouts", "input tokens") == pytest.approx(1.536e9)
    assert p.value("rollouts", "output tokens") == pytest.approx(153.6e6)
    assert p.value("rollouts", "teacher calls") == pytest.approx(1_536_000)
    # money at gpt-5 ($1.25 in, $10 out per 1M): topics 0.1M x 1.25 + 0.05M x 10 = 0.625; proposals 2.5 + 5 = 7.5;
    # grounding 0.5 + 0.4 = 0.9; taskgen 1.5 + 30 = 31.5; validate 0.5625 + 9 = 9.5625; rollouts 1920 + 1536 = 3456
    costs = {s: p.value(s, "teacher cost") for s in ("topics", "proposals", "grounding", "taskgen", "validate", "rollouts")}
    assert costs == pytest.approx(dict(topics=0.625, proposals=7.5, grounding=0.9, taskgen=31.5, validate=9.5625, rollouts=3456.0))
    assert p.value("total", "teacher cost") == pytest.approx(3506.0875)
    # core-hours: validate 450 x 200 s / 3600 = 25; rollouts 76,800 x 360 s / 3600 = 7680
    assert (p.value("validate", "sandbox core-hours"), p.value("rollouts", "sandbox core-hours")) == pytest.approx((25, 7680))
    assert p.value("total", "sandbox core-hours") == pytest.approx(7705)
    assert p.value("train", "GPU-hours") == pytest.approx(GPU_H) and GPU_H == pytest.approx(7.02586, abs=1e-5)
    assert p.get("train", "MFU").source == "stated default, not measured"
    # wall on 8 nodes: 7705 / (8 x 64) = 15.0488 h of sandbox + 7.02586 / (8 x 8) = 0.10978 h of training
    assert p.value("wall", "sandbox") == pytest.approx(15.048828, abs=1e-6)
    assert p.value("wall", "training") == pytest.approx(0.109779, abs=1e-6)
    assert p.value("wall", "teacher LLM") is None and "no teacher.requests_per_minute" in p.get("wall", "teacher LLM").source
    assert p.value("wall", "total") == pytest.approx(15.158607, abs=1e-6)
    assert "leaves out the teacher's time" in p.get("wall", "total").source
    assert p.value("wall", "total days") == pytest.approx(15.158607 / 24, abs=1e-6)


def test_every_projected_number_names_its_source():
    p = plan8()
    for r in p.rows:
        assert r.source, r
    # a projected quantity cites the measured figure it multiplies
    assert "[rollouts.input_tokens]" in p.get("rollouts", "input tokens").source
    assert "[validate.core_s]" in p.get("validate", "sandbox core-hours").source
    assert "a lower bound" in p.get("sftdata", "SFT tokens").source   # the measured run cut at 8192, the target at 32768


def test_zero_throughput_stage_says_it_cannot_project(run_copy):
    d, edit = run_copy
    edit(lambda m: m["stages"]["05_validated"].update(valid=0))
    p = plan8(d)
    why = "cannot project: validate kept 0 of 9 in the measured run"
    assert p.value("validate", "input tokens") == pytest.approx(450_000)   # its own work is still projected: 450 x 1000
    for q in [("validate", "kept"), ("rollouts", "units"), ("rollouts", "teacher cost"), ("filter", "kept"),
              ("sftdata", "SFT tokens"), ("train", "GPU-hours"), ("total", "teacher cost"), ("wall", "total")]:
        r = p.get(*q)
        assert r.value is None and r.source == why, (q, r)


def test_stage_with_no_units_done(run_copy):
    d, edit = run_copy
    edit(lambda m: m["stages"]["06_rollouts"].update(units_done=0, errors={}, calls=0, input_tokens=0, output_tokens=0))
    p = plan8(d)
    assert p.value("rollouts", "kept") is None
    assert p.get("rollouts", "kept").source == "cannot project: rollouts did no units in the measured run (0 of 24 done)"
    assert p.value("rollouts", "input tokens") is None and p.value("total", "input tokens") is None


def test_missing_stage_record_and_stated_figures(run_copy):
    d, edit = run_copy
    edit(lambda m: m["stages"].pop("08_sft"))
    (d / "09_train" / "student" / "meta.json").unlink()
    p = plan8(d)
    assert p.value("sftdata", "SFT tokens") is None
    assert "no record of the sftdata stage (08_sft)" in p.get("sftdata", "SFT tokens").source
    assert p.value("train", "measured throughput (not used)") is None and p.get("train", "measured throughput (not used)").source.startswith("missing")
    # stated figures fill the gap, and say so: 38,400 x 1 x 4000 tokens = 153.6M SFT tokens
    p = plan8(d, assume={"sftdata.kept_per_unit": 1.0, "sftdata.tokens_per_example": 4000})
    assert p.value("sftdata", "SFT tokens") == pytest.approx(153.6e6)
    assert p.get("sftdata", "tokens_per_example").source.startswith("stated: --assume sftdata.tokens_per_example=4000")
    with pytest.raises(SynthsciError, match="no such figure"):
        plan8(d, assume={"sftdata.tokens": 1})


def test_scripted_teacher_tokens_are_flagged(run_copy):
    d, edit = run_copy
    def scripted(m):
        for e in m["stages"].values(): e["config"]["teacher"]["spec"] = "scripted"
    edit(scripted)
    figs, _, _ = measure(d)
    assert "a scripted teacher's tokens are not an LLM's" in figs["proposals.input_tokens"].source
    assert "expert policy" in figs["rollouts.input_tokens"].source and "not an LLM agent's tokens" in figs["rollouts.input_tokens"].source
    # the projection still prices the target's teacher: the same tokens, the same money as with a measured LLM
    assert plan8(d).value("total", "teacher cost") == pytest.approx(3506.0875)


def test_prices_come_from_synthsci_llm_price(monkeypatch):
    assert llm.price("openai:gpt-5") == (1.25, 10.0)
    # proposals: 2M in and 0.5M out; at a changed price table (2 and 20 per 1M) that is 4 + 10 = 14 USD
    monkeypatch.setitem(llm.PRICES, "gpt-5", (2.0, 20.0))
    assert plan8().value("proposals", "teacher cost") == pytest.approx(14.0)
    # an unknown model cannot be priced; a self-hosted server costs nothing
    cfg = load_config(TARGET, ["teacher.spec=openai:some-new-model"])
    figs = measure(FIX / "run")[0]
    rows = {(r.stage, r.quantity): r for r in project(cfg, figs, Cluster(nodes=8))}
    assert rows[("topics", "teacher cost")].value is None and "no price known for openai:some-new-model" in rows[("topics", "teacher cost")].source
    assert rows[("total", "teacher cost")].value is None
    cfg = load_config(TARGET, ["teacher.spec=openai:Qwen/Qwen3-235B@http://10.0.0.1:8000/v1"])
    rows = {(r.stage, r.quantity): r for r in project(cfg, figs, Cluster(nodes=8))}
    assert rows[("total", "teacher cost")].value == 0.0


def test_rate_limits_give_the_teachers_time():
    cfg = load_config(TARGET)
    figs = measure(FIX / "run")[0]
    cfg.teacher.requests_per_minute = 10_000   # the field another module adds to LLMConfig; read with getattr
    rows = {(r.stage, r.quantity): r for r in project(cfg, figs, Cluster(nodes=8))}
    # calls: 200 + 1250 + 400 + 600 + 300 + 1,536,000 = 1,538,750 / 10,000 per min = 153.875 min = 2.5646 h
    assert rows[("wall", "teacher LLM")].value == pytest.approx(153.875 / 60)
    assert rows[("wall", "total")].value == pytest.approx(15.048828 + 0.109779 + 153.875 / 60, abs=1e-5)
    cfg.teacher.tokens_per_minute = 2_000_000
    rows = {(r.stage, r.quantity): r for r in project(cfg, figs, Cluster(nodes=8))}
    # per stage the larger of calls/rpm and tokens/tpm, in minutes: topics 150,000/2M = 0.075; proposals 2.5M/2M = 1.25;
    # grounding 0.44M/2M = 0.22; taskgen 4.2M/2M = 2.1; validate 1.35M/2M = 0.675; rollouts 1.6896e9/2M = 844.8 -> 849.12 min
    assert rows[("wall", "teacher LLM")].value == pytest.approx(849.12 / 60)


def test_max_steps_gives_an_upper_bound_on_training_tokens():
    cfg = load_config(TARGET, ["stages.train.max_steps=100", "stages.train.batch_size=1", "stages.train.grad_accum=4"])
    rows = {(r.stage, r.quantity): r for r in project(cfg, measure(FIX / "run")[0], Cluster(nodes=2, gpus_per_node=8))}
    # 100 steps x 1 x 4 x 32768 tokens x 16 GPUs = 209,715,200 tokens
    assert rows[("train", "training tokens")].value == 209_715_200
    assert rows[("train", "training tokens")].source.startswith("upper bound")


def test_cli_needs_a_run(capsys):
    assert plan_main([str(TARGET)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {NEEDS_RUN}"
    assert NEEDS_RUN == "synthsci plan needs a measured run: run the quickstart (or any run) first and pass --from data/runs/<run_id>"
    assert plan_main([str(TARGET), "--from", str(FIX)]) == 2
    assert "is not a run folder (no manifest.json)" in capsys.readouterr().err


@pytest.mark.parametrize("args, msg", [(["--nodes", "0"], "--nodes must be at least 1"), (["--mfu", "1.5"], "--mfu must be in (0, 1]"),
                                       (["--gpu", "tpu9"], "unknown GPU 'tpu9'"), (["--assume", "rollouts.calls"], "is not STAGE.FIGURE=NUMBER")])
def test_cli_bad_options_are_one_line_errors(capsys, args, msg):
    assert plan_main([str(TARGET), "--from", str(FIX / "run"), *args]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1


def test_cli_writes_its_files(tmp_path, capsys):
    out = tmp_path / "plan"
    assert plan_main([str(TARGET), "--from", str(FIX / "run"), "--nodes", "8", "--mfu", "0.4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["plan.json", "plan.md", "plan.png"]
    assert (out / "plan.md").read_text() in printed and "| total | teacher cost | 3,506.09 | USD |" in printed
    data = json.loads((out / "plan.json").read_text())
    assert data["cluster"]["nodes"] == 8 and data["cluster"]["mfu"] == 0.4
    gpu = next(r for r in data["rows"] if (r["stage"], r["quantity"]) == ("train", "GPU-hours"))
    assert gpu["value"] == pytest.approx(GPU_H * 0.35 / 0.4) and "0.4 MFU" in gpu["source"]
    assert (out / "plan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
