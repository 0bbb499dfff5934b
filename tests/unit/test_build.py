"""The builder: detection, the Dockerfile scan for the legacy builder, command lines, and builds and pushes through
a stand-in docker CLI (a script that records what it was given), so no Docker engine is needed."""

from __future__ import annotations

import json
import os
import stat
import tarfile
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from ecs_ship import build, image, registry
from ecs_ship.build import Builder, Finding
from ecs_ship.cache import CacheFlags
from ecs_ship.errors import DeployError, InputError, Interrupted
from ecs_ship.registry import Credentials
from ecs_ship.spec import BuildSecret, ImageSpec

DIGEST = "sha256:" + "a" * 64
BUILDKIT = Builder("buildkit", "/usr/bin/docker", "test")
BUILDX = Builder("buildx", "/usr/local/bin/docker", "test")


def image_spec(folder: Path, dockerfile: str = "FROM scratch\n", **changes: object) -> ImageSpec:
    (folder / "Dockerfile").write_text(dockerfile)
    values: dict[str, object] = {
        "container": "web",
        "repository": "127.0.0.1:5000/hello",
        "context": folder,
        "dockerfile": folder / "Dockerfile",
        "platform": ("linux/amd64",),
        "build_args": {"VERSION": "1"},
        "target": None,
        "tag": "{git_sha}",
    }
    values.update(changes)
    return ImageSpec(**values)  # type: ignore[arg-type]


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
    assert build.cli_version(text) == expected


def test_choose_builder_prefers_buildx() -> None:
    chosen = build.choose_builder("/d", True, "")
    assert (chosen.kind, chosen.cli) == ("buildx", "/d")
    assert chosen.describe() == "building with /d buildx build (the buildx plugin answers)"


def test_choose_builder_uses_buildkit_through_a_cli_older_than_23() -> None:
    chosen = build.choose_builder("/usr/bin/docker", False, "Docker version 20.10.24+dfsg1, build 297e128")
    assert (chosen.kind, chosen.cli) == ("buildkit", "/usr/bin/docker")
    assert chosen.describe().startswith("building with DOCKER_BUILDKIT=1 /usr/bin/docker build")


@pytest.mark.parametrize("version", ["Docker version 23.0.0, build x", "Docker version 28.2.2, build e6534b4"])
def test_choose_builder_does_not_pick_a_cli_of_23_or_later_without_buildx(version: str) -> None:
    chosen = build.choose_builder("/usr/local/bin/docker", False, version)
    assert (chosen.kind, chosen.cli) == ("legacy", None)
    assert "has no buildx plugin" in chosen.why


def test_choose_builder_without_cli_or_version_falls_back_to_legacy() -> None:
    assert build.choose_builder(None, False, "").kind == "legacy"
    assert build.choose_builder("/d", False, "garbage").kind == "legacy"


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
    chosen = build.detect_builder({"ECS_SHIP_DOCKER": "/usr/bin/docker"}, run, which=lambda name: name)
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
    chosen = build.detect_builder({}, run, which=lambda name: f"/bin/{name}")
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
    chosen = build.detect_builder({}, run, which=lambda name: f"/bin/{name}")
    assert (chosen.kind, chosen.cli, chosen.network) == ("buildx", "/bin/docker", None)
    assert "--version" not in [call[1] for call in run.calls]


def test_detect_builder_refuses_a_missing_ecs_ship_docker() -> None:
    with pytest.raises(InputError) as caught:
        build.detect_builder({"ECS_SHIP_DOCKER": "/nope/docker"}, FakeRun({}), which=lambda name: None)
    assert caught.value.message == "failed to find the docker CLI '/nope/docker' that ECS_SHIP_DOCKER names"


def test_detect_builder_without_any_cli_is_legacy() -> None:
    assert build.detect_builder({}, FakeRun({}), which=lambda name: None).kind == "legacy"


