# Two commands a newcomer needs: `make demo` (the whole job on the local sandbox) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint lock bench sandbox sandbox-down clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# Both run as root on a fresh Debian machine: the sandbox installs docker.io, docker-registry, apache2-utils
# and busybox-static with apt when missing, and starts dockerd and a registry itself.

# Verifies, deploys examples/hello v1, rolls out v2 under load, fails v3 and rolls back, canary v4, tears down.
demo: $(STAMP)
	$(PY) -m tests.sandbox demo

test: lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check runner tests bench
	$(VENV)/bin/ruff format --check runner tests bench
	$(VENV)/bin/mypy runner

# requirements/runner.lock, what the GitHub action installs with --require-hashes: exact versions and the hash of
# every file each version has on PyPI, resolved for Python 3.10+ on any OS. Kept pins stay unless
# LOCK_FLAGS=--upgrade (or --upgrade-package NAME) is given.
LOCK_FLAGS ?=
lock:
	$(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/pip install --quiet uv==0.13.9
	build/lock-venv/bin/uv pip compile --quiet --universal --python-version 3.10 --generate-hashes \
		--custom-compile-command 'make lock' $(LOCK_FLAGS) pyproject.toml requirements/runner.in \
		-o requirements/runner.lock

# Start the sandbox by hand (Ctrl-C or `make sandbox-down` to stop).
sandbox: $(STAMP)
	$(PY) -m tests.sandbox up

sandbox-down: $(STAMP)
	$(PY) -m tests.sandbox down

# How soon ecs-ship, `aws ecs wait services-stable` and `ecs deploy` notice success and failure, at what API call
# rate, over one to 20 services (bench/results/latest.{json,md,png}), what the default build cache saves a fresh
# runner, and how soon a redeploy makes its first write (bench/). BENCH_FLAGS='--scenarios healthy --runs 1'
# tries one scenario.
BENCH_FLAGS ?=
bench: $(STAMP)
	$(PY) -m bench.run $(BENCH_FLAGS)
	$(PY) -m bench.build_cache
	$(PY) -m bench.startup

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
