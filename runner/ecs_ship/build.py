"""Build an image with the best builder this machine has.

Order: `docker buildx build` when the buildx plugin answers; else a docker CLI older than 23 with
`DOCKER_BUILDKIT=1 docker build` (BuildKit through the engine's session; from 23 on the CLI needs buildx for it);
else the engine's legacy builder through docker-py, and only for a Dockerfile that uses none of BuildKit's
syntax, because the legacy builder rejects some of it and silently builds something else from the rest
(heredoc bodies dropped, every stage built, TARGETARCH empty).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import docker
import docker.utils.build
from docker.api.build import process_dockerfile

from .cache import NO_CACHE, CacheFlags
from .errors import DeployError, InputError, SpecError
from .registry import run_stream, stream_command
from .spec import BuildSecret, ImageSpec, looks_secret

Log = Callable[[str], None]
# argv -> (exit code, output); detection's only contact with the machine, injected in tests.
Runner = Callable[[Sequence[str]], tuple[int, str]]

INSTALL_BUILDX = "install the docker buildx plugin (https://github.com/docker/buildx#installing)"
BUILDX_FIX = (
    f"{INSTALL_BUILDX}, or point ECS_SHIP_DOCKER to a docker CLI older than 23, which builds with BuildKit through "
    "DOCKER_BUILDKIT=1"
)


@dataclass(frozen=True)
class Builder:
    kind: Literal["buildx", "buildkit", "legacy"]
    cli: str | None  # the docker CLI, for buildx and buildkit
    why: str
    # "host" on an engine without its default bridge (started with --bridge=none): RUN steps get no network
    # there otherwise ("network bridge not found"), as for the containers run-local starts.
    network: str | None = None
    # The buildx builder instance to build with (--builder); None: the CLI's current one.
    instance: str | None = None

    @property
    def how(self) -> str:
        return {
            "buildx": f"{self.cli} buildx build",
            "buildkit": f"DOCKER_BUILDKIT=1 {self.cli} build",
            "legacy": "the engine's legacy builder (docker-py)",
        }[self.kind]

    def describe(self) -> str:
        network = "; RUN steps on the host network: the engine has no bridge" if self.network == "host" else ""
        return f"building with {self.how} ({self.why}{network})"


_VERSION = re.compile(r"version v?(\d+)\.(\d+)", re.IGNORECASE)


def cli_version(text: str) -> tuple[int, int] | None:
    """`docker --version` output -> (major, minor): 'Docker version 20.10.24+dfsg1, build 297e128' -> (20, 10)."""
    m = _VERSION.search(text)
    return (int(m[1]), int(m[2])) if m else None


def choose_builder(cli: str | None, buildx_answers: bool, version_text: str) -> Builder:
    """The decision alone, from what the CLI answered."""
    if cli is None:
        return Builder("legacy", None, "no docker CLI found")
    if buildx_answers:
        return Builder("buildx", cli, "the buildx plugin answers")
    version = cli_version(version_text)
    if version is None:
        return Builder("legacy", None, f"{cli} did not say its version: {version_text.strip()[:100]!r}")
    shown = f"{version[0]}.{version[1]}"
    if version < (23, 0):
        return Builder("buildkit", cli, f"docker CLI {shown} without buildx")
    # From 23 on, `DOCKER_BUILDKIT=1 docker build` only hands over to buildx and fails without it.
    return Builder("legacy", None, f"docker CLI {shown} at {cli} has no buildx plugin")


def _run_quiet(argv: Sequence[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return 127, str(exc)
    return done.returncode, done.stdout + done.stderr


def detect_builder(
    environ: Mapping[str, str] | None = None,
    run: Runner = _run_quiet,
    which: Callable[[str], str | None] = shutil.which,
) -> Builder:
    """Ask the docker CLI ($ECS_SHIP_DOCKER, else `docker` on PATH) what it can build with."""
    env = os.environ if environ is None else environ
    named = env.get("ECS_SHIP_DOCKER")
    cli = which(named or "docker")
    if named and cli is None:
        raise InputError(
            f"failed to find the docker CLI {named!r} that ECS_SHIP_DOCKER names",
            fix="set ECS_SHIP_DOCKER to the path of a docker executable, or unset it to use `docker` from PATH",
        )
    if cli is None:
        return choose_builder(None, False, "")
    buildx = run([cli, "buildx", "version"])[0] == 0
    chosen = choose_builder(cli, buildx, "" if buildx else run([cli, "--version"])[1])
    if chosen.cli is None:
        return chosen
    has_bridge = run([cli, "network", "inspect", "--format", "{{.Name}}", "bridge"])[0] == 0
    return chosen if has_bridge else dataclasses.replace(chosen, network="host")


# --------------------------------------------------------------------------------------------
# multi-platform images
# --------------------------------------------------------------------------------------------
MULTI_PLATFORM_BUILDER = "ecs-ship"
# buildx drivers that can build an image for several platforms at once; the `docker` driver (the engine's own
# BuildKit, buildx's default) cannot.
MULTI_PLATFORM_DRIVERS = frozenset({"docker-container", "kubernetes", "remote"})
_DRIVER = re.compile(r"^Driver:\s*(\S+)", re.MULTILINE)


def require_multi_platform(builder: Builder, spec: ImageSpec, key_path: str, file: str | None = None) -> None:
    """A SpecError (exit 2) when `spec` lists several platforms and `builder` is not buildx: the classic
    BuildKit CLI and the legacy builder make one image per build, for one platform."""
    if not spec.multi_platform or builder.kind == "buildx":
        return
    raise SpecError(
        f"failed to build the image of {spec.container} for {', '.join(spec.platform)}: a multi-platform image "
        f"needs docker buildx with a docker-container builder, and the builder here is {builder.how} "
        f"({builder.why})",
        key_path=key_path,
        file=file,
        fix=f"{INSTALL_BUILDX}, or list one platform only",
    )


def buildx_driver(inspect_output: str) -> str | None:
    """The driver `docker buildx inspect` reports: 'docker', 'docker-container', …"""
    m = _DRIVER.search(inspect_output)
    return m[1] if m else None


def multi_platform_builder(builder: Builder, log: Log, run: Runner = _run_quiet) -> Builder:
    """`builder` set to a buildx instance that can build multi-platform images: the current one when its driver
    can, else the `ecs-ship` docker-container builder, created the first time (and said so). The user's current
    builder stays their current one: builds name the instance with --builder."""
    assert builder.kind == "buildx" and builder.cli is not None
    code, text = run([builder.cli, "buildx", "inspect"])
    current = buildx_driver(text) if code == 0 else None
    if current in MULTI_PLATFORM_DRIVERS:
        return builder
    why = f"the current buildx builder's {current or 'unknown'} driver cannot build multi-platform images"
    code, text = run([builder.cli, "buildx", "inspect", MULTI_PLATFORM_BUILDER])
    if code == 0 and buildx_driver(text) in MULTI_PLATFORM_DRIVERS:
        log(f"building with buildx builder {MULTI_PLATFORM_BUILDER} ({why})")
    else:
        create = ["buildx", "create", "--name", MULTI_PLATFORM_BUILDER, "--driver", "docker-container"]
        code, text = run([builder.cli, *create])
        if code != 0:
            raise DeployError(
                f"failed to create buildx builder {MULTI_PLATFORM_BUILDER}: {text.strip()[-400:]}",
                fix=f"run `docker {' '.join(create)}` to see why, or list one platform only",
            )
        log(f"created buildx builder {MULTI_PLATFORM_BUILDER} with the docker-container driver ({why})")
    return dataclasses.replace(builder, instance=MULTI_PLATFORM_BUILDER)


def metadata_digest(path: Path) -> str | None:
    """`containerimage.digest` from the file buildx's --metadata-file wrote: the digest of what it pushed (the
    image index for a multi-platform image)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    digest = data.get("containerimage.digest") if isinstance(data, dict) else None
    return digest if isinstance(digest, str) and digest.startswith("sha256:") else None