# ---------------------------------------------------------------------------------------------------------------------
# the Dockerfile scan
# ---------------------------------------------------------------------------------------------------------------------
SCANNED = """\
# syntax=docker/dockerfile:1
ARG BASE=alpine
FROM --platform=$BUILDPLATFORM ${BASE} AS build
RUN --mount=type=cache,target=/root/.cache \\
    make
COPY --chmod=0755 app/ /app/
COPY --link a b
ADD --checksum=sha256:abc https://example.com/x /x
RUN <<EOT
COPY --chmod=1 not/an instruction
EOT
COPY --chown=1:1 --from=build /out /out
RUN ["sh", "-c", "echo --mount"]
RUN --network=none true
# RUN --mount=type=secret in a comment
"""


def test_scan_finds_each_buildkit_only_construct_with_its_line() -> None:
    assert build.scan_dockerfile(SCANNED) == [
        Finding(1, "the `# syntax=docker/dockerfile:1` directive"),
        Finding(3, "FROM --platform"),
        Finding(4, "RUN --mount"),
        Finding(6, "COPY --chmod"),
        Finding(7, "COPY --link"),
        Finding(8, "ADD --checksum"),
        Finding(9, "a RUN heredoc (<<)"),
        Finding(14, "RUN --network"),
    ]


def test_scan_accepts_a_classic_dockerfile() -> None:
    text = "FROM scratch\nCOPY --chown=1:1 --from=base a b\nRUN echo '<< not a heredoc' \\\n  && true\n# syntax=late\n"
    assert build.scan_dockerfile(text) == []


def test_scan_honours_the_escape_directive() -> None:
    text = "# escape=`\nFROM scratch\nRUN `\n  --mount=type=cache,target=/c true\n"
    assert build.scan_dockerfile(text) == [Finding(3, "RUN --mount")]


def test_check_legacy_names_file_line_and_the_fix(tmp_path: Path) -> None:
    spec = image_spec(tmp_path, "FROM scratch\n\nRUN --mount=type=cache,target=/c true\n")
    with pytest.raises(InputError) as caught:
        build.check_legacy(spec, "r:1")
    assert caught.value.exit_code == 2
    assert f"{tmp_path / 'Dockerfile'}:3: RUN --mount" in caught.value.message
    assert caught.value.fix == build.BUILDX_FIX and "buildx" in caught.value.fix


def test_check_legacy_refuses_build_secrets(tmp_path: Path) -> None:
    spec = image_spec(tmp_path, secrets=(BuildSecret("npmrc", env="NPM_TOKEN"),))
    with pytest.raises(InputError) as caught:
        build.check_legacy(spec, "r:1")
    assert "build secrets (npmrc) need BuildKit" in caught.value.message


def test_build_image_with_the_legacy_builder_checks_before_reaching_the_engine(tmp_path: Path) -> None:
    spec = image_spec(tmp_path, "FROM scratch\nCOPY --chmod=0755 a /a\n")

    def engine() -> object:
        raise AssertionError("the engine was reached")

    with pytest.raises(InputError):
        build.build_image(Builder("legacy", None, "t"), spec, "r:1", print, docker_client=engine)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------------
# command lines
# ---------------------------------------------------------------------------------------------------------------------
def test_build_command_for_buildkit(tmp_path: Path) -> None:
    spec = image_spec(tmp_path, target="prod", platform=("linux/arm64",))
    argv = build.build_command(
        BUILDKIT,
        spec,
        "127.0.0.1:5000/hello:v1",
        cache=CacheFlags(("127.0.0.1:5000/hello:v0",), inline=True),
        labels={"org.opencontainers.image.revision": "abc"},
        secret_flags=["id=npmrc,src=/s/0"],
    )
    assert argv == [
        "/usr/bin/docker", "build", "--progress=plain", "--platform", "linux/arm64",
        "-f", str(tmp_path / "Dockerfile"), "-t", "127.0.0.1:5000/hello:v1", "--target", "prod",
        "--build-arg", "VERSION=1", "--build-arg", "BUILDKIT_INLINE_CACHE=1",
        "--cache-from", "127.0.0.1:5000/hello:v0",
        "--label", "org.opencontainers.image.revision=abc",
        "--secret", "id=npmrc,src=/s/0",
        str(tmp_path),
    ]  # fmt: skip


