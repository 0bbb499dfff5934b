"""The hello example image and the local registry it is pushed to."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import pytest
import requests
from docker.models.containers import Container

from tests.sandbox.images import PushError, build_hello, push, registry_digest, split_repo_tag
from tests.sandbox.services import (
    Engine,
    Registry,
    ensure_engine,
    ensure_packages,
    free_port,
    start_registry,
    stop_engine,
    stop_registry,
    wait_until,
)


@dataclass
class ImageLab:
    engine: Engine
    client: docker.DockerClient
    registry: Registry
    http: requests.Session
    # Unique per run so concurrent runs on one engine cannot clash.
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    tags: list[str] = field(default_factory=list)

    def build(self, name: str, version: str, *, health: str = "ok", crash: bool = False) -> str:
        tag = f"ecs-ship-test/hello-{name}:{self.run_id}"
        build_hello(self.client, tag, version, health=health, crash=crash)
        self.tags.append(tag)
        return tag

    def tag_for_registry(self, tag: str, name: str) -> str:
        repository = f"{self.registry.address}/ecs-ship-test/{name}"
        self.client.images.get(tag).tag(repository, self.run_id)
        repo_tag = f"{repository}:{self.run_id}"
        self.tags.append(repo_tag)
        return repo_tag


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageLab]:
    state_dir: Path = tmp_path_factory.mktemp("lab")
    ensure_packages()
    engine = ensure_engine(state_dir)
    client = engine.client()
    registry: Registry | None = None
    http = requests.Session()
    # Loopback traffic must not be routed through a proxy from the environment.
    http.trust_env = False
    box: ImageLab | None = None
    try:
        registry = start_registry(state_dir)
        box = ImageLab(engine=engine, client=client, registry=registry, http=http)
        yield box
    finally:
        if box is not None:
            for tag in reversed(box.tags):
                with contextlib.suppress(docker.errors.ImageNotFound):
                    client.images.remove(tag)
        if registry is not None:
            stop_registry(registry)
        http.close()
        client.close()
        stop_engine(engine)


def _run(lab: ImageLab, tag: str, port: int) -> Container:
    container: Container = lab.client.containers.run(
        tag,
        detach=True,
        network_mode="host",
        environment={"PORT": str(port)},
    )
    return container


def _get(lab: ImageLab, port: int, path: str, timeout: float = 5) -> requests.Response:
    return lab.http.get(f"http://127.0.0.1:{port}{path}", timeout=timeout)


def _serving(lab: ImageLab, container: Container, port: int) -> Callable[[], bool]:
    def probe() -> bool:
        container.reload()
        if container.status == "exited":
            raise AssertionError(f"container exited early:\n{container.logs().decode(errors='replace')}")
        try:
            _get(lab, port, "/", timeout=1)
        except requests.RequestException:
            return False
        return True

    return probe


def test_serves_version_and_health(lab: ImageLab) -> None:
    version = f"v-{lab.run_id}"
    tag = lab.build("ok", version)
    port = free_port()
    container = _run(lab, tag, port)
    try:
        wait_until(_serving(lab, container, port), 20, 0.1, "hello to listen")

        root = _get(lab, port, "/")
        assert root.status_code == 200
        assert root.text == f"hello {version}\n"

        health = _get(lab, port, "/health")
        assert health.status_code == 200
        assert health.text == "ok\n"

        assert _get(lab, port, "/missing").status_code == 404
        head = lab.http.head(f"http://127.0.0.1:{port}/", timeout=5)
        assert head.status_code == 200
        assert head.content == b""

        logs = container.logs(stdout=True, stderr=False).decode()
        assert f"hello {version} listening on 127.0.0.1:{port}" in logs
    finally:
        container.remove(force=True)


def test_health_500(lab: ImageLab) -> None:
    tag = lab.build("h500", "v1", health="500")
    port = free_port()
    container = _run(lab, tag, port)
    try:
        wait_until(_serving(lab, container, port), 20, 0.1, "hello to listen")
        assert _get(lab, port, "/").status_code == 200
        assert _get(lab, port, "/health").status_code == 500
    finally:
        container.remove(force=True)


def test_crash_exits_3_with_fatal_line(lab: ImageLab) -> None:
    tag = lab.build("crash", "v1", crash=True)
    container = _run(lab, tag, free_port())
    try:
        result = container.wait(timeout=30)
        assert result["StatusCode"] == 3
        stderr = container.logs(stdout=False, stderr=True).decode()
        assert "fatal: " in stderr
    finally:
        container.remove(force=True)


def test_push_returns_registry_digest(lab: ImageLab) -> None:
    tag = lab.build("push", "v1")
    repo_tag = lab.tag_for_registry(tag, "hello")

    digest = push(lab.client, lab.registry, repo_tag)

    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    repository, reference = split_repo_tag(repo_tag)
    assert registry_digest(lab.registry, repository, reference) == digest
    # The manifest is also addressable by the returned digest.
    name = repository.removeprefix(lab.registry.address + "/")
    with lab.registry.session() as session:
        by_digest = session.head(
            f"{lab.registry.url}/v2/{name}/manifests/{digest}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            timeout=10,
        )
    assert by_digest.status_code == 200


def test_login(lab: ImageLab) -> None:
    lab.registry.login(lab.client)
    with pytest.raises(docker.errors.APIError):
        lab.client.login(
            username=lab.registry.user,
            password=lab.registry.password + "-wrong",
            registry=lab.registry.address,
            reauth=True,
        )


def test_push_without_credentials_raises(lab: ImageLab) -> None:
    tag = lab.build("noauth", "v1")
    repo_tag = lab.tag_for_registry(tag, "noauth")

    with pytest.raises(PushError) as excinfo:
        push(lab.client, lab.registry, repo_tag, auth=False)

    assert repo_tag in str(excinfo.value)
    # Nothing may have landed in the registry.
    repository, reference = split_repo_tag(repo_tag)
    with pytest.raises(PushError):
        registry_digest(lab.registry, repository, reference)


def test_push_refuses_foreign_registry(lab: ImageLab) -> None:
    with pytest.raises(ValueError):
        push(lab.client, lab.registry, "example.com/hello:v1")