# --------------------------------------------------------------------------------------------
# what the legacy builder cannot build
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    line: int
    what: str


_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$")
# As BuildKit reads them: `<<` and the word with nothing between (`<< EOF` is not a heredoc).
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_FLAG = re.compile(r"--([a-z-]+)(?:=|\s|$)")
# Flags BuildKit added that the legacy builder refuses (or, for some, ignores). COPY/ADD --chown and
# COPY --from are older than BuildKit and fine.
_BUILDKIT_FLAGS = {
    "FROM": {"platform"},
    "RUN": {"mount", "network", "security"},
    "COPY": {"chmod", "link", "parents", "exclude"},
    "ADD": {"chmod", "link", "checksum", "keep-git-dir", "exclude"},
}


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction with continuations joined), comments and heredoc bodies skipped."""
    lines = text.splitlines()
    escape = "\\"
    out: list[tuple[int, str]] = []
    i = 0
    in_directives = True
    while i < len(lines):
        raw = lines[i].strip()
        if in_directives:
            m = _DIRECTIVE.match(raw)
            if m and m[1].lower() == "escape" and m[2] in ("\\", "`"):
                escape = m[2]
            if m:
                out.append((i + 1, raw))  # directives are findings of their own (# syntax=)
                i += 1
                continue
            in_directives = False
        if not raw or raw.startswith("#"):
            i += 1
            continue
        start, parts = i + 1, [raw]
        while parts[-1].endswith(escape) and i + 1 < len(lines):
            parts[-1] = parts[-1][:-1]
            i += 1
            nxt = lines[i].strip()
            if nxt.startswith("#"):
                continue
            parts.append(nxt)
        instruction = " ".join(parts)
        out.append((start, instruction))
        i += 1
        for dash, _, word in _HEREDOC.findall(instruction):
            # The body is not Dockerfile instructions; skip to its terminator.
            while i < len(lines) and (lines[i].lstrip("\t") if dash else lines[i]) != word:
                i += 1
            i += 1
    return out


def scan_dockerfile(text: str) -> list[Finding]:
    """Every use of syntax only BuildKit builds, with its line."""
    findings = []
    for number, line in _logical_lines(text):
        directive = _DIRECTIVE.match(line) if line.startswith("#") else None
        if directive:
            if directive[1].lower() == "syntax":
                findings.append(Finding(number, f"the `# syntax={directive[2]}` directive"))
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        flags = _BUILDKIT_FLAGS.get(keyword, set())
        rest = rest.lstrip()
        # Flags come first; the exec form (a JSON list) has none.
        while rest.startswith("--"):
            m = _FLAG.match(rest)
            if m and m[1] in flags:
                findings.append(Finding(number, f"{keyword} --{m[1]}"))
            rest = rest.split(None, 1)[1] if " " in rest else ""
        if keyword in ("RUN", "COPY", "ADD") and _HEREDOC.search(rest):
            findings.append(Finding(number, f"a {keyword} heredoc (<<)"))
    return findings


def check_legacy(spec: ImageSpec, ref: str) -> None:
    """InputError when the legacy builder would refuse or mis-build this image."""
    if spec.secrets:
        raise InputError(
            f"failed to build {ref}: build secrets ({', '.join(s.id for s in spec.secrets)}) need BuildKit, and "
            "only the engine's legacy builder is available",
            fix=BUILDX_FIX,
        )
    try:
        text = spec.dockerfile.read_text(errors="replace")
    except OSError as exc:
        raise InputError(
            f"failed to read the Dockerfile {spec.dockerfile}: {exc}", fix="check images[].dockerfile"
        ) from exc
    findings = scan_dockerfile(text)
    if findings:
        where = "; ".join(f"{spec.dockerfile}:{f.line}: {f.what}" for f in findings)
        raise InputError(
            f"failed to build {ref}: the Dockerfile uses BuildKit syntax the legacy builder cannot build ({where})",
            fix=BUILDX_FIX,
        )


# --------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------
def secret_like_build_args(spec: ImageSpec) -> list[str]:
    return [name for name in spec.build_args if looks_secret(name)]


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


def ignore_file(spec: ImageSpec) -> Path | None:
    """The ignore file BuildKit reads for this build: `<Dockerfile name>.dockerignore` next to the Dockerfile
    when there is one (it replaces the context's, it is not added to it), else the context's .dockerignore."""
    own = spec.dockerfile.with_name(spec.dockerfile.name + ".dockerignore")
    if own.is_file():
        return own
    shared = spec.context / ".dockerignore"
    return shared if shared.is_file() else None


def ignore_patterns(path: Path) -> list[str]:
    """The patterns of a .dockerignore file, read as docker-py reads the context's."""
    lines = (line.strip() for line in path.read_text(errors="replace").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def legacy_context(spec: ImageSpec, archive: IO[bytes]) -> str | None:
    """When a Dockerfile-specific ignore file applies, write the context tar to `archive` with its patterns (so
    the legacy builder leaves out what BuildKit leaves out) and return the Dockerfile's name in it; None when
    docker-py's own reading of the context's .dockerignore is already that."""
    chosen = ignore_file(spec)
    if chosen is None or chosen == spec.context / ".dockerignore":
        return None
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
