"""run-local end to end on the sandbox's engine (no bridge network, so host networking): real builds of
examples/hello through the runner's own build, real containers, real health checks, real signals.

Each test makes its own app repository (a git checkout of examples/hello with an ecs-ship.yml and a
taskdef.json), runs run_local in a thread (or `ecs-ship run-local` for signals) with a bounded timeout, and
checks what a developer sees: the output, the URL, the containers, and that nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests
import yaml

from ecs_ship.local import LABEL, LocalOptions, run_local
from ecs_ship.spec import load_spec
from tests.e2e.conftest import ROOT, child_env
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.services import free_port

HELLO = ROOT / "examples" / "hello"
READY = re.compile(r"ready: (http://127\.0\.0\.1:(\d+)/)")
RUN_ID = re.compile(r"locally as run (\w+)")
# Two image builds plus a health check interval fit well inside this on a slow machine.
START_TIMEOUT = 180.0


@dataclass
class LocalApp:
    root: Path
    family: str
    repositories: list[str] = field(default_factory=list)

    @property
    def spec(self) -> Path:
        return self.root / "ecs-ship.yml"


def make_app(
    tmp_path: Path,
    containers: list[dict[str, Any]],
    images: dict[str, dict[str, str]],
    *,
    health_check_path: str | None = "/health",
    repository_prefix: str | None = None,
) -> LocalApp:
    """examples/hello as a committed git repository, with a task definition file and a spec building
    ``images`` (container -> build args) through the runner's own build."""
    nonce = uuid.uuid4().hex[:8]
    root = tmp_path / f"app-{nonce}"
    shutil.copytree(HELLO, root, ignore=shutil.ignore_patterns("ecs-ship.yml", "README.md"))
    family = f"runlocal-{nonce}"
    (root / "taskdef.json").write_text(
        json.dumps(
            {
                "family": family,
                "networkMode": "awsvpc",
                "requiresCompatibilities": ["FARGATE"],
                "cpu": "256",
                "memory": "512",
                "containerDefinitions": containers,
            },
            indent=2,
        )
    )
    prefix = repository_prefix or f"ecs-ship-e2e/run-local-{nonce}"
    app = LocalApp(root, family)
    spec_images = []
    for container, build_args in images.items():
        repository = f"{prefix}-{container}" if repository_prefix is None else prefix
        app.repositories.append(repository)
        spec_images.append(
            {
                "container": container,
                "repository": repository,
                "context": ".",
                "build_args": build_args,
                "tag": "{git_short_sha}",
            }
        )
    spec: dict[str, Any] = {
        "version": 1,
        "region": "us-east-1",
        "cluster": "local",
        "service": "local-svc",
        "task_definition": "taskdef.json",
        "images": spec_images,
    }
    if health_check_path:
        spec["load_balancer"] = {"health_check_path": health_check_path}
    app.spec.write_text(yaml.safe_dump(spec, sort_keys=False))
    for cmd in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "dev@example.invalid"],
        ["git", "config", "user.name", "dev"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "initial"],
    ):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)
    return app


def web(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "web",
        "image": "set-by-ecs-ship",
        "essential": True,
        "portMappings": [{"containerPort": port, "protocol": "tcp"}],
        # tini forwards the stop signal, so a stop takes milliseconds instead of docker's 10 s grace period.
        "linuxParameters": {"initProcessEnabled": True},
        **extra,
    }


class Running:
    """run_local in a thread, its output collected line by line."""

    def __init__(
        self, sandbox: Sandbox, app: LocalApp, options: LocalOptions | None = None, ready_timeout: float = 60
    ) -> None:
        assert sandbox.docker is not None
        self.client: docker.DockerClient = sandbox.docker
        self.app = app
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.cancel = threading.Event()
        self.result: int | BaseException | None = None
        spec = load_spec(app.spec)
        self.thread = threading.Thread(
            target=self._run, args=(spec, options or LocalOptions(), ready_timeout), daemon=True
        )
        self.thread.start()

    def _say(self, line: str) -> None:
        with self.changed:
            self.lines.append(line)
            self.changed.notify_all()

    def _run(self, spec: Any, options: LocalOptions, ready_timeout: float) -> None:
        try:
            self.result = run_local(
                spec.services[0],
                spec,
                options,
                docker_client=self.client,
                say=self._say,
                cancel=self.cancel,
                clients=None,
                ready_timeout=ready_timeout,
            )
        except BaseException as exc:
            self.result = exc
        finally:
            with self.changed:
                self.changed.notify_all()

    @property
    def text(self) -> str:
        with self.changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = START_TIMEOUT) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    m = pattern.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or not self.thread.is_alive():
                    raise AssertionError(f"no line matching {pattern.pattern!r}; output:\n" + "\n".join(self.lines))
                self.changed.wait(min(left, 1.0))

    def finish(self, timeout: float = 90) -> int:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "run_local did not return in time; output:\n" + self.text
        if isinstance(self.result, BaseException):
            raise self.result
        assert isinstance(self.result, int)
        return self.result

    def stop(self) -> None:
        self.cancel.set()
        self.thread.join(90)


