# The two set-up commands of the README: `make demo` and `make test` (each sets up on first use).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench clean

demo: $(VENV)/.ready
	$(PY) examples/demo.py

test: $(VENV)/.ready
	$(PY) -m pytest -q

bench: $(VENV)/.ready
	$(PY) -m benchmarks

$(VENV)/.ready: pyproject.toml scripts/setup.sh
	VENV=$(VENV) scripts/setup.sh
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info
