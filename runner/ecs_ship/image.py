"""Which image a deploy ships, and shipping it: the tag (from git and the run), then build, push and read back
the digest (build.py builds, registry.py talks to the registry).

A tag that already exists in the registry (the same commit built before) is not built or pushed again.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from .cache import NO_CACHE, CacheFlags
from .errors import DeployError, InputError
from .registry import RegistryAPI, cli_config, cli_push, push, retrying, split_repository
from .spec import ImageSpec, render_tag

if TYPE_CHECKING:
    import docker

    from .builder import Builder

Log = Callable[[str], None]


@dataclass(frozen=True)
class GitInfo:
    sha: str
    dirty: bool

    @property
    def short_sha(self) -> str:
        return self.sha[:7]


def git_info(folder: Path, environ: Mapping[str, str] | None = None) -> GitInfo | None:
    """The commit being shipped: $GITHUB_SHA in Actions (the checkout may be detached), else `git` in folder."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_SHA"):
        return GitInfo(env["GITHUB_SHA"], dirty=False)
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        status = subprocess.run(
            # Untracked (not ignored) files count: `COPY . .` would put them in the image.
            ["git", "status", "--porcelain", "--untracked-files=normal"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return GitInfo(sha, dirty=bool(status)) if sha else None


def source_url(folder: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """The repository's web address for org.opencontainers.image.source: GitHub's in Actions, else the `origin`
    remote as https (user names and tokens in the remote URL are dropped: labels are public)."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_SERVER_URL") and env.get("GITHUB_REPOSITORY"):
        return f"{env['GITHUB_SERVER_URL'].rstrip('/')}/{env['GITHUB_REPOSITORY']}"
    try:
        remote = subprocess.run(
            ["git", "remote", "get-url", "origin"], cwd=folder, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return web_address(remote)


def web_address(remote: str) -> str | None:
    """'git@github.com:o/r.git' or 'https://user:token@github.com/o/r.git' -> 'https://github.com/o/r'."""
    scp = re.fullmatch(r"(?:[^@/]+@)?([^:/]+):(?!//)(.+)", remote)
    if scp:
        host, path = scp[1], scp[2]
    else:
        try:
            parts = urlsplit(remote)
            host, path = parts.hostname or "", parts.path
        except ValueError:
            return None
        if parts.scheme not in ("https", "http", "ssh", "git") or not host:
            return None
    path = path.strip("/").removesuffix(".git")
    return urlunsplit(("https", host, "/" + path, "", "")) if path else None


def labels_for(git_sha: str, source: str | None) -> dict[str, str]:
    labels = {"org.opencontainers.image.revision": git_sha}
    if source:
        labels["org.opencontainers.image.source"] = source
    return labels


def tag_values(git: GitInfo | None, env_name: str | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    if git is not None:
        # An uncommitted change must not reuse (and so silently skip) the clean commit's tag.
        suffix = "-dirty" if git.dirty else ""
        values["git_sha"] = git.sha + suffix
        values["git_short_sha"] = git.short_sha + suffix
    if env.get("GITHUB_RUN_NUMBER"):
        values["run_number"] = env["GITHUB_RUN_NUMBER"]
    if env_name:
        values["env"] = env_name
    return values


def image_tag(spec: ImageSpec, values: Mapping[str, str]) -> str:
    missing = sorted(set(re.findall(r"{(\w+)}", spec.tag)) - set(values))
    if missing:
        hints = {
            "git_sha": "run inside a git checkout or set GITHUB_SHA",
            "git_short_sha": "run inside a git checkout or set GITHUB_SHA",
            "run_number": "set GITHUB_RUN_NUMBER (GitHub Actions sets it)",
            "env": "pass --env",
        }
        raise InputError(
            f"failed to render the tag {spec.tag!r} of container {spec.container!r}: no value for "
            + ", ".join("{" + m + "}" for m in missing),
            fix="; ".join(hints.get(m, "") for m in missing) + ", or pass --image-tag to deploy an existing tag",
        )
    return render_tag(spec.tag, values)


# --------------------------------------------------------------------------------------------
# build and push
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShippedImage:
    container: str
    repository: str
    tag: str
    digest: str
    built: bool
    pushed: bool

    @property
    def ref(self) -> str:
        return f"{self.repository}@{self.digest}"


def missing_image(repository: str, tag: str) -> InputError:
    host, _ = split_repository(repository)
    return InputError(
        f"failed to find image {repository}:{tag} in registry {host}",
        fix="push that tag first, or deploy without --image-tag/--skip-build to build it",
    )


def ship(
    spec: ImageSpec,
    tag: str,
    *,
    builder: Callable[[], Builder],
    docker_client: Callable[[], docker.DockerClient] | None,
    registry: RegistryAPI,
    log: Log,
    build_allowed: bool = True,
    cache: CacheFlags = NO_CACHE,
    labels: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
    known_digest: str | None = None,
) -> ShippedImage:
    """Make sure `repository:tag` is in the registry (building and pushing only if it is not); return its digest.

    `builder` and `docker_client` are called only when a build is needed: a redeploy of an image the registry has
    needs neither a docker CLI nor an engine.
    """
    _, path = split_repository(spec.repository)
    # A digest the caller already read from the registry for this tag is not asked for again.
    existing = known_digest or registry.manifest_digest(path, tag)
    if existing:
        log(f"{spec.repository}:{tag} is already in the registry ({existing}); not building it again")
        return ShippedImage(spec.container, spec.repository, tag, existing, built=False, pushed=False)
    if not build_allowed:
        raise missing_image(spec.repository, tag)
    # The build half is imported only when a build happens: the tag functions above are on every deploy's path,
    # the builder (and docker-py under the legacy one) only on a deploy that builds.
    from .build import build_image
    from .builder import container_builder, container_needs, require_multi_platform

    how = builder()
    ref = f"{spec.repository}:{tag}"
    reporter = "the push"
    if how.cli is None:
        build_image(how, spec, ref, log, docker_client=docker_client, cache=cache, labels=labels)
        assert docker_client is not None  # build_image refuses to build without one
        client = docker_client()
        reported = retrying(lambda: push(spec.repository, tag, registry.credentials, client, log), log, cancel)
    else:
        cli = how.cli
        require_multi_platform(how, spec, "images[].platform")
        needs = container_needs(spec, cache.cache_to) if how.kind == "buildx" else None
        if needs:
            # Created outside the temporary DOCKER_CONFIG: the builder outlives this run, for the next one.
            how = container_builder(how, needs, log)
        with cli_config(registry.host, registry.credentials) as config_dir:
            # buildx pushes as it builds (a multi-platform image cannot be loaded into the engine) and reports
            # the digest it pushed; the classic CLI builds into the engine, and `docker push` reports it.
            reported = build_image(
                how,
                spec,
                ref,
                log,
                docker_client=None,
                config_dir=config_dir,
                cache=cache,
                labels=labels,
                cancel=cancel,
                push=True,
            )
            if how.kind == "buildx":
                reporter = "the build"
            else:
                reported = retrying(
                    lambda: cli_push(cli, spec.repository, tag, config_dir, log, cancel=cancel), log, cancel
                )
    digest = registry.manifest_digest(path, tag)
    if digest is None:
        raise DeployError(
            f"failed to read back {spec.repository}:{tag} after pushing it: the registry does not have it"
        )
    confirm_digest(ref, reported, digest, reporter)
    return ShippedImage(spec.container, spec.repository, tag, digest, built=True, pushed=True)


def confirm_digest(ref: str, reported: str | None, served: str, reporter: str) -> None:
    """The digest deployed is the one the registry serves; it must be the one this run pushed."""
    if reported and reported != served:
        raise DeployError(
            f"failed to confirm the push of {ref}: {reporter} reported {reported}, the registry serves {served}",
            fix="another push to the same tag raced this one; use a unique tag such as {git_sha}",
        )