def labelled(client: docker.DockerClient, label: str) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": label}))


@pytest.fixture
def cleanup(sandbox: Sandbox) -> Iterator[list[Any]]:
    """Whatever a test registers here (Running, LocalApp, Popen) is stopped and removed, pass or fail."""
    things: list[Any] = []
    yield things
    assert sandbox.docker is not None
    client = sandbox.docker
    for thing in things:
        if isinstance(thing, Running):
            thing.stop()
        elif isinstance(thing, subprocess.Popen) and thing.poll() is None:
            thing.kill()
            thing.wait(30)
    for thing in things:
        if isinstance(thing, LocalApp):
            for c in labelled(client, f"{LABEL}.family={thing.family}"):
                c.remove(force=True)
            for repository in thing.repositories:
                for img in client.images.list(name=repository):
                    # By name only: the same image may also carry other tests' names.
                    names = [*img.tags, *(d for d in img.attrs.get("RepoDigests") or [] if d.startswith(repository))]
                    for name in names:
                        with contextlib.suppress(docker.errors.APIError):
                            client.images.remove(name, force=True)


def _time(text: str) -> datetime:
    # Docker writes nanoseconds; datetime takes microseconds.
    m = re.fullmatch(r"(\S+?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    assert m, text
    fraction = (m[2] or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{m[1]}.{fraction}{'+00:00' if m[3] == 'Z' else m[3]}")


def _get(url: str) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, timeout=5)


# --------------------------------------------------------------------------------------------
# a task of two containers sharing localhost
# --------------------------------------------------------------------------------------------
def test_two_containers_share_localhost_and_start_in_dependency_order(
    sandbox: Sandbox, tmp_path: Path, cleanup: list[Any]
) -> None:
    web_port, side_port = free_port(), free_port()
    app = make_app(
        tmp_path,
        [
            web(web_port, dependsOn=[{"containerName": "sidecar", "condition": "HEALTHY"}]),
            {
                "name": "sidecar",
                "image": "set-by-ecs-ship",
                "essential": True,
                "portMappings": [{"containerPort": side_port}],
                "linuxParameters": {"initProcessEnabled": True},
                "healthCheck": {
                    "command": ["CMD-SHELL", "wget -q -O- http://127.0.0.1:$PORT/health"],
                    "interval": 5,
                    "timeout": 2,
                    "retries": 3,
                },
            },
        ],
        {"web": {"VERSION": "web-v1"}, "sidecar": {"VERSION": "side-v1"}},
    )
    cleanup.append(app)
    run = Running(sandbox, app)
    cleanup.append(run)
    ready = run.wait_for(READY)
    run_id = run.wait_for(RUN_ID)[1]
    url = ready[1]
    assert int(ready[2]) == web_port
    assert _get(url).text == "hello web-v1\n"

    client = run.client
    containers = {c.labels[f"{LABEL}.container"]: c for c in labelled(client, f"{LABEL}={run_id}")}
    assert set(containers) == {"web", "sidecar"}
    web_c, side_c = containers["web"], containers["sidecar"]
    assert web_c.name == f"ecs-ship-local-{app.family}-web-{run_id}"
    assert web_c.attrs["HostConfig"]["NetworkMode"] == "host"
    assert f"PORT={web_port}" in web_c.attrs["Config"]["Env"]
    assert f"PORT={side_port}" in side_c.attrs["Config"]["Env"]

    # The sidecar answers web over localhost, as containers of one awsvpc task do.
    exit_code, output = web_c.exec_run(["wget", "-qO-", f"http://127.0.0.1:{side_port}/"])
    assert (exit_code, output.decode()) == (0, "hello side-v1\n")

    # The sidecar was healthy before web started.
    health_log = side_c.attrs["State"]["Health"]["Log"]
    first_ok = min(_time(entry["End"]) for entry in health_log if entry["ExitCode"] == 0)
    assert first_ok <= _time(web_c.attrs["State"]["StartedAt"])
    assert _time(side_c.attrs["State"]["StartedAt"]) < _time(web_c.attrs["State"]["StartedAt"])
    text = run.text
    assert text.index("web waits for sidecar to be HEALTHY") < text.index("sidecar is healthy")
    assert text.index("sidecar is healthy") < text.index("started web")
    assert "[web] hello web-v1 listening" in text and "[sidecar] hello side-v1 listening" in text

    run.cancel.set()
    assert run.finish() == 0
    assert labelled(client, f"{LABEL}={run_id}") == []
    assert "removed 2 containers" in run.text


# --------------------------------------------------------------------------------------------
# an essential container that exits
# --------------------------------------------------------------------------------------------
def test_an_essential_container_exiting_stops_the_task_with_its_exit_code(
    sandbox: Sandbox, tmp_path: Path, cleanup: list[Any]
) -> None:
    app = make_app(tmp_path, [web(free_port())], {"web": {"VERSION": "crash-v1", "CRASH": "1"}})
    cleanup.append(app)
    run = Running(sandbox, app)
    cleanup.append(run)
    assert run.finish(timeout=START_TIMEOUT) == 3
    text = run.text
    assert "[web] fatal: hello crash-v1 refusing to start (CRASH=1)" in text
    assert "essential container web exited with code 3: stopping the task" in text
    assert text.index("[web] fatal:") < text.index("essential container web exited")  # the reason comes first
    assert "ready:" not in text
    run_id = RUN_ID.search(text)
    assert run_id
    assert labelled(run.client, f"{LABEL}={run_id[1]}") == []


def test_a_task_that_never_gets_healthy_returns_1(sandbox: Sandbox, tmp_path: Path, cleanup: list[Any]) -> None:
    app = make_app(tmp_path, [web(free_port())], {"web": {"VERSION": "sick-v1", "HEALTH": "500"}})
    cleanup.append(app)
    run = Running(sandbox, app, ready_timeout=3)
    cleanup.append(run)
    assert run.finish(timeout=START_TIMEOUT) == 1
    assert re.search(r"failed to become ready: GET http://127\.0\.0\.1:\d+/health answered no 2xx/3xx", run.text)
    assert "(last: HTTP 500)" in run.text
    assert labelled(run.client, f"{LABEL}.family={app.family}") == []


# --------------------------------------------------------------------------------------------
# stopping: the caller's event, and a real SIGTERM
# --------------------------------------------------------------------------------------------
def test_cancel_stops_and_removes_every_container(sandbox: Sandbox, tmp_path: Path, cleanup: list[Any]) -> None:
    app = make_app(tmp_path, [web(free_port())], {"web": {"VERSION": "cancel-v1"}})
    cleanup.append(app)
    run = Running(sandbox, app)
    cleanup.append(run)
    run.wait_for(READY)
    run_id = run.wait_for(RUN_ID)[1]
    assert len(labelled(run.client, f"{LABEL}={run_id}")) == 1
    run.cancel.set()
    assert run.finish() == 0
    assert labelled(run.client, f"{LABEL}={run_id}") == []
    assert "stopping: cancelled" in run.text


def test_sigint_then_sigterm_to_the_cli_removes_every_container(
    sandbox: Sandbox, tmp_path: Path, cleanup: list[Any]
) -> None:
    """GitHub's cancel (SIGINT, then SIGTERM) to `ecs-ship run-local`: it stops, removes its containers and exits
    0 as a Ctrl-C would, however close together the two signals come."""
    app = make_app(tmp_path, [web(free_port())], {"web": {"VERSION": "term-v1"}})
    cleanup.append(app)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecs_ship", "run-local", "--spec", str(app.spec)],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    cleanup.append(proc)
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()

    def wait_for(pattern: re.Pattern[str]) -> re.Match[str]:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert proc.poll() is None, "driver exited early:\n" + "\n".join(seen)
                continue
            seen.append(line)
            m = pattern.search(line)
            if m:
                return m
        raise AssertionError(f"no line matching {pattern.pattern!r}:\n" + "\n".join(seen))

    run_id = wait_for(RUN_ID)[1]
    wait_for(READY)
    client = sandbox.docker
    assert client is not None
    assert len(labelled(client, f"{LABEL}={run_id}")) == 1

    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=90) == 0, "\n".join(seen)
    wait_for(re.compile(r"stopping: cancelled"))
    assert labelled(client, f"{LABEL}={run_id}") == []