def test_build_command_for_buildx_passes_cache_in_its_own_syntax(tmp_path: Path) -> None:
    flags = CacheFlags(("type=registry,ref=r:cache",), ("type=registry,ref=r:cache,mode=max", "type=inline"))
    argv = build.build_command(BUILDX, image_spec(tmp_path), "r:1", cache=flags)
    assert "BUILDKIT_INLINE_CACHE=1" not in argv
    at = argv.index("--cache-from")
    assert argv[at : at + 6] == [
        "--cache-from", "type=registry,ref=r:cache",
        "--cache-to", "type=registry,ref=r:cache,mode=max",
        "--cache-to", "type=inline",
    ]  # fmt: skip


def test_build_command_without_cache_asks_for_none(tmp_path: Path) -> None:
    argv = build.build_command(BUILDKIT, image_spec(tmp_path), "r:1")
    assert "--cache-from" not in argv and "BUILDKIT_INLINE_CACHE=1" not in " ".join(argv)


def test_build_command_for_buildx_loads_the_result(tmp_path: Path) -> None:
    argv = build.build_command(BUILDX, image_spec(tmp_path), "r:1")
    assert argv[:5] == ["/usr/local/bin/docker", "buildx", "build", "--load", "--progress=plain"]


def test_build_command_for_buildx_pushing_a_multi_platform_image(tmp_path: Path) -> None:
    spec = image_spec(tmp_path, platform=("linux/amd64", "linux/arm64"))
    builder = Builder("buildx", "/usr/local/bin/docker", "t", instance="ecs-ship")
    argv = build.build_command(builder, spec, "r:1", metadata_file=tmp_path / "m.json")
    assert argv[:12] == [
        "/usr/local/bin/docker", "buildx", "build", "--builder", "ecs-ship",
        "--push", "--metadata-file", str(tmp_path / "m.json"),
        "--progress=plain", "--platform", "linux/amd64,linux/arm64", "-f",
    ]  # fmt: skip
    assert "--load" not in argv


# ---------------------------------------------------------------------------------------------------------------------
# multi-platform images
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("builder", [BUILDKIT, Builder("legacy", None, "docker CLI 28.2 at /d has no buildx plugin")])
def test_a_platform_list_without_buildx_is_a_spec_error(tmp_path: Path, builder: Builder) -> None:
    spec = image_spec(tmp_path, platform=("linux/amd64", "linux/arm64"))
    with pytest.raises(InputError) as caught:
        build.require_multi_platform(builder, spec, "images[1].platform", "/w/ecs-ship.yml")
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(
        "/w/ecs-ship.yml: images[1].platform: failed to build the image of web for linux/amd64, linux/arm64: a "
        f"multi-platform image needs docker buildx with a docker-container builder, and the builder here is "
        f"{builder.how} ({builder.why})"
    )
    assert caught.value.fix is not None and caught.value.fix.startswith("install the docker buildx plugin")


def test_one_platform_needs_no_buildx_and_a_list_is_fine_with_it(tmp_path: Path) -> None:
    build.require_multi_platform(BUILDKIT, image_spec(tmp_path), "images[0].platform")
    build.require_multi_platform(BUILDX, image_spec(tmp_path, platform=("linux/amd64", "linux/arm64")), "p")


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
    assert build.buildx_driver(INSPECT_DOCKER) == "docker"
    assert build.buildx_driver("ERROR: no builder") is None


def test_a_docker_driver_builder_gets_a_container_builder_created_and_said(tmp_path: Path) -> None:
    run, said = FakeRunner("docker", None), []
    chosen = build.multi_platform_builder(BUILDX, said.append, run)
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
    assert build.multi_platform_builder(BUILDX, said.append, run).instance == "ecs-ship"
    assert ["buildx", "create", "--name", "ecs-ship", "--driver", "docker-container"] not in run.calls
    assert said[0].startswith("building with buildx builder ecs-ship (")


def test_a_current_container_builder_is_used_as_it_is() -> None:
    run, said = FakeRunner("docker-container", None), []
    assert build.multi_platform_builder(BUILDX, said.append, run) == BUILDX
    assert run.calls == [["buildx", "inspect"]] and said == []


