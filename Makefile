# Quick start: `make demo` runs the main job, `make test` runs the tests.
# Each target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint sysdeps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

sysdeps:
	@bash scripts/sysdeps.sh

demo: $(STAMP) sysdeps
	$(PY) -m edgeconv.demo

lint: $(STAMP)
	$(PY) -m ruff check edgeconv tests

test: $(STAMP) sysdeps lint
	$(PY) -m pytest -q

bench: $(STAMP) sysdeps
	$(PY) -m edgeconv.bench reference

clean:
	rm -rf $(VENV) build dist *.egg-info
