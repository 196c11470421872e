# The two set-up commands of the README: `make demo` and `make test` (each sets up on first use).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench docs dask-demo clean

# The demo needs circuitgrad and its dependencies only; the tests the `test` extra too.
demo: $(VENV)/.ready
	$(PY) examples/demo.py

# The gradient of a mean loss over 10⁶ samples on a local Dask cluster (examples/dask_gradient.py).
dask-demo: $(VENV)/.test-ready
	$(PY) examples/dask_gradient.py --samples 1e6

test: $(VENV)/.test-ready
	$(PY) -m pytest -q

# ruff's pyflakes and pycodestyle errors over the whole tree (pyproject.toml [tool.ruff]); CI runs it.
lint: $(VENV)/.test-ready
	$(PY) -m ruff check .

$(VENV)/.test-ready: $(VENV)/.ready pyproject.toml
	EXTRAS=test VENV=$(VENV) scripts/setup.sh
	touch $@

# The benchmarks against peers (installs the `bench` extra: JAX, PyTorch CPU, CasADi ...).
bench: $(VENV)/.bench-ready
	$(PY) -m benchmarks

$(VENV)/.bench-ready: $(VENV)/.ready pyproject.toml
	$(PY) -m pip install -q -e ".[bench]"
	touch $@

# The documentation site, built into site/ (open site/index.html); strict: warnings fail.
docs: $(VENV)/.docs-ready
	$(PY) -m mkdocs build --strict

$(VENV)/.docs-ready: $(VENV)/.ready pyproject.toml
	$(PY) -m pip install -q -e ".[docs]"
	touch $@

$(VENV)/.ready: pyproject.toml setup.py scripts/setup.sh circuitgrad/lower/_tape.c \
		circuitgrad/lower/_tape_ops.h circuitgrad/lower/csrc/prelude.h \
		circuitgrad/lower/tape_sources.py
	VENV=$(VENV) scripts/setup.sh
	touch $@

clean:
	rm -rf $(VENV) build site *.egg-info circuitgrad/lower/_tape*.so
