"""Build an image with the builder builder.py chose: the docker CLI's command line, and its failure read from
BuildKit's progress output; or the engine's legacy builder through docker-py, for a Dockerfile dockerfile.py
let through.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .builder import Builder, require_multi_platform
from .cache import NO_CACHE, CacheFlags
from .dockerfile import check_legacy, ignore_file, ignore_patterns
from .errors import DeployError, InputError
from .registry import run_stream, stream_command
from .spec import BuildSecret, ImageSpec

if TYPE_CHECKING:
    import docker

Log = Callable[[str], None]


def metadata_digest(path: Path) -> str | None:
    """`containerimage.digest` from the file buildx's --metadata-file wrote: the digest of what it pushed (the
    image index for a multi-platform image)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    digest = data.get("containerimage.digest") if isinstance(data, dict) else None
    return digest if isinstance(digest, str) and digest.startswith("sha256:") else None


def secret_flag(secret: BuildSecret, folder: Path, environ: Mapping[str, str], index: int = 0) -> str:
    """`--secret` value. An env secret is written to a 0600 file in `folder`: docker CLIs before 23 read
    secrets from files only."""
    if secret.file is not None:
        return f"id={secret.id},src={secret.file}"
    assert secret.env is not None
    value = environ.get(secret.env)
    if value is None:
        raise InputError(
            f"failed to read build secret {secret.id!r}: ${secret.env} is not set",
            fix=f"set {secret.env} in the deploy step's environment (e.g. from a GitHub secret)",
        )
    path = folder / f"secret-{index}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return f"id={secret.id},src={path}"


def build_command(
    builder: Builder,
    spec: ImageSpec,
    ref: str,
    *,
    cache: CacheFlags = NO_CACHE,
    labels: Mapping[str, str] | None = None,
    secret_flags: Sequence[str] = (),
    metadata_file: Path | None = None,
) -> list[str]:
    """The docker CLI command. Given a `metadata_file`, buildx pushes the image itself and writes there the
    digest it pushed; without one it --loads the image into the engine (docker-container builders keep their
    result to themselves otherwise)."""
    assert builder.cli is not None
    head = [builder.cli, "build"]
    if builder.kind == "buildx":
        head = [builder.cli, "buildx", "build"] + (["--builder", builder.instance] if builder.instance else [])
        head += ["--push", "--metadata-file", str(metadata_file)] if metadata_file else ["--load"]
    argv = [*head, "--progress=plain", "--platform", spec.platform_arg, "-f", str(spec.dockerfile), "-t", ref]
    if builder.network:
        argv += ["--network", builder.network]
    for entitlement in builder.allow:
        argv += ["--allow", entitlement]
    if spec.target:
        argv += ["--target", spec.target]
    for name, value in spec.build_args.items():
        argv += ["--build-arg", f"{name}={value}"]
    if cache.inline:
        # The docker CLI before 23 has no --cache-to: inline cache is asked for with this build arg, and the
        # pushed image then carries its cache metadata for the next build's --cache-from.
        argv += ["--build-arg", "BUILDKIT_INLINE_CACHE=1"]
    for source in cache.cache_from:
        argv += ["--cache-from", source]
    for export in cache.cache_to:
        argv += ["--cache-to", export]
    for name, value in (labels or {}).items():
        argv += ["--label", f"{name}={value}"]
    for flag in secret_flags:
        argv += ["--secret", flag]
    return [*argv, str(spec.context)]


_STEP = re.compile(r"^#(\d+) (\[.*)$")
_STEP_ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")
_STEP_OUTPUT = re.compile(r"^#(\d+) \d+\.\d+ (.*)$")


def build_failure(lines: Sequence[str], last: int = 5) -> str:
    """The failing step and its last output lines, from BuildKit's plain progress output."""
    titles: dict[str, str] = {}
    failed: tuple[str, str] | None = None
    for line in lines:
        if m := _STEP.match(line):
            titles.setdefault(m[1], m[2])
        elif m := _STEP_ERROR.match(line):
            failed = (m[1], m[2])
    if failed is None:
        return " | ".join([line.strip() for line in lines if line.strip()][-last:]) or "the builder failed"
    number, error = failed
    output = [m[2] for line in lines if (m := _STEP_OUTPUT.match(line)) and m[1] == number][-last:]
    shown = f"{titles.get(number, 'a step')}: {error}"
    return shown + (" (last lines: " + " | ".join(output) + ")" if output else "")


