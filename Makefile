# `make demo` and `make test` create .venv when it is missing and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-floor venv lint bench gpu-check gpu-check-data clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/lowres demo --out demo

test: $(STAMP) lint
	$(BIN)/python -m pytest tests

# The oldest torch/torchvision that pyproject.toml admits, installed FIRST: installing lowres
# must keep it (no dependency may pull a newer torch), then the whole suite runs on it.
FLOOR_TORCH := 2.4.1
FLOOR_VISION := 0.19.1
FLOOR := .venv-floor

$(FLOOR)/.installed: pyproject.toml
	@test -x $(FLOOR)/bin/python || $(PYTHON) -m venv $(FLOOR)
	$(FLOOR)/bin/python -m pip install --quiet "torch==$(FLOOR_TORCH)" "torchvision==$(FLOOR_VISION)"
	$(FLOOR)/bin/python -m pip install --quiet -e ".[test]"
	$(FLOOR)/bin/python -c "import torch, torchvision; v = (torch.__version__.split('+')[0], \
	  torchvision.__version__.split('+')[0]); assert v == ('$(FLOOR_TORCH)', '$(FLOOR_VISION)'), \
	  f'installing lowres replaced the torch it found: {v}'; print('kept torch', *v)"
	@touch $@

test-floor: $(FLOOR)/.installed
	$(FLOOR)/bin/python -m pytest tests

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/augment.py
	$(BIN)/python benchmarks/train_step.py

# On a GPU machine: no venv, nothing installed; the machine's own Python and torch.
# `make gpu-check-data` (here, from ../shared) packs the tiny40 subset it carries along.
gpu-check:
	PYTHONPATH=src $(PYTHON) benchmarks/gpu_check.py --out $${OUT:-gpu-check}

gpu-check-data:
	$(PYTHON) benchmarks/gpu_check_data.py

clean:
	rm -rf demo runs .pytest_cache gpu-check
