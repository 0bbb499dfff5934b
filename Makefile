# Two commands a newcomer needs: `make test` (everything CI runs) and, once the runner lands, `make demo`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint sandbox clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# Runs as root on a fresh Debian machine: the sandbox installs docker.io, docker-registry, apache2-utils and
# busybox-static with apt when missing, and starts dockerd and a registry itself.
test: lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check runner tests
	$(VENV)/bin/ruff format --check runner tests
	$(VENV)/bin/mypy runner

# Start the sandbox by hand (Ctrl-C or `make sandbox-down` to stop).
sandbox: $(STAMP)
	$(PY) -m tests.sandbox up

sandbox-down: $(STAMP)
	$(PY) -m tests.sandbox down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