def cli_build(
    builder: Builder,
    spec: ImageSpec,
    ref: str,
    log: Log,
    *,
    config_dir: Path | None = None,
    cache: CacheFlags = NO_CACHE,
    labels: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
    push: bool = False,
) -> str | None:
    """Build `ref`; with `push`, buildx pushes it too and the digest it reports is returned (else None)."""
    env = dict(os.environ if environ is None else environ)
    if config_dir is not None:
        env["DOCKER_CONFIG"] = str(config_dir)
    if builder.kind == "buildkit":
        env["DOCKER_BUILDKIT"] = "1"
    with tempfile.TemporaryDirectory(prefix="ecs-ship-secrets-") as folder:
        flags = [secret_flag(s, Path(folder), env, i) for i, s in enumerate(spec.secrets)]
        metadata = Path(folder) / "metadata.json" if push and builder.kind == "buildx" else None
        argv = build_command(builder, spec, ref, cache=cache, labels=labels, secret_flags=flags, metadata_file=metadata)
        code, tail = stream_command(argv, env, log, keep=400, cancel=cancel)
        reported = metadata_digest(metadata) if metadata else None
    if code != 0:
        raise DeployError(
            f"failed to build {ref}: {build_failure(tail)}",
            fix=f"the build log above has the whole output; reproduce locally with docker buildx build "
            f"--platform {spec.platform_arg} -f {spec.dockerfile} {spec.context}",
        )
    return reported


def legacy_context(spec: ImageSpec, archive: IO[bytes]) -> str | None:
    """When a Dockerfile-specific ignore file applies, write the context tar to `archive` with its patterns (so
    the legacy builder leaves out what BuildKit leaves out) and return the Dockerfile's name in it; None when
    docker-py's own reading of the context's .dockerignore is already that."""
    chosen = ignore_file(spec)
    if chosen is None or chosen == spec.context / ".dockerignore":
        return None
    # Only the legacy builder goes through docker-py: imported here, so a BuildKit build or a redeploy of an image
    # the registry has does not load it.
    import docker.utils.build
    from docker.api.build import process_dockerfile

    # A Dockerfile outside the context goes into the tar under a generated name, as docker-py does it.
    dockerfile = process_dockerfile(str(spec.dockerfile), str(spec.context))
    docker.utils.build.tar(spec.context, exclude=ignore_patterns(chosen), dockerfile=dockerfile, fileobj=archive)
    archive.seek(0)
    return str(dockerfile[0])


def legacy_build(
    spec: ImageSpec,
    ref: str,
    docker_client: docker.DockerClient,
    log: Log,
    *,
    cache_from: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
) -> None:
    """The engine's legacy builder, for a Dockerfile check_legacy let through."""

    def on_line(chunk: Mapping[str, Any]) -> None:
        for line in str(chunk.get("stream") or "").rstrip().splitlines():
            log(line)

    options: dict[str, Any] = {
        "tag": ref,
        "buildargs": dict(spec.build_args),
        "target": spec.target,
        "platform": spec.platform_arg,
        "cache_from": list(cache_from) or None,
        "labels": dict(labels or {}),
        "rm": True,
        "forcerm": True,
        "pull": False,
        "decode": True,
    }
    with tempfile.TemporaryFile() as archive:
        name = legacy_context(spec, archive)
        where: dict[str, Any] = {"path": str(spec.context), "dockerfile": str(spec.dockerfile)}
        if name is not None:
            where = {"fileobj": archive, "custom_context": True, "dockerfile": name}
        error = run_stream(lambda: docker_client.api.build(**where, **options), on_line)
    if error:
        raise DeployError(
            f"failed to build {ref}: {error}",
            fix=f"reproduce locally: docker build --platform {spec.platform_arg} -f {spec.dockerfile} {spec.context}",
        )


def build_image(
    builder: Builder,
    spec: ImageSpec,
    ref: str,
    log: Log,
    *,
    docker_client: Callable[[], docker.DockerClient] | None,
    config_dir: Path | None = None,
    cache: CacheFlags = NO_CACHE,
    labels: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
    push: bool = False,
) -> str | None:
    """Build `ref` with `builder`; the engine (`docker_client`) is reached only by the legacy builder. With
    `push`, a buildx build pushes the image itself and its reported digest is returned; otherwise None."""
    require_multi_platform(builder, spec, "images[].platform")
    if builder.kind != "legacy":
        return cli_build(
            builder,
            spec,
            ref,
            log,
            config_dir=config_dir,
            cache=cache,
            labels=labels,
            cancel=cancel,
            push=push,
        )
    check_legacy(spec, ref)
    if docker_client is None:
        raise InputError("failed to build: no Docker engine answered", fix="start Docker or set DOCKER_HOST")
    legacy_build(spec, ref, docker_client(), log, cache_from=cache.image_refs, labels=labels)
    return None
