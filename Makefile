# The two set-up commands of the README. Both make .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint cards clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: $(VENV)/.installed  ## classify a freshly written clip with the bundled demo model
	$(PY) -m tokshift_zoo.cli demo

test: $(VENV)/.installed  ## run the test suite (CPU, no network)
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check tokshift_zoo tests hubconf.py benchmarks

cards: $(VENV)/.installed  ## regenerate model_cards/ from the registry
	$(PY) -m tokshift_zoo.model_cards

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
