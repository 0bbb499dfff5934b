"""Which builder a machine has, and the buildx builder instance a build needs, from what a stand-in docker CLI
answers."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest

from ecs_ship import build, builder
from ecs_ship.builder import Builder
from ecs_ship.errors import DeployError, InputError
from tests.unit.build_helpers import BUILDKIT, BUILDX, image_spec


# ---------------------------------------------------------------------------------------------------------------------
# detection
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Docker version 20.10.24+dfsg1, build 297e128", (20, 10)),
        ("Docker version 28.2.2, build e6534b4", (28, 2)),
        ("Docker version 23.0.0, build e92dd87", (23, 0)),
        ("podman: command not found", None),
    ],
)
def test_cli_version(text: str, expected: tuple[int, int] | None) -> None:
    assert builder.cli_version(text) == expected


def test_choose_builder_prefers_buildx() -> None:
    chosen = builder.choose_builder("/d", True, "")
    assert (chosen.kind, chosen.cli) == ("buildx", "/d")
    assert chosen.describe() == "building with /d buildx build (the buildx plugin answers)"


def test_choose_builder_uses_buildkit_through_a_cli_older_than_23() -> None:
    chosen = builder.choose_builder("/usr/bin/docker", False, "Docker version 20.10.24+dfsg1, build 297e128")
    assert (chosen.kind, chosen.cli) == ("buildkit", "/usr/bin/docker")
    assert chosen.describe().startswith("building with DOCKER_BUILDKIT=1 /usr/bin/docker build")


@pytest.mark.parametrize("version", ["Docker version 23.0.0, build x", "Docker version 28.2.2, build e6534b4"])
def test_choose_builder_does_not_pick_a_cli_of_23_or_later_without_buildx(version: str) -> None:
    chosen = builder.choose_builder("/usr/local/bin/docker", False, version)
    assert (chosen.kind, chosen.cli) == ("legacy", None)
    assert "has no buildx plugin" in chosen.why


def test_choose_builder_without_cli_or_version_falls_back_to_legacy() -> None:
    assert builder.choose_builder(None, False, "").kind == "legacy"
    assert builder.choose_builder("/d", False, "garbage").kind == "legacy"


class FakeRun:
    def __init__(self, answers: dict[str, tuple[int, str]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(argv))
        return self.answers[" ".join(argv[1:])]


def test_detect_builder_asks_the_cli_named_by_ecs_ship_docker() -> None:
    # The answers of Debian's docker.io 20.10 CLI on an engine with its default bridge.
    run = FakeRun(
        {
            "buildx version": (1, "docker: 'buildx' is not a docker command."),
            "--version": (0, "Docker version 20.10.24, build x"),
            "network inspect --format {{.Name}} bridge": (0, "bridge"),
        }
    )
    chosen = builder.detect_builder({"ECS_SHIP_DOCKER": "/usr/bin/docker"}, run, which=lambda name: name)
    assert chosen == Builder("buildkit", "/usr/bin/docker", "docker CLI 20.10 without buildx")
    assert [call[1] for call in run.calls] == ["buildx", "--version", "network"]
    assert all(call[0] == "/usr/bin/docker" for call in run.calls)


def test_detect_builder_gives_run_steps_the_host_network_on_an_engine_without_bridge(tmp_path: Path) -> None:
    run = FakeRun(
        {
            "buildx version": (0, "github.com/docker/buildx v0.24.0"),
            "network inspect --format {{.Name}} bridge": (1, "Error: No such network: bridge"),
        }
    )
    chosen = builder.detect_builder({}, run, which=lambda name: f"/bin/{name}")
    assert chosen.network == "host"
    assert chosen.describe().endswith("; RUN steps on the host network: the engine has no bridge)")
    argv = build.build_command(chosen, image_spec(tmp_path), "r:1")
    assert argv[argv.index("--network") + 1] == "host"


def test_detect_builder_with_buildx_asks_nothing_more() -> None:
    run = FakeRun(
        {
            "buildx version": (0, "github.com/docker/buildx v0.24.0"),
            "network inspect --format {{.Name}} bridge": (0, "bridge"),
        }
    )
    chosen = builder.detect_builder({}, run, which=lambda name: f"/bin/{name}")
    assert (chosen.kind, chosen.cli, chosen.network) == ("buildx", "/bin/docker", None)
    assert "--version" not in [call[1] for call in run.calls]


def test_detect_builder_refuses_a_missing_ecs_ship_docker() -> None:
    with pytest.raises(InputError) as caught:
        builder.detect_builder({"ECS_SHIP_DOCKER": "/nope/docker"}, FakeRun({}), which=lambda name: None)
    assert caught.value.message == "failed to find the docker CLI '/nope/docker' that ECS_SHIP_DOCKER names"


def test_detect_builder_without_any_cli_is_legacy() -> None:
    assert builder.detect_builder({}, FakeRun({}), which=lambda name: None).kind == "legacy"


# ---------------------------------------------------------------------------------------------------------------------
# multi-platform images
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chosen", [BUILDKIT, Builder("legacy", None, "docker CLI 28.2 at /d has no buildx plugin")])
def test_a_platform_list_without_buildx_is_a_spec_error(tmp_path: Path, chosen: Builder) -> None:
    spec = image_spec(tmp_path, platform=("linux/amd64", "linux/arm64"))
    with pytest.raises(InputError) as caught:
        builder.require_multi_platform(chosen, spec, "images[1].platform", "/w/ecs-ship.yml")
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(
        "/w/ecs-ship.yml: images[1].platform: failed to build the image of web for linux/amd64, linux/arm64: a "
        f"multi-platform image needs docker buildx with a docker-container builder, and the builder here is "
        f"{chosen.how} ({chosen.why})"
    )
    assert caught.value.fix is not None and caught.value.fix.startswith("install the docker buildx plugin")


def test_one_platform_needs_no_buildx_and_a_list_is_fine_with_it(tmp_path: Path) -> None:
    builder.require_multi_platform(BUILDKIT, image_spec(tmp_path), "images[0].platform")
    builder.require_multi_platform(BUILDX, image_spec(tmp_path, platform=("linux/amd64", "linux/arm64")), "p")


INSPECT_DOCKER = "Name:          default\nDriver:        docker\nLast Activity: 2025-05-30\n\nNodes:\nName: default\n"


HOST = dataclasses.replace(BUILDX, network="host")  # an engine without bridge
MULTI = "build multi-platform images"


class FakeRunner:
    """Answers `docker buildx inspect [name]`, `buildx create` and `buildx rm` as told; records every command.
    `flags` are the daemon flags inspect shows for a builder."""

    def __init__(self, current: str, ours: str | None, create: int = 0, flags: str = "", ours_flags: str = "") -> None:
        self.current, self.ours, self.create = current, ours, create
        self.flags, self.ours_flags = flags, ours_flags
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(argv[1:]))
        if argv[1:3] == ["buildx", "inspect"] and len(argv) == 3:
            shown = INSPECT_DOCKER.replace("docker\n", f"{self.current}\n", 1)
            return 0, shown + (f"BuildKit daemon flags: {self.flags}\n" if self.flags else "")
        if argv[1:3] == ["buildx", "inspect"]:
            if not self.ours:
                return 1, 'ERROR: no builder "ecs-ship" found'
            flags = f"BuildKit daemon flags: {self.ours_flags}\n" if self.ours_flags else ""
            return 0, f"Name: ecs-ship\nDriver: {self.ours}\n{flags}"
        if argv[1:3] == ["buildx", "rm"]:
            return 0, ""
        return self.create, "ecs-ship" if self.create == 0 else "ERROR: failed to create: permission denied"


CREATE = ["buildx", "create", "--name", "ecs-ship", "--driver", "docker-container"]
CREATE_ON_HOST = [
    *CREATE, "--driver-opt", "network=host", "--buildkitd-flags", "--allow-insecure-entitlement=network.host"
]  # fmt: skip


def test_buildx_driver_is_read_from_inspect() -> None:
    assert builder.buildx_driver(INSPECT_DOCKER) == "docker"
    assert builder.buildx_driver("ERROR: no builder") is None


def test_a_docker_driver_builder_gets_a_container_builder_created_and_said(tmp_path: Path) -> None:
    run, said = FakeRunner("docker", None), []
    chosen = builder.container_builder(BUILDX, MULTI, said.append, run)
    assert chosen == Builder("buildx", BUILDX.cli, "test", instance="ecs-ship")
    assert run.calls == [["buildx", "inspect"], ["buildx", "inspect", "ecs-ship"], CREATE]
    assert said == [
        "created buildx builder ecs-ship with the docker-container driver (the current buildx builder's docker "
        "driver cannot build multi-platform images)"
    ]


def test_an_existing_ecs_ship_builder_is_reused() -> None:
    run, said = FakeRunner("docker", "docker-container"), []
    assert builder.container_builder(BUILDX, MULTI, said.append, run).instance == "ecs-ship"
    assert CREATE not in run.calls
    assert said[0].startswith("building with buildx builder ecs-ship (")


def test_a_current_container_builder_is_used_as_it_is() -> None:
    run, said = FakeRunner("docker-container", None), []
    assert builder.container_builder(BUILDX, MULTI, said.append, run) == BUILDX
    assert run.calls == [["buildx", "inspect"]] and said == []


def test_a_builder_that_cannot_be_created_is_a_deploy_error() -> None:
    with pytest.raises(DeployError) as caught:
        builder.container_builder(BUILDX, MULTI, lambda _: None, FakeRunner("docker", None, create=1))
    assert caught.value.message == (
        "failed to create buildx builder ecs-ship: ERROR: failed to create: permission denied"
    )


# On an engine without bridge the builder's own container runs on the host network, and RUN steps there need
# the network.host entitlement from its daemon and --allow from the build.
def test_on_an_engine_without_bridge_the_builder_is_created_on_the_host_network_with_the_entitlement() -> None:
    run, said = FakeRunner("docker", None), []
    chosen = builder.container_builder(HOST, MULTI, said.append, run)
    assert chosen.instance == "ecs-ship" and chosen.allow == ("network.host",)
    assert run.calls[-1] == CREATE_ON_HOST


def test_a_container_builder_without_the_entitlement_is_not_used_on_an_engine_without_bridge() -> None:
    """The user's current builder cannot run RUN steps on the host network: ours is; ours made without the
    entitlement (by an earlier run on another engine) is made again."""
    run, said = FakeRunner("docker-container", "docker-container"), []
    chosen = builder.container_builder(HOST, MULTI, said.append, run)
    assert chosen.instance == "ecs-ship"
    assert run.calls == [
        ["buildx", "inspect"],
        ["buildx", "inspect", "ecs-ship"],
        ["buildx", "rm", "ecs-ship"],
        CREATE_ON_HOST,
    ]
    assert "docker-container driver without the network.host entitlement" in said[0]


def test_a_container_builder_that_grants_the_entitlement_is_used_on_an_engine_without_bridge() -> None:
    run = FakeRunner("docker", "docker-container", ours_flags="--allow-insecure-entitlement=network.host")
    chosen = builder.container_builder(HOST, MULTI, lambda _: None, run)
    assert chosen == dataclasses.replace(HOST, instance="ecs-ship", allow=("network.host",))
    assert [c for c in run.calls if c[1] in ("create", "rm")] == []
    current = FakeRunner("remote", None, flags="--allow-insecure-entitlement network.host")
    assert builder.container_builder(HOST, MULTI, lambda _: None, current).instance is None


def test_the_entitlement_is_asked_for_by_the_build(tmp_path: Path) -> None:
    chosen = dataclasses.replace(HOST, instance="ecs-ship", allow=("network.host",))
    argv = build.build_command(chosen, image_spec(tmp_path), "r:1")
    assert argv[argv.index("--network") : argv.index("--network") + 4] == [
        "--network", "host", "--allow", "network.host"
    ]  # fmt: skip
    assert "--allow" not in build.build_command(HOST, image_spec(tmp_path), "r:1")


@pytest.mark.parametrize(
    ("platform", "cache_to", "needs"),
    [
        (("linux/amd64",), (), None),
        (("linux/amd64",), ("type=inline",), None),
        (("linux/amd64", "linux/arm64"), ("type=inline",), "build multi-platform images"),
        (("linux/amd64",), ("type=registry,ref=r/app:cache,mode=max",), "export build cache (registry)"),
        (("linux/amd64",), ("type=gha,token=t0ken,scope=web",), "export build cache (gha)"),
    ],
)
def test_what_needs_a_container_builder(
    tmp_path: Path, platform: tuple[str, ...], cache_to: tuple[str, ...], needs: str | None
) -> None:
    """The docker driver exports inline cache only and builds one platform; nothing of an entry but its type is
    named (a gha entry may carry the runner's token)."""
    assert builder.container_needs(image_spec(tmp_path, platform=platform), cache_to) == needs
