# biasdrift: two commands on a fresh machine with Python 3.11 and pip.
#   make demo   set up .venv, run the demo tier end to end (--cores 2), write the report
#   make test   set up .venv, lint, run the test suite
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
SNAKEMAKE := $(BIN)/snakemake
# keep Hugging Face caches and telemetry inside the checkout / off
export HF_HUB_DISABLE_TELEMETRY := 1
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.PHONY: help venv demo d3m-sweep report findings test test-graded lint dryrun smoke smoke-config bench lock install-slurm-profile clean

help:
	@echo "make demo                  venv + demo tier end to end + results/report.html + make findings"
	@echo "make findings              check every study's demo claims on results/ (exit 1 when one fails)"
	@echo "make d3m-sweep             the demo + d3m on 4 more generated worlds (config/sweeps/d3m.yaml), then the report"
	@echo "make test                  venv + lint + test suite (what CI runs)"
	@echo "make test-graded           every graded world: each study's check at effect 0 and at the demo's effect"
	@echo "make dryrun                snakemake -n for the demo and every config/paper/*.yaml and config/smoke/*.yaml"
	@echo "make smoke                 the paper configs end to end offline on real-size random models (.smoke/)"
	@echo "make smoke-config          regenerate config/smoke/<study>.yaml from config/paper + config/smoke/overrides"
	@echo "make bench                 every bench/bench_*.py (results in bench/results/)"
	@echo "make install-slurm-profile copy profiles/slurm to ~/.config/snakemake/slurm (then edit its placeholders)"
	@echo "make lock                  regenerate constraints.txt from a fresh venv"

venv: $(STAMP)

$(STAMP): requirements.txt constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), f"Python >= 3.11 needed, found {sys.version}"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	@# kronfluence declares torchvision but never imports it; the only torchvision that
	@# resolves against torch 2.13 is a CUDA build that breaks transformers on CPU.
	$(BIN)/python -m pip install --quiet --no-deps kronfluence==1.0.1
	@if $(BIN)/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torchvision') is None)"; then \
		echo "torchvision got installed: it breaks transformers on CPU (see ../shared/specs/dependencies.md)"; exit 1; fi
	$(BIN)/python -c "import torch, transformers, trl, peft, kronfluence, trak, snakemake; print('venv ok: torch', torch.__version__)"
	touch $(STAMP)

demo: venv
	$(SNAKEMAKE) --cores $(CORES)
	$(MAKE) report
	$(MAKE) findings

# d3m beyond the demo's world: config/sweeps/d3m.yaml merged onto config/config.yaml
# (runs whatever of the demo is missing, then the four sweep worlds: 7.5 min on 2 cores after
# the demo, docs/d3m.md); the report then holds the sweep's figure and table
D3M_SWEEP := config/sweeps/d3m.yaml
d3m-sweep: venv
	$(SNAKEMAKE) --cores $(CORES) --configfile $(D3M_SWEEP)
	$(SNAKEMAKE) --report results/report.html --configfile $(D3M_SWEEP)
	@echo "sweep: results/d3m/sweep/sweep.csv (every world and method), sweep.json (counts), plots/sweep.svg"

# each study's demo claims, with numbers and intervals (biasdrift.findings)
findings: venv
	PYTHONPATH=workflow/scripts $(BIN)/python -m biasdrift.findings --json results/findings.json

report: venv
	$(SNAKEMAKE) --report results/report.html
	@echo "report: results/report.html"

lint: venv
	$(BIN)/ruff check workflow/scripts tests bench
	$(BIN)/ruff format --check workflow/scripts tests bench
	$(BIN)/snakefmt --check Snakefile rules/
	$(SNAKEMAKE) --lint

# two pytest-xdist workers (each file on one; the files of one end-to-end run together:
# tests/conftest.py); PYTEST_WORKERS=0 runs in one process
PYTEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -m "not gpu and not slow" -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# every graded world: the five at the demo effect (also in make test) and each at effect 0 (tests/test_graded.py)
test-graded: venv
	$(BIN)/python -m pytest tests/test_graded.py $(PYTEST_ARGS)

# config/paper/politune.yaml needs the Political Compass statements, which you supply
# (README "Political Compass statements"): without them its dry run fails, as it should.
# Here that one dry run reads a header-only stand-in unless your file exists.
PC_STATEMENTS := resources/downloads/politune/pc_statements.tsv

dryrun: venv
	$(SNAKEMAKE) -n --quiet rules
	@printf 'id\ttext\taxis\tdirection\tw0\tw1\tw2\tw3\n' > /tmp/biasdrift-pc-standin.tsv
	@for f in config/paper/*.yaml config/smoke/*.yaml; do echo "== $$f"; \
		if [ "$$f" = config/paper/politune.yaml ] && [ ! -e $(PC_STATEMENTS) ]; then \
			echo "(no $(PC_STATEMENTS): a header-only stand-in)"; \
			$(SNAKEMAKE) -n --quiet rules --configfile $$f --replace-workflow-config \
				--config 'datasets={"pc-statements": {"path": "/tmp/biasdrift-pc-standin.tsv"}}' || exit 1; \
		else $(SNAKEMAKE) -n --quiet rules --configfile $$f --replace-workflow-config || exit 1; fi; done

# STUDIES="d3m specdec" runs some; each study runs in its own copy of the workflow in .smoke/
smoke: venv
	PYTHONPATH=workflow/scripts $(BIN)/python -m biasdrift.smoke.run --cores $(CORES) $(STUDIES)

smoke-config: venv
	PYTHONPATH=workflow/scripts $(BIN)/python -m biasdrift.smoke.derive

bench: venv
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lock:
	rm -rf /tmp/biasdrift-lock && $(PYTHON) -m venv /tmp/biasdrift-lock
	/tmp/biasdrift-lock/bin/python -m pip install --quiet -r requirements.txt
	( sed -n '1,3p' constraints.txt; /tmp/biasdrift-lock/bin/python -m pip freeze \
		| sed 's/^torch==\(.*\)+cpu/torch==\1/' | grep -v '^kronfluence==' ) > constraints.txt.new
	mv constraints.txt.new constraints.txt

# a copy, so that adapting its placeholders leaves the checkout clean; never overwrites
install-slurm-profile:
	@if [ -e $(HOME)/.config/snakemake/slurm ]; then \
		echo "$(HOME)/.config/snakemake/slurm exists: left as it is (remove it to reinstall)"; exit 1; fi
	mkdir -p $(HOME)/.config/snakemake
	cp -r profiles/slurm $(HOME)/.config/snakemake/slurm
	@echo "installed: snakemake --profile slurm  now uses $(HOME)/.config/snakemake/slurm;"
	@echo "adapt its placeholders: partitions.yaml (partition names) and slurm_account in config.yaml"

clean:
	rm -rf results logs benchmarks .snakemake .smoke
