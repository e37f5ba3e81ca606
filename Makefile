# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv and installs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==25.3
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,bfcl,demo]'
	# BFCL's data and multi-turn API classes, without its heavy pins (numpy 1.26, torch, provider SDKs).
	$(BIN)/pip install -q --no-deps bfcl-eval==2026.3.23
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/inftool demo

test: $(STAMP)
	$(BIN)/ruff check inftool_env policies train tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check inftool_env policies train tests bench
	$(BIN)/ruff format --check inftool_env policies train tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/bench_transports.py
	$(BIN)/python bench/bench_env.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
