"""Building: command lines, failures read from BuildKit's output, and builds and pushes through
a stand-in docker CLI (a script that records what it was given), so no Docker engine is needed."""

from __future__ import annotations

import json
import os
import stat
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ecs_ship import build, dockerfile, image, registry
from ecs_ship.builder import Builder
from ecs_ship.cache import NO_CACHE, CacheFlags
from ecs_ship.errors import DeployError, InputError, Interrupted
from ecs_ship.registry import Credentials
from ecs_ship.spec import BuildSecret, ImageSpec, secret_like_build_args
from tests.unit.build_helpers import BUILDKIT, BUILDX, DIGEST, image_spec


# ---------------------------------------------------------------------------------------------------------------------
# building
# ---------------------------------------------------------------------------------------------------------------------
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
    assert secret_like_build_args(spec) == ["NPM_TOKEN", "AWS_SECRET_ACCESS_KEY"]


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


def ship_with(
    tmp_path: Path,
    builder: Builder,
    log: list[str],
    platform: tuple[str, ...] = ("linux/amd64", "linux/arm64"),
    cache: CacheFlags = NO_CACHE,
) -> image.ShippedImage:
    """`ship` of the v1 tag that the registry lacks at first and serves as DIGEST once pushed."""
    return image.ship(
        image_spec(tmp_path, platform=platform),
        "v1",
        builder=lambda: builder,
        docker_client=None,
        registry=FakeRegistryAPI([None, DIGEST]),  # type: ignore[arg-type]
        log=log.append,
        cache=cache,
    )


def test_ship_builds_a_multi_platform_image_with_a_created_builder_and_pushes_with_buildx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "absent"))
    log: list[str] = []
    shipped = ship_with(tmp_path, Builder("buildx", buildx_cli(tmp_path, DIGEST), "t"), log)
    assert shipped.digest == DIGEST and shipped.pushed
    calls = [line.split()[:6] for line in (tmp_path / "argv").read_text().splitlines()]
    assert calls == [
        ["buildx", "inspect"],
        ["buildx", "inspect", "ecs-ship"],
        ["buildx", "create", "--name", "ecs-ship", "--driver", "docker-container"],
        ["buildx", "build", "--builder", "ecs-ship", "--push", "--metadata-file"],
    ]  # no `docker push`: buildx pushed, and no --load
    assert any(line.startswith("created buildx builder ecs-ship") for line in log)


def test_ship_exports_registry_cache_through_a_container_builder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One platform, but a registry cache export: the docker driver refuses it ("Cache export is not supported
    for the docker driver"), so the build goes to the ecs-ship builder; an inline export alone does not."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "absent"))
    cli = buildx_cli(tmp_path, DIGEST)

    def ship(cache_to: tuple[str, ...]) -> list[list[str]]:
        (tmp_path / "argv").unlink(missing_ok=True)
        ship_with(tmp_path, Builder("buildx", cli, "t"), [], ("linux/amd64",), CacheFlags(cache_to=cache_to))
        return [line.split()[:4] for line in (tmp_path / "argv").read_text().splitlines()]

    assert ship(("type=registry,ref=127.0.0.1:5000/hello:cache,mode=max",))[-2:] == [
        ["buildx", "create", "--name", "ecs-ship"],
        ["buildx", "build", "--builder", "ecs-ship"],
    ]
    assert ship(("type=inline",)) == [["buildx", "build", "--push", "--metadata-file"]]


def test_ship_fails_when_the_registry_serves_another_digest_than_buildx_pushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "absent"))
    other = "sha256:" + "b" * 64
    with pytest.raises(DeployError) as caught:
        ship_with(tmp_path, Builder("buildx", buildx_cli(tmp_path, other), "t"), [])
    assert caught.value.message == (
        f"failed to confirm the push of 127.0.0.1:5000/hello:v1: the build reported {other}, the registry serves "
        f"{DIGEST}"
    )


def test_ship_refuses_a_platform_list_with_the_classic_cli_before_running_it(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        ship_with(tmp_path, Builder("buildkit", fake_cli(tmp_path, ""), "t"), [])
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
    assert dockerfile.ignore_file(spec) == tmp_path / ".dockerignore"
    assert legacy_tar_names(spec) is None  # docker-py reads the context's file itself

    (tmp_path / "docker" / "Dockerfile.dockerignore").write_text("# BuildKit reads this one\n\nsecret.txt\nlogs\n")
    assert dockerfile.ignore_file(spec) == tmp_path / "docker" / "Dockerfile.dockerignore"
    assert legacy_tar_names(spec) == [
        ".dockerignore",
        "app.txt",
        "docker/Dockerfile",
        "docker/Dockerfile.dockerignore",
        "keep.txt",
    ]
