"""Images for the sandbox: a busybox base built from the host, and the hello app.

Nothing can be pulled, so the base image is assembled ``FROM scratch`` out of
the statically linked busybox of the busybox-static package.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors

from .services import Registry

__all__ = [
    "BASE_IMAGE",
    "BUILDKIT_DOCKER",
    "BUSYBOX_PATH",
    "HELLO_CONTEXT",
    "PushError",
    "build_hello",
    "ensure_base_image",
    "push",
    "registry_digest",
    "split_repo_tag",
]

BASE_IMAGE = "local/busybox:static"
BUSYBOX_PATH = Path("/bin/busybox")
HELLO_CONTEXT = Path(__file__).resolve().parents[2] / "examples" / "hello"
# Debian's docker.io CLI (20.10): it builds with BuildKit through the engine when DOCKER_BUILDKIT=1. The newer
# CLI earlier on PATH has no buildx plugin and refuses to.
BUILDKIT_DOCKER = "/usr/bin/docker"

_BASE_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""

_MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)

_PT_INTERP = 3


class PushError(RuntimeError):
    """The daemon reported an error inside the push stream."""


def _is_static_elf(path: Path) -> bool:
    """True when ``path`` is an ELF executable without a program interpreter.

    A dynamically linked busybox would start fine on the host but fail with
    "no such file" inside a scratch image, which is a confusing error.
    """
    with open(path, "rb") as f:
        ident = f.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            return False
        is_64 = ident[4] == 2
        endian = "<" if ident[5] == 1 else ">"
        header = f.read(48 if is_64 else 36)
        if is_64:
            phoff = struct.unpack_from(endian + "Q", header, 16)[0]
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 38)
        else:
            phoff = struct.unpack_from(endian + "I", header, 12)[0]
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 26)
        for index in range(phnum):
            f.seek(phoff + index * phentsize)
            raw = f.read(4)
            if len(raw) < 4:
                return False
            if struct.unpack(endian + "I", raw)[0] == _PT_INTERP:
                return False
    return True


def ensure_base_image(client: docker.DockerClient) -> str:
    """Return the id of ``BASE_IMAGE``, building it from the host busybox if absent."""
    try:
        image = client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pass
    else:
        return str(image.id)

    if not BUSYBOX_PATH.is_file():
        raise RuntimeError(f"{BUSYBOX_PATH} not found (package busybox-static)")
    if not _is_static_elf(BUSYBOX_PATH):
        raise RuntimeError(f"{BUSYBOX_PATH} is not a statically linked ELF; install busybox-static")
    with tempfile.TemporaryDirectory(prefix="ecs-ship-busybox-") as tmp:
        context = Path(tmp)
        shutil.copy2(BUSYBOX_PATH, context / "busybox")
        (context / "Dockerfile").write_text(_BASE_DOCKERFILE)
        image, _ = client.images.build(
            path=str(context),
            tag=BASE_IMAGE,
            # The engine runs without a bridge, so RUN steps need host networking.
            network_mode="host",
            rm=True,
            forcerm=True,
            pull=False,
        )
    return str(image.id)


def build_hello(
    client: docker.DockerClient,
    tag: str,
    version: str,
    *,
    health: str = "ok",
    crash: bool = False,
    start_delay: int = 0,
) -> str:
    """Build examples/hello as ``tag`` with the given behaviour; return the image id."""
    if health not in ("ok", "500", "slow"):
        raise ValueError(f"health must be 'ok', '500' or 'slow', not {health!r}")
    if start_delay < 0:
        raise ValueError("start_delay must be >= 0")
    ensure_base_image(client)
    build_args = {
        "BASE_IMAGE": BASE_IMAGE,
        "VERSION": version,
        "HEALTH": health,
        "CRASH": "1" if crash else "0",
        "START_DELAY": str(start_delay),
    }
    # BuildKit, as users build: the Dockerfile uses its syntax (COPY --chmod), which docker-py's legacy builder lacks.
    argv = [BUILDKIT_DOCKER, "build", "--progress=plain", "-t", tag]
    for name, value in build_args.items():
        argv += ["--build-arg", f"{name}={value}"]
    done = subprocess.run(
        [*argv, str(HELLO_CONTEXT)],
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building {tag} failed: {(done.stdout + done.stderr)[-2000:]}")
    return str(client.images.get(tag).id)


def split_repo_tag(repo_tag: str) -> tuple[str, str]:
    """Split ``host:port/name:tag`` (or ``…/name@sha256:…``) into repository and tag or digest (default ``latest``)."""
    if "@" in repo_tag:
        repository, _, digest = repo_tag.partition("@")
        return repository, digest
    slash = repo_tag.rfind("/")
    colon = repo_tag.rfind(":")
    if colon > slash:
        return repo_tag[:colon], repo_tag[colon + 1 :]
    return repo_tag, "latest"


def _stream_error(event: Mapping[str, Any]) -> str | None:
    detail = event.get("errorDetail")
    if isinstance(detail, Mapping) and detail.get("message"):
        return str(detail["message"])
    if event.get("error"):
        return str(event["error"])
    return None


def _scan_push_stream(events: Iterable[Any], repo_tag: str) -> str | None:
    digest: str | None = None
    errors: list[str] = []
    # The stream is read to its end even after an error: abandoning it
    # half-read leaves the daemon connection open.
    for event in events:
        if not isinstance(event, Mapping):
            continue
        message = _stream_error(event)
        if message is not None:
            errors.append(message)
            continue
        aux = event.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("Digest"), str):
            digest = str(aux["Digest"])
    if errors:
        raise PushError(f"push of {repo_tag} failed: {'; '.join(errors)}")
    return digest


def registry_digest(registry: Registry, repository: str, tag: str) -> str:
    """The manifest digest the registry itself reports for ``repository:tag``."""
    prefix = registry.address + "/"
    name = repository[len(prefix) :] if repository.startswith(prefix) else repository
    with registry.session() as session:
        response = session.head(
            f"{registry.url}/v2/{name}/manifests/{tag}",
            headers={"Accept": _MANIFEST_TYPES},
            timeout=10,
        )
    if response.status_code != 200:
        raise PushError(f"registry HEAD manifest {name}:{tag} answered {response.status_code}")
    digest = response.headers.get("Docker-Content-Digest", "")
    if not digest.startswith("sha256:"):
        raise PushError(f"registry gave no usable Docker-Content-Digest for {name}:{tag}")
    return digest


def push(
    client: docker.DockerClient,
    registry: Registry,
    repo_tag: str,
    *,
    auth: bool = True,
) -> str:
    """Push ``repo_tag`` to ``registry`` and return the manifest digest.

    docker-py's push never raises for registry-side failures; they only show
    up as error events in the stream, so the stream is scanned and turned
    into ``PushError``. ``auth=False`` sends explicitly empty credentials,
    bypassing anything the client cached from an earlier login.
    """
    repository, tag = split_repo_tag(repo_tag)
    if not repository.startswith(registry.address + "/"):
        # Anything else would make the daemon contact a remote registry.
        raise ValueError(f"{repo_tag!r} does not belong to registry {registry.address}")
    auth_config: dict[str, str] = registry.auth_config if auth else {}
    events: Iterable[Any] = client.images.push(
        repository,
        tag=tag,
        auth_config=auth_config,
        stream=True,
        decode=True,
    )
    digest = _scan_push_stream(events, repo_tag)
    if digest is None:
        digest = registry_digest(registry, repository, tag)
    if not digest.startswith("sha256:"):
        raise PushError(f"push of {repo_tag} returned an unexpected digest {digest!r}")
    return digest
