PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export NUMBA_CACHE_DIR ?= $(CURDIR)/.venv/numba_cache

.PHONY: demo test lint docs bench venv clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test,docs,bench]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m pcrsolve demo

lint: $(STAMP)
	$(PY) -m ruff check pcrsolve tests benchmarks examples docs

# Two workers, one test file each at a time: most of a cold run is Numba compiling kernels.
test: lint
	$(PY) -m pytest -n auto --dist loadfile
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -m kernels -p no:cacheprovider
	@if [ -f docs/conf.py ]; then $(MAKE) --no-print-directory docs; fi

docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) docs/_build docs/auto_examples build dist *.egg-info
