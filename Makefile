# beyond-imagenet: `make demo` runs the offline demo pipeline, `make test` runs the tests.
# Both create the virtual environment from requirements.txt on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL ?= convnext_sup
MODELS ?=
FIND_LINKS := $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),)

export DVC_NO_ANALYTICS := 1
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: help venv demo demo-data repro probe test test-gpu test-fast bench bench-probe lint format mlflow-ui fetch-weights list-models clean

help: ## show this help
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-15s %s\n", $$1, $$2}'
	@echo "  variables: MODEL=convnext_sup (probe), MODELS=\"vit_sup convnext_clip\" (fetch-weights), VENV=$(VENV)"

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python $(FIND_LINKS) -r requirements.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

venv: $(STAMP) ## create the virtual environment (pinned versions)

demo-data: $(STAMP) ## generate the seeded offline demo dataset under data/demo
	$(BIN)/beyond-imagenet make-demo-data

demo: demo-data ## run the whole pipeline offline on the demo data (dvc repro), log to MLflow
	HF_HUB_OFFLINE=1 $(BIN)/dvc repro
	@echo
	@sed -n '/^## /q;p' reports/report.md
	@echo "The whole report: reports/report.html (self-contained, opens offline) and reports/report.md"
	@$(BIN)/beyond-imagenet mlflow-links
	@echo "Browse the runs: make mlflow-ui (then open a link above)   |   metrics: $(BIN)/dvc metrics show"

repro: $(STAMP) ## dvc repro with the virtual environment on PATH
	$(BIN)/dvc repro

probe: $(STAMP) ## VTAB linear probes of one model across the preset: extract, tune, probe (MODEL=convnext_sup)
	$(BIN)/beyond-imagenet probe --models $(MODEL)

test: $(STAMP) ## run the test suite (no GPU, no network needed)
	$(BIN)/python -m pytest -m "not gpu and not network"

test-gpu: $(STAMP) ## on a CUDA machine: the GPU paths (nvJPEG decode, channels_last, bf16, the whole pass) against the CPU reference
	$(BIN)/python -m pytest -m gpu tests/inference/test_gpu_paths.py

test-fast: $(STAMP) ## tests without the slow end-to-end ones
	$(BIN)/python -m pytest -m "not gpu and not network and not slow"

bench: $(STAMP) ## benchmarks -> benchmarks/*.json: CKA memory flat in N; inference img/s model-only vs end-to-end (targets on a GPU, small CPU run otherwise; BENCH_ARGS="--workdir DIR"); intervals/comparisons time and memory at the paper's sizes; the procedural world's 2x2: training time, img/s, top-1
	$(BIN)/python benchmarks/cka_memory.py
	$(BIN)/python benchmarks/throughput.py $(BENCH_ARGS)
	test ! -f benchmarks/throughput_cuda.json || $(BIN)/python benchmarks/suite_estimate.py --throughput benchmarks/throughput_cuda.json
	$(BIN)/python benchmarks/intervals_speed.py
	$(BIN)/python benchmarks/world_training.py

bench-probe: $(STAMP) ## benchmark: probe tuning + fitting vs scikit-learn on the same features (DEVICE=cpu|cuda)
	$(BIN)/python benchmarks/probe_speed.py --device $(or $(DEVICE),cpu)

lint: $(STAMP) ## ruff (incl. complexity and docstrings), format check, and the import-linter layer contract
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/lint-imports

format: $(STAMP) ## apply ruff formatting and fixes
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

list-models: $(STAMP) ## show the model catalogue
	$(BIN)/beyond-imagenet list-models

MLFLOW_PORT ?= 5000
mlflow-ui: $(STAMP) ## serve mlruns/ on http://127.0.0.1:5000 (MLFLOW_PORT=...): first the links, one per analysis
	mkdir -p mlruns/artifacts
	@$(BIN)/beyond-imagenet mlflow-links --port $(MLFLOW_PORT)
	$(BIN)/mlflow server --backend-store-uri sqlite:///mlruns/mlflow.db --artifacts-destination mlruns/artifacts \
		--host 127.0.0.1 --port $(MLFLOW_PORT)

fetch-weights: $(STAMP) ## download weights of MODELS (default: params.yaml models) into the HF cache
	$(BIN)/beyond-imagenet fetch-weights $(if $(MODELS),--models $(MODELS),)

clean: ## remove generated outputs (keeps the venv, data and MLflow runs)
	rm -rf cache features results reports results-byo
