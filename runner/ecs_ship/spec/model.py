"""The spec as the rest of ecs-ship sees it: frozen dataclasses, every default filled in."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from ..errors import SpecError

KeyPath: TypeAlias = tuple[str | int, ...]

PLACEHOLDERS = ("git_sha", "git_short_sha", "run_number", "env")


# ---------------------------------------------------------------------------------------------------------------------
# the result
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildSecret:
    """A BuildKit build secret: mounted for RUN --mount=type=secret,id=…, never in the image or its history."""

    id: str
    env: str | None = None  # the variable holding the value at build time
    file: Path | None = None  # absolute, inside the workspace


@dataclass(frozen=True)
class CacheEntry:
    """One cache_from or cache_to entry, as buildx's --cache-from/--cache-to take it."""

    type: Literal["image", "registry", "inline", "gha", "previous"]  # image: a plain image reference
    at: str  # its key path in the spec (images[0].cache_to[1]), for the builder's refusal
    ref: str | None = None  # image and registry
    scope: str | None = None  # gha
    mode: Literal["min", "max"] | None = None  # registry and gha exports


@dataclass(frozen=True)
class ImageSpec:
    container: str
    repository: str
    context: Path  # absolute
    dockerfile: Path  # absolute
    # One entry: an image for that platform. More: one multi-platform image (an index), which only buildx
    # with a container-driver builder can build.
    platform: tuple[str, ...]  # the spec's string becomes a 1-tuple
    build_args: Mapping[str, str] = field(hash=False)
    target: str | None
    tag: str  # a template: see render_tag
    secrets: tuple[BuildSecret, ...] = ()
    cache_from: tuple[CacheEntry, ...] = ()
    cache_to: tuple[CacheEntry, ...] = ()

    @property
    def platform_arg(self) -> str:
        """The value of the builders' --platform: 'linux/amd64' or 'linux/amd64,linux/arm64'."""
        return ",".join(self.platform)

    @property
    def multi_platform(self) -> bool:
        return len(self.platform) > 1


@dataclass(frozen=True)
class TaskDefinitionSource:
    """Where the base task definition comes from. ``document`` is the file's or the inline mapping's content as
    written (possibly `describe-task-definition` output); it belongs to this object: copy it before changing it."""

    kind: Literal["file", "inline", "current"]
    path: Path | None = None
    document: Mapping[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class LoadBalancerSpec:
    health_check_path: str | None
    apply_health_check_path: bool
    url: str | None = None  # overrides the URL derived from the listeners (url.py)


@dataclass(frozen=True)
class WaitSpec:
    until: Literal["serving", "stable"]
    timeout: float
    poll_interval: float


@dataclass(frozen=True)
class SmokeSpec:
    path: str
    expect_status: int
    contains: str | None
    timeout: float


@dataclass(frozen=True)
class PauseSpec:
    at: tuple[str, ...]  # lifecycle stages
    timeout: float | None  # minutes; None: ECS's default
    on_timeout: Literal["ROLLBACK", "CONTINUE"] | None


@dataclass(frozen=True)
class DeploymentSpec:
    """How ECS rolls the deploy out; None everywhere means: as the service is configured."""

    strategy: Literal["ROLLING", "BLUE_GREEN", "LINEAR", "CANARY"] | None = None
    bake_time: int | None = None  # minutes, as ECS takes them
    canary_percent: float | None = None
    canary_bake_time: int | None = None
    step_percent: float | None = None
    step_bake_time: int | None = None
    pause: PauseSpec | None = None


OneOffList: TypeAlias = Literal["pre_deploy", "post_deploy"]


@dataclass(frozen=True)
class OneOffSpec:
    """A one-off task of the new revision: a migration before the switch (`pre_deploy`), say, or a cache
    warm-up once the new revision serves (`post_deploy`)."""

    name: str  # unique across both lists: it is the task's startedBy and finds the entry again
    container: str | None  # None: the first image's container, else the task definition's first
    command: tuple[str, ...]
    timeout: float  # seconds
    environment: tuple[tuple[str, str], ...] = ()
    # The list it was written in: when it runs, and what its messages and key paths name.
    phase: OneOffList = "pre_deploy"


@dataclass(frozen=True)
class Workspace:
    """The folder the files a spec names must be in (build contexts, Dockerfiles, task definition files, and
    run-local's --env-file): $GITHUB_WORKSPACE when set, else the git work tree holding the spec, else its folder.
    A spec from a pull request must not send /home or ../../etc to a build or a log."""

    root: Path  # absolute, symlinks resolved
    allow_outside: bool  # the spec's allow_paths_outside_workspace

    def refused(self, path: Path) -> Path | None:
        """``path`` with symlinks resolved when it lies outside the workspace and that is not allowed, else None."""
        resolved = path.resolve()
        return None if self.allow_outside or resolved.is_relative_to(self.root) else resolved

    @property
    def fix(self) -> str:
        return f"move it inside {self.root}, or set `allow_paths_outside_workspace: true` at the top level of the spec"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    region: str | None
    cluster: str
    service: str
    images: tuple[ImageSpec, ...]
    task_definition: TaskDefinitionSource
    load_balancer: LoadBalancerSpec
    wait: WaitSpec
    on_failure: Literal["rollback", "stop"]
    allow_host_volumes: bool
    smoke: SmokeSpec | None
    # None only for a ServiceSpec built by hand rather than by load_spec: then there is no spec to confine to.
    workspace: Workspace | None = None
    # Revisions of the family to keep after a successful deploy (`ecs-ship prune` too); None: prune nothing.
    keep_revisions: int | None = None
    deployment: DeploymentSpec = DeploymentSpec()
    pre_deploy: tuple[OneOffSpec, ...] = ()
    post_deploy: tuple[OneOffSpec, ...] = ()


@dataclass(frozen=True)
class Spec:
    path: Path  # absolute
    env: str | None
    services: tuple[ServiceSpec, ...]

    def service(self, name: str) -> ServiceSpec:
        """The service labelled ``name``; a SpecError listing the labels when there is none."""
        for s in self.services:
            if s.name == name:
                return s
        names = [s.name for s in self.services]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(
            f"no service named {name!r} in the spec{hint}; it has: {', '.join(names)}",
            file=str(self.path),
            fix="pass one of those names, or set `name:` on the services entry",
        )
