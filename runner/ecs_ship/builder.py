"""Which builder this machine has, and the buildx builder instance a build needs.

Order: `docker buildx build` when the buildx plugin answers; else a docker CLI older than 23 with
`DOCKER_BUILDKIT=1 docker build` (BuildKit through the engine's session; from 23 on the CLI needs buildx for it);
else the engine's legacy builder through docker-py, and only for a Dockerfile that uses none of BuildKit's
syntax (see dockerfile.py), because the legacy builder rejects some of it and silently builds something else
from the rest (heredoc bodies dropped, every stage built, TARGETARCH empty).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import DeployError, InputError, SpecError
from .spec import ImageSpec

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
    # Entitlements the build asks its builder for (--allow).
    allow: tuple[str, ...] = ()

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
# the buildx builder instance
# --------------------------------------------------------------------------------------------
CONTAINER_BUILDER = "ecs-ship"
# buildx drivers that build multi-platform images and export cache to a registry or GitHub's cache. The `docker`
# driver (the engine's own BuildKit, buildx's default) does neither: it exports inline cache only, unless the
# engine keeps images in the containerd store, which is not asked here: a container builder works on both.
CONTAINER_DRIVERS = frozenset({"docker-container", "kubernetes", "remote"})
# RUN steps on the host network (an engine without bridge) need this entitlement, granted by the builder's
# daemon and asked for by the build (--allow); the `docker` driver's daemon is the engine, which grants it.
HOST_NETWORK = "network.host"
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


def container_needs(spec: ImageSpec, cache_to: Sequence[str]) -> str | None:
    """What this build asks that only a container-driver builder does ("build multi-platform images"), or None."""
    if spec.multi_platform:
        return "build multi-platform images"
    # Only the type is named: a gha entry's other attributes may carry the runner's token.
    exported = [value.split(",", 1)[0].removeprefix("type=") for value in cache_to]
    exported = [kind for kind in exported if kind != "inline"]
    return f"export build cache ({', '.join(exported)})" if exported else None


def buildx_driver(inspect_output: str) -> str | None:
    """The driver `docker buildx inspect` reports: 'docker', 'docker-container', …"""
    m = _DRIVER.search(inspect_output)
    return m[1] if m else None


def _shortfall(inspect_output: str, host_network: bool) -> str | None:
    """Why the builder `docker buildx inspect` described cannot do the build, or None when it can."""
    driver = buildx_driver(inspect_output)
    if driver not in CONTAINER_DRIVERS:
        return f"{driver or 'unknown'} driver"
    # buildx prints the daemon's flags ("BuildKit daemon flags: --allow-insecure-entitlement=network.host");
    # a builder that does not show the entitlement is taken not to grant it.
    if host_network and HOST_NETWORK not in inspect_output:
        return f"{driver} driver without the {HOST_NETWORK} entitlement that RUN steps need on this engine"
    return None


def container_builder(builder: Builder, needs: str, log: Log, run: Runner = _run_quiet) -> Builder:
    """`builder` set to a buildx instance with a container driver, for what the build `needs`: the current one
    when it can do the build, else the `ecs-ship` docker-container builder, created the first time (and said
    so). The user's current builder stays their current one: builds name the instance with --builder. On an
    engine without bridge, the builder runs on the host network and grants RUN steps the host network too."""
    assert builder.kind == "buildx" and builder.cli is not None
    host_network = builder.network == "host"
    allow = (HOST_NETWORK,) if host_network else ()
    code, text = run([builder.cli, "buildx", "inspect"])
    shortfall = _shortfall(text, host_network) if code == 0 else "unknown driver"
    if shortfall is None:
        return dataclasses.replace(builder, allow=allow)
    why = f"the current buildx builder's {shortfall} cannot {needs}"
    code, text = run([builder.cli, "buildx", "inspect", CONTAINER_BUILDER])
    if code == 0 and _shortfall(text, host_network) is None:
        log(f"building with buildx builder {CONTAINER_BUILDER} ({why})")
        return dataclasses.replace(builder, instance=CONTAINER_BUILDER, allow=allow)
    if code == 0:
        # Ours, made for another engine (or by an older release): made again with what this one needs.
        run([builder.cli, "buildx", "rm", CONTAINER_BUILDER])
    create = ["buildx", "create", "--name", CONTAINER_BUILDER, "--driver", "docker-container"]
    if host_network:
        create += ["--driver-opt", "network=host", "--buildkitd-flags", f"--allow-insecure-entitlement={HOST_NETWORK}"]
    code, text = run([builder.cli, *create])
    if code != 0:
        raise DeployError(
            f"failed to create buildx builder {CONTAINER_BUILDER}: {text.strip()[-400:]}",
            fix=f"run `docker {' '.join(create)}` to see why",
        )
    log(f"created buildx builder {CONTAINER_BUILDER} with the docker-container driver ({why})")
    return dataclasses.replace(builder, instance=CONTAINER_BUILDER, allow=allow)
