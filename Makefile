# The two set-up commands of the README. Both make .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint cards gpu-check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,onnx]'
	touch $@

demo: $(VENV)/.installed  ## classify a freshly written clip with the bundled demo model
	$(PY) -m tokshift_zoo.cli demo

test: $(VENV)/.installed  ## run the test suite (CPU, no network)
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check tokshift_zoo tests hubconf.py benchmarks

cards: $(VENV)/.installed  ## regenerate model_cards/ from the registry
	$(PY) -m tokshift_zoo.model_cards

# On a machine with CUDA: the cuda-marked tests and every benchmark suite on the GPU (benchmarks/gpu_check.sh).
# `make gpu-check PYTHON=python3 VENV=` uses a python that already has torch and timm instead of making .venv.
ifeq ($(VENV),)
GPU_CHECK_PYTHON := $(PYTHON)
GPU_CHECK_DEPS :=
else
GPU_CHECK_PYTHON := $(PY)
GPU_CHECK_DEPS := $(VENV)/.installed
endif

gpu-check: $(GPU_CHECK_DEPS)
	PYTHON="$(GPU_CHECK_PYTHON)" bash benchmarks/gpu_check.sh

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
