# Quick start: `make demo` runs the main job, `make test` runs the tests.
# Each target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `make test`: the whole suite on two workers (its native golden build uses cc), the golden suite again
# as a clang build (also under ASan/UBSan), then on these emulated boards over pyserial
# (mps2-an385 runs Cortex-M0 code, then its own Cortex-M3; an500 is a Cortex-M7, an505 a
# Cortex-M33).
BOARDS := qemu:mps2-an386 qemu:mps2-an385:cortex-m0 qemu:microbit qemu:mps3-an547 \
          qemu:netduinoplus2 qemu:mps2-an385 qemu:mps2-an500 qemu:mps2-an505

.PHONY: demo test lint sysdeps bench bench-table clean

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
	$(PY) -m pytest -q -n 2
	HOST_CC=clang $(PY) -m pytest -q tests/test_golden.py
	$(PY) -m pytest -q -rN tests/test_golden.py $(foreach b,$(BOARDS),--edgeconv-target $(b))

bench: $(STAMP) sysdeps
	$(PY) -m edgeconv.bench reference

# The README's results tables: L1-L7 on M4, M0 and M55 next to CMSIS-NN.
bench-table: $(STAMP) sysdeps
	@for t in qemu:mps2-an386 qemu:mps2-an385:cortex-m0 qemu:mps3-an547; do \
		echo "### $$t"; $(PY) -m edgeconv.bench.target --target $$t --markdown || exit 1; echo; \
	done

clean:
	rm -rf $(VENV) build dist *.egg-info
