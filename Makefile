# hubtool: every target sets itself up from a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: venv test demo lint clean

venv: $(STAMP)

# torch is pinned and installed first: an unpinned torch pulls several GB of CUDA packages.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/hubtool list
	$(BIN)/hubtool build --all

lint: $(STAMP)
	$(BIN)/python -m compileall -q hubtool tests

clean:
	rm -rf artifacts .pytest_cache
