"""The local Docker engine, reached only when something is built or run: a redeploy of an image the registry
already has must work on a machine without one."""

from __future__ import annotations

import docker
import docker.errors
import requests

from .errors import InputError


def connect() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise InputError(f"failed to reach a Docker engine: {exc}", fix="start Docker or set DOCKER_HOST") from exc
    return client