def test_a_builder_that_cannot_be_created_is_a_deploy_error() -> None:
    with pytest.raises(DeployError) as caught:
        build.multi_platform_builder(BUILDX, lambda _: None, FakeRunner("docker", None, create=1))
    assert caught.value.message == (
        "failed to create buildx builder ecs-ship: ERROR: failed to create: permission denied"
    )


def test_metadata_digest(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text(json.dumps({"containerimage.digest": DIGEST, "image.name": "r:1"}))
    (tmp_path / "bad.json").write_text("{")
    assert build.metadata_digest(tmp_path / "m.json") == DIGEST
    assert build.metadata_digest(tmp_path / "bad.json") is None
    assert build.metadata_digest(tmp_path / "absent.json") is None


def test_confirm_digest() -> None:
    image.confirm_digest("r:1", DIGEST, DIGEST, "the build")
    image.confirm_digest("r:1", None, DIGEST, "the push")  # nothing reported: the read-back alone decides
    other = "sha256:" + "b" * 64
    with pytest.raises(DeployError) as caught:
        image.confirm_digest("r:1", other, DIGEST, "the build")
    assert (
        caught.value.message
        == f"failed to confirm the push of r:1: the build reported {other}, the registry serves {DIGEST}"
    )


def test_env_secret_goes_through_a_private_file(tmp_path: Path) -> None:
    flag = build.secret_flag(BuildSecret("npmrc", env="NPM_TOKEN"), tmp_path, {"NPM_TOKEN": "s3cr3t"}, 2)
    assert flag == f"id=npmrc,src={tmp_path / 'secret-2'}"
    assert (tmp_path / "secret-2").read_text() == "s3cr3t"
    assert stat.S_IMODE((tmp_path / "secret-2").stat().st_mode) == 0o600


def test_file_secret_is_passed_by_path(tmp_path: Path) -> None:
    flag = build.secret_flag(BuildSecret("netrc", file=tmp_path / "n"), tmp_path, {})
    assert flag == f"id=netrc,src={tmp_path / 'n'}"


def test_unset_env_secret_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        build.secret_flag(BuildSecret("npmrc", env="NPM_TOKEN"), tmp_path, {})
    assert caught.value.message == "failed to read build secret 'npmrc': $NPM_TOKEN is not set"


def test_secret_like_build_args_reuse_the_spec_rule(tmp_path: Path) -> None:
    spec = image_spec(tmp_path, build_args={"NPM_TOKEN": "x", "VERSION": "1", "AWS_SECRET_ACCESS_KEY": "y"})
    assert build.secret_like_build_args(spec) == ["NPM_TOKEN", "AWS_SECRET_ACCESS_KEY"]


BUILDKIT_FAILURE = """\
#5 [build 2/3] COPY app /app
#5 DONE 0.0s

#6 [build 3/3] RUN ./make.sh
#6 0.412 compiling
#6 0.501 make.sh: line 3: cc: not found
#6 ERROR: executor failed running [/bin/sh -c ./make.sh]: exit code: 127
------
 > [build 3/3] RUN ./make.sh:
------
executor failed running [/bin/sh -c ./make.sh]: exit code: 127
""".splitlines()


def test_build_failure_names_the_step_its_error_and_last_lines() -> None:
    assert build.build_failure(BUILDKIT_FAILURE) == (
        "[build 3/3] RUN ./make.sh: executor failed running [/bin/sh -c ./make.sh]: exit code: 127 "
        "(last lines: compiling | make.sh: line 3: cc: not found)"
    )


def test_build_failure_without_a_step_shows_the_last_lines() -> None:
    lines = ["", 'unable to prepare context: path "x" not found']
    assert build.build_failure(lines) == 'unable to prepare context: path "x" not found'


# ---------------------------------------------------------------------------------------------------------------------
# through a stand-in docker CLI
# ---------------------------------------------------------------------------------------------------------------------
def fake_cli(folder: Path, script: str) -> str:
    """A `docker` that records its argv, environment, config.json and secret files, then runs `script`."""
    path = folder / "docker"
    path.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {folder}/argv\n'
        f'echo "BUILDKIT=$DOCKER_BUILDKIT CONFIG=$DOCKER_CONFIG" >> {folder}/env\n'
        f'[ -n "$DOCKER_CONFIG" ] && cat "$DOCKER_CONFIG/config.json" >> {folder}/configs 2>/dev/null\n'
        f'for f in $(echo "$*" | grep -o "src=[^ ]*" | cut -d= -f2); do cat "$f" >> {folder}/secrets; done\n' + script
    )
    path.chmod(0o755)
    return str(path)


