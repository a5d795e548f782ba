"""Where the time of a student run goes, and what reusing the prompt prefix's key/value cache saves.

One student run is what the evaluate stage does k times per task and method: the base SmolLM2-135M-Instruct
(`local`, transformers in this process) driving the agent loop on a fixture task (tests/fixtures/tasks/wine) for
8 steps of 64 new tokens a turn, greedy (the evaluate stage allows 128: too slow to measure twice here), shown what the SFT data shows it (every observation,
each cut to 2000 characters). The same run is made twice in this process, on weights loaded once:

    before  LocalLLM(prefix_cache=False): the whole growing prompt encoded every turn (the old behaviour)
    after   LocalLLM(prefix_cache=True):  only what follows the longest prefix shared with the last call

and the time is split into the process's own start (importing torch and transformers, loading the weights: what each
fresh rollout process pays), the prompt's rendering, its encoding (prefill: up to the first new token), generation of
the rest (decode), and the task's own commands in the sandbox (the rest of the run's wall time). Both runs must give
the same answers token for token (greedy decoding): the benchmark fails otherwise.

    python bench/student_inference.py --quick   # 2 steps, 16 tokens a turn; prints, writes nothing (< 1 minute)
    python bench/student_inference.py           # writes bench/results/student_inference.json
"""
import argparse, json, shutil, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Bench

ROOT = Path(__file__).resolve().parents[1]
TASK = ROOT / "tests" / "fixtures" / "tasks" / "wine"


def one_run(llm, steps: int, max_tokens: int, work: Path, view: dict) -> dict:
    "One agent run of `llm` on the wine task: wall time, the split of the model's time, and the answers."
    from synthsci.aci import load_task
    from synthsci.agent import AgentConfig, LLMPolicy, run_agent
    from synthsci.sandbox import SandboxLimits
    before = dict(llm.timing)
    t0 = time.perf_counter()
    traj = run_agent(load_task(TASK), LLMPolicy(llm, max_tokens=max_tokens, temperature=0.0), work,
                     AgentConfig(max_steps=steps, command_timeout_s=25, training_timeout_s=60, **view), limits=SandboxLimits(timeout=120))
    wall = time.perf_counter() - t0
    d = {k: llm.timing[k] - before[k] for k in before}
    model_s = d["render_s"] + d["prefill_s"] + d["decode_s"]
    return dict(wall_s=round(wall, 2), model_s=round(model_s, 2), render_s=round(d["render_s"], 2), prefill_s=round(d["prefill_s"], 2),
                decode_s=round(d["decode_s"], 2), sandbox_and_loop_s=round(wall - model_s, 2), calls=d["calls"], prompt_tokens=d["prompt_tokens"],
                prompt_tokens_reused=d["reused_tokens"], new_tokens=d["new_tokens"], steps=len(traj.steps), exit_status=traj.exit_status,
                format_errors=traj.model_stats.get("format_errors", 0),
                answers=[s.response for s in traj.steps] + [r["text"] for r in traj.model_stats.get("rejected_answers", [])])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    bench = Bench("student_inference", a.quick)
    steps, max_tokens = (2, 16) if a.quick else (8, 64)
    view = dict(keep_observations=None, max_observation_chars=2000)
    t = time.perf_counter()
    import torch, transformers  # noqa: F401  (what a fresh rollout process imports first)
    from synthsci.llm import LocalLLM
    import_s = time.perf_counter() - t
    before, after = LocalLLM(prefix_cache=False), LocalLLM(prefix_cache=True)
    before.load(); after.load()
    load_s = before.timing["load_s"]
    runs = {}
    with tempfile.TemporaryDirectory() as d:
        for name, llm in (("before", before), ("after", after)):
            shutil.rmtree(Path(d) / "ws", ignore_errors=True)   # one workspace path: the prompt names it, so both runs are asked the same
            runs[name] = one_run(llm, steps, max_tokens, Path(d) / "ws", view)
            print(f"{name}: " + json.dumps({k: v for k, v in runs[name].items() if k != "answers"}), flush=True)
    same = runs["before"]["answers"] == runs["after"]["answers"]
    speed = lambda k: round(runs["before"][k] / runs["after"][k], 2) if runs["after"][k] else None
    per_process = dict(import_s=round(import_s, 2), load_weights_s=round(load_s, 2))
    result = dict(task="tests/fixtures/tasks/wine", model="SmolLM2-135M-Instruct (local)", steps=steps, max_tokens=max_tokens, temperature=0.0,
                  student_view=view, torch_threads=torch.get_num_threads(), per_process=per_process,
                  before={k: v for k, v in runs["before"].items() if k != "answers"}, after={k: v for k, v in runs["after"].items() if k != "answers"},
                  identical_answers=same, speedup=dict(wall=speed("wall_s"), model=speed("model_s"), prefill=speed("prefill_s")),
                  share_of_before_run={k: round(runs["before"][k] / (runs["before"]["wall_s"] + import_s + load_s), 3)
                                       for k in ("prefill_s", "decode_s", "render_s", "sandbox_and_loop_s")} | {
                      "process_start_s": round((import_s + load_s) / (runs["before"]["wall_s"] + import_s + load_s), 3)})
    bench.write(result)
    if not same: raise SystemExit("the prefix cache changed the answers: " + json.dumps([runs["before"]["answers"], runs["after"]["answers"]])[:2000])
    b, f = runs["before"], runs["after"]
    print(f"student run ({steps} steps, {max_tokens} tokens/turn, {bench.load()}): wall {b['wall_s']}s -> {f['wall_s']}s (x{speed('wall_s')}), "
          f"prompt encoding {b['prefill_s']}s -> {f['prefill_s']}s (x{speed('prefill_s')}, {f['prompt_tokens_reused']}/{f['prompt_tokens']} prompt tokens reused), "
          f"decode {b['decode_s']}s -> {f['decode_s']}s, sandbox {b['sandbox_and_loop_s']}s, process start {round(import_s + load_s, 1)}s; answers identical: {same}")


if __name__ == "__main__":
    main()
