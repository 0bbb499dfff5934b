"""The local Docker engine, reached only when something is built or run: a redeploy of an image the registry
already has must work on a machine without one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import docker


def connect() -> docker.DockerClient:
    # docker-py (and the requests stack under it) is imported here, when an engine is needed, not by every command.
    import docker
    import docker.errors
    import requests

    try:
        client = docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise InputError(f"failed to reach a Docker engine: {exc}", fix="start Docker or set DOCKER_HOST") from exc
    return client
