# Two commands a newcomer needs: `make demo` (the whole job on the local sandbox) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench sandbox sandbox-down clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# Both run as root on a fresh Debian machine: the sandbox installs docker.io, docker-registry, apache2-utils
# and busybox-static with apt when missing, and starts dockerd and a registry itself.

# Deploys examples/hello v1, rolls out v2 under load, fails v3 and rolls back, then tears down.
demo: $(STAMP)
	$(PY) -m tests.sandbox demo

test: lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check runner tests bench
	$(VENV)/bin/ruff format --check runner tests bench
	$(VENV)/bin/mypy runner

# Start the sandbox by hand (Ctrl-C or `make sandbox-down` to stop).
sandbox: $(STAMP)
	$(PY) -m tests.sandbox up

sandbox-down: $(STAMP)
	$(PY) -m tests.sandbox down

# How soon ecs-ship, `aws ecs wait services-stable` and `ecs deploy` notice success and failure (bench/).
bench: $(STAMP)
	$(PY) -m bench.compare_peers

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