def test_cli_build_streams_lines_and_sets_buildkit(tmp_path: Path) -> None:
    cli = fake_cli(tmp_path, 'echo "#1 [1/1] FROM scratch"; echo "#1 DONE 0.0s" >&2\n')
    lines: list[str] = []
    spec = image_spec(tmp_path, secrets=(BuildSecret("npmrc", env="NPM_TOKEN"),))
    environ = {"PATH": os.environ["PATH"], "NPM_TOKEN": "tok"}
    build.cli_build(Builder("buildkit", cli, "t"), spec, "r:1", lines.append, environ=environ)
    assert lines == ["#1 [1/1] FROM scratch", "#1 DONE 0.0s"]
    assert (tmp_path / "env").read_text().startswith("BUILDKIT=1 ")
    assert (tmp_path / "secrets").read_text() == "tok"
    assert "tok" not in (tmp_path / "argv").read_text()


def test_cli_build_failure_is_a_deploy_error_with_the_step(tmp_path: Path) -> None:
    cli = fake_cli(tmp_path, "".join(f"echo '{line}'\n" for line in BUILDKIT_FAILURE) + "exit 1\n")
    with pytest.raises(DeployError) as caught:
        build.cli_build(Builder("buildkit", cli, "t"), image_spec(tmp_path), "r:1", lambda _: None)
    assert type(caught.value) is DeployError
    assert caught.value.message.startswith("failed to build r:1: [build 3/3] RUN ./make.sh: executor failed")


def test_merged_config_keeps_the_users_helpers_and_points_this_host_at_the_file_store() -> None:
    user = {"auths": {"ghcr.io": {"auth": "eA=="}}, "credsStore": "desktop", "credHelpers": {"gcr.io": "gcloud"}}
    merged = registry.merged_config(user, "127.0.0.1:5000", Credentials("bot", "pw", "env"))
    assert merged == {
        "auths": {"ghcr.io": {"auth": "eA=="}, "127.0.0.1:5000": {"auth": "Ym90OnB3"}},
        "credsStore": "desktop",
        "credHelpers": {"gcr.io": "gcloud", "127.0.0.1:5000": ""},
    }
    assert user["credHelpers"] == {"gcr.io": "gcloud"}  # the user's own stays as it was


def test_merged_config_without_credentials_is_the_users() -> None:
    assert registry.merged_config({"credsStore": "pass"}, "h", None) == {"credsStore": "pass"}


def test_cli_config_is_private_links_the_users_plugins_and_is_removed_on_errors(tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / "cli-plugins").mkdir(parents=True)
    (user / "config.json").write_text(json.dumps({"credsStore": "pass"}))
    seen: list[Path] = []
    config = registry.cli_config("h:1", Credentials("u", "p", "t"), {"DOCKER_CONFIG": str(user)})
    try:
        with config as folder:
            seen.append(folder)
            assert stat.S_IMODE((folder / "config.json").stat().st_mode) == 0o600
            assert json.loads((folder / "config.json").read_text())["auths"]["h:1"]["auth"] == "dTpw"
            assert (folder / "cli-plugins").resolve() == (user / "cli-plugins").resolve()
            raise RuntimeError("build failed")
    except RuntimeError as exc:
        assert str(exc) == "build failed"
    assert seen and not seen[0].exists()
    assert json.loads((user / "config.json").read_text()) == {"credsStore": "pass"}