# --------------------------------------------------------------------------------------------
# --image-tag: the existing tag, pulled from the registry by its digest
# --------------------------------------------------------------------------------------------
def test_image_tag_pulls_the_registry_digest(
    sandbox: Sandbox, tmp_path: Path, cleanup: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sandbox.registry is not None and sandbox.docker is not None
    # Registry credentials reach run-local as they reach a deploy: from the environment (or `docker login`).
    monkeypatch.setenv("ECS_SHIP_REGISTRY_USERNAME", sandbox.registry.user)
    monkeypatch.setenv("ECS_SHIP_REGISTRY_PASSWORD", sandbox.registry.password)
    repo = f"run-local-{uuid.uuid4().hex[:8]}"
    pushed = sandbox.build_and_push(repo, "v7")  # registry/repo@sha256:...
    repository, digest = pushed.split("@")
    # Untag it, so only a pull from the registry can bring it back under this name.
    sandbox.docker.images.remove(f"{repository}:v7")
    app = make_app(tmp_path, [web(free_port())], {"web": {}}, repository_prefix=repository)
    cleanup.append(app)
    run = Running(sandbox, app, LocalOptions(image_tag="v7"))
    cleanup.append(run)
    url = run.wait_for(READY)[1]
    assert _get(url).text == "hello v7\n"
    run_id = run.wait_for(RUN_ID)[1]
    (container,) = labelled(run.client, f"{LABEL}={run_id}")
    assert container.attrs["Config"]["Image"] == f"{repository}@{digest}"
    assert f"pulling {repository}@{digest}" in run.text
    assert "building" not in run.text
    run.cancel.set()
    assert run.finish() == 0
