"""Which build cache entries a builder can use, and the flags that tell it to.

buildx takes every entry in its own syntax. A docker CLI older than 23 (`DOCKER_BUILDKIT=1 docker build`) has
no --cache-to and reads --cache-from as image references only; it exports inline cache through the
BUILDKIT_INLINE_CACHE build arg. The legacy builder reads --cache-from image references only, and needs no
export: its images are their own cache. An entry the builder cannot use is refused before anything is written,
since building without it would quietly build without the cache it asks for.

`gha` talks to GitHub Actions' cache service with the runner's ACTIONS_RUNTIME_TOKEN and its results (or cache)
URL; without them the build goes on without that entry and says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .errors import InputError
from .spec import CacheEntry

BuilderKind = Literal["buildx", "buildkit", "legacy"]

GHA_ENV = ("ACTIONS_RUNTIME_TOKEN", "ACTIONS_RESULTS_URL", "ACTIONS_CACHE_URL")

# (builder, direction) -> the entry types it can use.
SUPPORTED: dict[tuple[BuilderKind, str], frozenset[str]] = {
    ("buildx", "cache_from"): frozenset({"image", "registry", "gha", "previous"}),
    ("buildx", "cache_to"): frozenset({"inline", "registry", "gha"}),
    ("buildkit", "cache_from"): frozenset({"image", "registry", "previous"}),
    ("buildkit", "cache_to"): frozenset({"inline"}),
    ("legacy", "cache_from"): frozenset({"image", "registry", "previous"}),
    ("legacy", "cache_to"): frozenset({"inline"}),
}

_BUILDER_NAMES = {
    "buildx": "docker buildx build",
    "buildkit": "a docker CLI older than 23 without buildx (DOCKER_BUILDKIT=1 docker build)",
    "legacy": "the engine's legacy builder",
}


@dataclass(frozen=True)
class CacheFlags:
    cache_from: tuple[str, ...] = ()  # --cache-from values
    cache_to: tuple[str, ...] = ()  # --cache-to values (buildx only)
    inline: bool = False  # BUILDKIT_INLINE_CACHE=1 (the docker CLI before 23)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def image_refs(self) -> list[str]:
        """cache_from as plain image references (what the legacy builder takes)."""
        return [value.removeprefix("type=registry,ref=") for value in self.cache_from]


NO_CACHE = CacheFlags()


def check_supported(kind: BuilderKind, entries: Sequence[CacheEntry], direction: str) -> None:
    """InputError naming the first entry `kind` cannot use."""
    for entry in entries:
        if entry.type not in SUPPORTED[(kind, direction)]:
            what = "an image reference" if entry.type == "image" else f"type {entry.type!r}"
            usable = ", ".join(sorted(SUPPORTED[(kind, direction)]))
            raise InputError(
                f"failed to use build cache {entry.at}: {what} is not something {_BUILDER_NAMES[kind]} can "
                f"{'read cache from' if direction == 'cache_from' else 'export cache to'} (it takes: {usable})",
                fix="install the docker buildx plugin (https://github.com/docker/buildx#installing), "
                f"or remove the entry from {direction}",
            )


def _gha_ready(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("ACTIONS_RUNTIME_TOKEN")) and bool(
        environ.get("ACTIONS_RESULTS_URL") or environ.get("ACTIONS_CACHE_URL")
    )


def _attrs(kind: str, **settings: str | None) -> str:
    return ",".join([f"type={kind}", *(f"{k}={v}" for k, v in settings.items() if v)])


def cache_flags(
    kind: BuilderKind,
    cache_from: Sequence[CacheEntry],
    cache_to: Sequence[CacheEntry],
    *,
    previous: str | None,
    environ: Mapping[str, str],
) -> CacheFlags:
    """The flags for `kind`. `previous` is the image the service runs now when it is in the image's repository
    (the `previous` entry is skipped without one: a first deploy has nothing to reuse)."""
    check_supported(kind, cache_from, "cache_from")
    check_supported(kind, cache_to, "cache_to")
    warnings: list[str] = []
    gha_ready = _gha_ready(environ)

    def usable(entry: CacheEntry) -> bool:
        if entry.type == "gha" and not gha_ready:
            warnings.append(
                f"build cache {entry.at} (gha) is left out: ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL are not "
                "set (the ecs-ship action hands them to its deploy step; GitHub gives them to JavaScript actions "
                "only, so ecs-ship run from a `run:` step of your own does not get them)"
            )
            return False
        return not (entry.type == "previous" and not previous)

    sources, exports = [e for e in cache_from if usable(e)], [e for e in cache_to if usable(e)]
    refs = [previous if e.type == "previous" else e.ref for e in sources if e.type != "gha"]
    if kind != "buildx":
        return CacheFlags(
            tuple(r for r in refs if r),
            inline=any(e.type == "inline" for e in exports) and kind == "buildkit",
            warnings=tuple(warnings),
        )
    flags_from = [
        _attrs("gha", scope=e.scope) if e.type == "gha" else _attrs("registry", ref=e.ref or previous) for e in sources
    ]
    flags_to = [_attrs(e.type, ref=e.ref, scope=e.scope, mode=e.mode) for e in exports]
    return CacheFlags(tuple(flags_from), tuple(flags_to), warnings=tuple(warnings))
