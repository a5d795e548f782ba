import json, re, sys, collections
from synthsci.llm import LocalLLM
from synthsci.agent import history_view
r = json.load(open('/tmp/eff/data/runs/effect/10_eval/runs/finetuned/traj/task-547b703058bd-s0/task-547b703058bd-s0.traj'))
h = [{"role": m["role"], "content": m["content"]} for m in r["history"][:6]]
llm = LocalLLM('/tmp/eff/data/runs/effect/09_train/student')
def action(t):
    m = re.search(r"```\n?(.*?)\n?```", t, re.S); return (m.group(1) if m else t)[:40].replace("\n", " ")
out = {}
for label, shift in (("eval budget (10 steps)", 0), ("training budget (30 steps)", 20)):
    msgs = [{**m, "content": re.sub(r"Remaining Steps: (\d+)", lambda g: f"Remaining Steps: {int(g.group(1)) + shift}", m["content"])} for m in h]
    view = history_view(msgs, 2, 600)
    acts = [action(llm.complete(view, max_tokens=60, temperature=0.0).text)] + [action(llm.complete(view, max_tokens=60, temperature=0.3, seed=s).text) for s in range(6)]
    out[label] = collections.Counter(acts).most_common()
    print(label, out[label], flush=True)
json.dump(out, open('/tmp/diag.json', 'w'), indent=1)
