"""Which builder a machine has, and the buildx builder instance a build needs, from what a stand-in docker CLI
answers."""

from __future__ import annotations

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


class FakeRunner:
    """Answers `docker buildx inspect [name]` and `buildx create` as told; records every command."""

    def __init__(self, current: str, ours: str | None, create: int = 0) -> None:
        self.current, self.ours, self.create = current, ours, create
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(argv[1:]))
        if argv[1:3] == ["buildx", "inspect"] and len(argv) == 3:
            return 0, INSPECT_DOCKER.replace("docker\n", f"{self.current}\n", 1)
        if argv[1:3] == ["buildx", "inspect"]:
            ours = self.ours
            return (0, f"Name: ecs-ship\nDriver: {ours}\n") if ours else (1, 'ERROR: no builder "ecs-ship" found')
        return self.create, "ecs-ship" if self.create == 0 else "ERROR: failed to create: permission denied"


def test_buildx_driver_is_read_from_inspect() -> None:
    assert builder.buildx_driver(INSPECT_DOCKER) == "docker"
    assert builder.buildx_driver("ERROR: no builder") is None


def test_a_docker_driver_builder_gets_a_container_builder_created_and_said(tmp_path: Path) -> None:
    run, said = FakeRunner("docker", None), []
    chosen = builder.multi_platform_builder(BUILDX, said.append, run)
    assert chosen == Builder("buildx", BUILDX.cli, "test", instance="ecs-ship")
    assert run.calls == [
        ["buildx", "inspect"],
        ["buildx", "inspect", "ecs-ship"],
        ["buildx", "create", "--name", "ecs-ship", "--driver", "docker-container"],
    ]
    assert said == [
        "created buildx builder ecs-ship with the docker-container driver (the current buildx builder's docker "
        "driver cannot build multi-platform images)"
    ]


def test_an_existing_ecs_ship_builder_is_reused() -> None:
    run, said = FakeRunner("docker", "docker-container"), []
    assert builder.multi_platform_builder(BUILDX, said.append, run).instance == "ecs-ship"
    assert ["buildx", "create", "--name", "ecs-ship", "--driver", "docker-container"] not in run.calls
    assert said[0].startswith("building with buildx builder ecs-ship (")


def test_a_current_container_builder_is_used_as_it_is() -> None:
    run, said = FakeRunner("docker-container", None), []
    assert builder.multi_platform_builder(BUILDX, said.append, run) == BUILDX
    assert run.calls == [["buildx", "inspect"]] and said == []


def test_a_builder_that_cannot_be_created_is_a_deploy_error() -> None:
    with pytest.raises(DeployError) as caught:
        builder.multi_platform_builder(BUILDX, lambda _: None, FakeRunner("docker", None, create=1))
    assert caught.value.message == (
        "failed to create buildx builder ecs-ship: ERROR: failed to create: permission denied"
    )