def test_cli_push_returns_the_reported_digest(tmp_path: Path) -> None:
    cli = fake_cli(tmp_path, f"echo 'v1: digest: {DIGEST} size: 528'\n")
    assert registry.cli_push(cli, "127.0.0.1:5000/hello", "v1", tmp_path, lambda _: None) == DIGEST
    assert (tmp_path / "argv").read_text() == "push 127.0.0.1:5000/hello:v1\n"


def test_cli_push_refused_credentials_are_an_input_error(tmp_path: Path) -> None:
    cli = fake_cli(tmp_path, "echo 'unauthorized: authentication required' >&2; exit 1\n")
    with pytest.raises(InputError) as caught:
        registry.cli_push(cli, "127.0.0.1:5000/hello", "v1", tmp_path, lambda _: None)
    assert caught.value.message == "failed to push 127.0.0.1:5000/hello:v1: unauthorized: authentication required"


class FakeRegistryAPI:
    host = "127.0.0.1:5000"

    def __init__(self, digests: list[str | None]) -> None:
        self.digests = digests
        self.credentials = Credentials("bot", "pw", "env")

    def manifest_digest(self, path: str, reference: str) -> str | None:
        return self.digests.pop(0)


def test_ship_builds_and_pushes_with_the_cli_and_a_temporary_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "absent"))
    cli = fake_cli(tmp_path, f'case "$1" in push) echo "v1: digest: {DIGEST} size: 1";; esac\n')
    shipped = image.ship(
        image_spec(tmp_path),
        "v1",
        builder=lambda: Builder("buildkit", cli, "t"),
        docker_client=None,
        registry=FakeRegistryAPI([None, DIGEST]),  # type: ignore[arg-type]
        log=lambda _: None,
    )
    assert shipped.digest == DIGEST and shipped.built and shipped.pushed
    assert [line.split()[0] for line in (tmp_path / "argv").read_text().splitlines()] == ["build", "push"]
    configs = (tmp_path / "configs").read_text()
    assert configs.count('"127.0.0.1:5000": {"auth": "Ym90OnB3"}') == 2  # build and push both logged in
    config_dirs = {line.split("CONFIG=")[1] for line in (tmp_path / "env").read_text().splitlines()}
    assert len(config_dirs) == 1 and not Path(config_dirs.pop()).exists()


def buildx_cli(folder: Path, digest: str) -> str:
    """A docker CLI with buildx whose current builder has the docker driver; its build writes `digest` to the
    metadata file, as buildx does for what it pushed."""
    return fake_cli(
        folder,
        'case "$1 $2 $3" in\n'
        '  "buildx inspect ") printf "Name: default\\nDriver: docker\\n";;\n'
        '  "buildx inspect ecs-ship") echo "ERROR: no builder" >&2; exit 1;;\n'
        '  "buildx build "*) while [ $# -gt 0 ]; do\n'
        '      [ "$1" = --metadata-file ] && printf \'{"containerimage.digest": "%s"}\' ' + digest + ' > "$2"\n'
        "      shift; done;;\n"
        "esac\n",
    )


def ship_multi_platform(tmp_path: Path, builder: Builder, log: list[str]) -> image.ShippedImage:
    return image.ship(
        image_spec(tmp_path, platform=("linux/amd64", "linux/arm64")),
        "v1",
        builder=lambda: builder,
        docker_client=None,
        registry=FakeRegistryAPI([None, DIGEST]),  # type: ignore[arg-type]
        log=log.append,
    )


def test_ship_builds_a_multi_platform_image_with_a_created_builder_and_pushes_with_buildx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "absent"))
    log: list[str] = []
    shipped = ship_multi_platform(tmp_path, Builder("buildx", buildx_cli(tmp_path, DIGEST), "t"), log)
    assert shipped.digest == DIGEST and shipped.pushed
    calls = [line.split()[:6] for line in (tmp_path / "argv").read_text().splitlines()]
    assert calls == [
        ["buildx", "inspect"],
        ["buildx", "inspect", "ecs-ship"],
        ["buildx", "create", "--name", "ecs-ship", "--driver", "docker-container"],
        ["buildx", "build", "--builder", "ecs-ship", "--push", "--metadata-file"],
    ]  # no `docker push`: buildx pushed, and no --load
    assert any(line.startswith("created buildx builder ecs-ship") for line in log)


