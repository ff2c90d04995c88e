# `make demo` and `make test` create .venv when it is missing and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv lint bench gpu-check gpu-check-data clean

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