def test_ship_fails_when_the_registry_serves_another_digest_than_buildx_pushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "absent"))
    other = "sha256:" + "b" * 64
    with pytest.raises(DeployError) as caught:
        ship_multi_platform(tmp_path, Builder("buildx", buildx_cli(tmp_path, other), "t"), [])
    assert caught.value.message == (
        f"failed to confirm the push of 127.0.0.1:5000/hello:v1: the build reported {other}, the registry serves "
        f"{DIGEST}"
    )


def test_ship_refuses_a_platform_list_with_the_classic_cli_before_running_it(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        ship_multi_platform(tmp_path, Builder("buildkit", fake_cli(tmp_path, ""), "t"), [])
    assert not (tmp_path / "argv").exists()


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("git@github.com:octo/app.git", "https://github.com/octo/app"),
        ("https://x-access-token:ghs_abc@github.com/octo/app.git", "https://github.com/octo/app"),
        ("ssh://git@gitlab.example.com/group/app", "https://gitlab.example.com/group/app"),
        ("/srv/git/app.git", None),
    ],
)
def test_web_address_drops_credentials(remote: str, expected: str | None) -> None:
    assert image.web_address(remote) == expected


def test_source_label_comes_from_github_in_actions(tmp_path: Path) -> None:
    env = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "octo/app"}
    assert image.source_url(tmp_path, env) == "https://github.com/octo/app"
    assert image.labels_for("abc", "https://github.com/octo/app") == {
        "org.opencontainers.image.revision": "abc",
        "org.opencontainers.image.source": "https://github.com/octo/app",
    }


def test_a_cancel_stops_the_cli_and_removes_the_temporary_login(tmp_path: Path) -> None:
    cli = fake_cli(tmp_path, f"echo started; echo $$ > {tmp_path}/pid; exec sleep 30\n")
    cancel = threading.Event()
    seen: list[Path] = []

    def build_then_cancel(line: str) -> None:
        if line == "started":
            threading.Timer(0.2, cancel.set).start()

    config = registry.cli_config("h:1", Credentials("u", "p", "t"), {"DOCKER_CONFIG": str(tmp_path / "none")})
    spec = image_spec(tmp_path)
    started = time.monotonic()
    with pytest.raises(Interrupted), config as folder:
        seen.append(folder)
        build.cli_build(Builder("buildkit", cli, "t"), spec, "r:1", build_then_cancel, config_dir=folder, cancel=cancel)
    assert time.monotonic() - started < 10
    assert not seen[0].exists()
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# ---------------------------------------------------------------------------------------------------------------------
# the Dockerfile's own .dockerignore
# ---------------------------------------------------------------------------------------------------------------------
def legacy_tar_names(spec: ImageSpec) -> list[str] | None:
    with tempfile.TemporaryFile() as archive:
        name = build.legacy_context(spec, archive)
        if name is None:
            return None
        with tarfile.open(fileobj=archive) as tar:
            return sorted(m.name for m in tar.getmembers() if m.isfile())


def test_the_dockerfiles_own_ignore_file_replaces_the_contexts(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    spec = image_spec(tmp_path / "docker", context=tmp_path)
    for name in ("app.txt", "secret.txt", "logs/x.log", "keep.txt", ".dockerignore"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / ".dockerignore").write_text("app.txt\n")
    assert build.ignore_file(spec) == tmp_path / ".dockerignore"
    assert legacy_tar_names(spec) is None  # docker-py reads the context's file itself

    (tmp_path / "docker" / "Dockerfile.dockerignore").write_text("# BuildKit reads this one\n\nsecret.txt\nlogs\n")
    assert build.ignore_file(spec) == tmp_path / "docker" / "Dockerfile.dockerignore"
    assert legacy_tar_names(spec) == [
        ".dockerignore",
        "app.txt",
        "docker/Dockerfile",
        "docker/Dockerfile.dockerignore",
        "keep.txt",
    ]
