"""A Dockerfile written for BuildKit deploys through `ecs-ship deploy` as `docker buildx build` would build it; with
only the legacy builder at hand, such a Dockerfile is refused before anything is written."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import App
from tests.e2e.conftest import ecs_ship, served, spec_for, writes
from tests.sandbox.bootstrap import World
from tests.sandbox.images import BASE_IMAGE
from tests.sandbox.sandbox import Sandbox

# Every construct the legacy builder rejects or builds differently. The served text says what BuildKit built:
# the target architecture and a digest of the build secret (its value stays out of the image).
BUILDKIT_DOCKERFILE = f"""\
ARG BASE={BASE_IMAGE}
FROM ${{BASE}} AS base

FROM base AS unused
RUN echo "the unused stage was built" && exit 1

FROM base AS build
ARG TARGETARCH
# BuildKit leaves secrets out of its cache keys: a fresh NONCE keeps an earlier run's secret digest from being reused.
ARG NONCE
RUN --mount=type=cache,target=/cache \\
    mkdir -p /out && echo "$TARGETARCH" > /out/arch && date > /cache/last-build
RUN --mount=type=secret,id=token \\
    sha256sum /run/secrets/token | cut -c1-16 > /out/token-digest

FROM base
COPY --from=build /out/ /info/
COPY --chmod=0755 app/ /app/
ENV PORT=8080
ENTRYPOINT ["/bin/sh", "-c", "VERSION=\\"$(cat /info/arch)-$(cat /info/token-digest)\\" exec /app/server.sh"]
"""


def buildkit_app(make_app: Callable[[], App], w: World, repo: str, dockerfile: str) -> App:
    app = make_app()
    (app.root / "Dockerfile").write_text(dockerfile)
    for script in (app.root / "app").iterdir():
        # Not executable in the checkout: only COPY --chmod makes the server start.
        script.chmod(0o644)
    doc = yaml.safe_load(
        spec_for(w, repo=repo, build_args={"API_TOKEN": "not-really-a-token", "NONCE": uuid.uuid4().hex})
    )
    doc["images"][0]["secrets"] = [{"id": "token", "env": "BUILD_TOKEN"}]
    app.write_spec(yaml.safe_dump(doc, sort_keys=False))
    return app


def test_a_buildkit_dockerfile_deploys_and_its_secret_stays_out(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    repo = f"e2e-bk-{uuid.uuid4().hex[:6]}"
    app = buildkit_app(make_app, w, repo, BUILDKIT_DOCKERFILE)
    secret = f"s3cret-{uuid.uuid4().hex}"

    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), env={"BUILD_TOKEN": secret})
    assert run.code == 0, run.text
    assert "building with DOCKER_BUILDKIT=1 /usr/bin/docker build" in run.text
    assert "RUN --mount=type=secret,id=token" in run.text  # BuildKit's plain progress, streamed
    assert "the unused stage was built" not in run.text
    assert "build arg API_TOKEN of web looks like a secret" in run.text
    token_digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
    assert served(w) == f"hello amd64-{token_digest}"  # TARGETARCH of linux/amd64, the secret read at build time

    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=app.root, capture_output=True, text=True).stdout.strip()
    ref = f"{sandbox.registry.address}/{repo}:{sha}"  # type: ignore[union-attr]
    built = sandbox.docker.images.get(ref)
    labels = built.attrs["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == sha
    history = " ".join(str(h.get("CreatedBy", "")) for h in built.history())
    saved, files = image_files(built)
    assert all(secret.encode() not in blob for blob in [saved, *files.values()])
    assert secret not in history and secret not in run.text


def image_files(built: Any) -> tuple[bytes, dict[str, bytes]]:
    """An engine image as `docker save` writes it, and the files of its layers by path (later layers win)."""
    saved = b"".join(built.save())
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer.getmembers():
            data = outer.extractfile(member)
            if data is not None and member.name.endswith(".tar"):
                with tarfile.open(fileobj=io.BytesIO(data.read())) as layer:
                    for m in layer.getmembers():
                        if m.isfile() and (f := layer.extractfile(m)) is not None:
                            files[m.name] = f.read()
    return saved, files


def ignore_files_app(make_app: Callable[[], App], w: World, repo: str, dockerfile: str) -> tuple[App, str]:
    """An app whose Dockerfile has its own .dockerignore (leaving out private.txt), which replaces the context's
    (leaving out build-input.txt, which the build needs); returns the app and build-input.txt's content."""
    app = make_app()
    (app.root / "Dockerfile").write_text(dockerfile)
    content = f"build input {uuid.uuid4().hex}"
    (app.root / "build-input.txt").write_text(content)
    (app.root / "private.txt").write_text("private")
    (app.root / ".dockerignore").write_text("build-input.txt\n")
    (app.root / "Dockerfile.dockerignore").write_text("# BuildKit prefers this file\nprivate.txt\n")
    app.write_spec(spec_for(w, repo=repo))
    return app, content


def built_image(sandbox: Sandbox, app: App, repo: str) -> Any:
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=app.root, capture_output=True, text=True).stdout.strip()
    return sandbox.docker.images.get(f"{sandbox.registry.address}/{repo}:{sha}")  # type: ignore[union-attr]


BIND_DOCKERFILE = f"""\
ARG BASE={BASE_IMAGE}
FROM ${{BASE}}
RUN --mount=type=bind,target=/src \\
    mkdir -p /info && ls -A /src > /info/context && sha256sum /src/build-input.txt | cut -c1-16 > /info/input
COPY --chmod=0755 app/ /app/
ENV PORT=8080
ENTRYPOINT ["/bin/sh", "-c", "VERSION=\\"$(cat /info/input)\\" exec /app/server.sh"]
"""


def test_a_bind_mounted_context_is_read_at_build_time_and_stays_out_of_the_image(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    repo = f"e2e-bk-{uuid.uuid4().hex[:6]}"
    app, content = ignore_files_app(make_app, w, repo, BIND_DOCKERFILE)

    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    # build-input.txt reached the build: the Dockerfile's own ignore file was read, not the context's.
    assert served(w) == f"hello {hashlib.sha256(content.encode()).hexdigest()[:16]}"
    _, files = image_files(built_image(sandbox, app, repo))
    listing = files["info/context"].decode().split()
    assert "build-input.txt" in listing and "Dockerfile" in listing
    assert "private.txt" not in listing
    assert not any(content.encode() in blob for blob in files.values())


LEGACY_DOCKERFILE = f"""\
ARG BASE={BASE_IMAGE}
FROM ${{BASE}}
COPY . /ctx/
COPY app/ /app/
ENV PORT=8080
ENTRYPOINT ["/app/server.sh"]
"""


def test_the_legacy_builder_leaves_out_what_the_dockerfiles_own_ignore_file_names(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App], tmp_path: Path
) -> None:
    w = make_world()
    repo = f"e2e-bk-{uuid.uuid4().hex[:6]}"
    app, content = ignore_files_app(make_app, w, repo, LEGACY_DOCKERFILE)

    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), env={"ECS_SHIP_DOCKER": legacy_only_cli(tmp_path)})
    assert run.code == 0, run.text
    assert "the engine's legacy builder" in run.text
    _, files = image_files(built_image(sandbox, app, repo))
    assert files["ctx/build-input.txt"] == content.encode()
    assert "ctx/private.txt" not in files and "ctx/app/server.sh" in files
    assert served(w) == "hello v1"


def test_an_amd64_image_for_arm64_tasks_is_refused_before_any_write(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    ecs = sandbox.clients()["ecs"]
    described = ecs.describe_task_definition(taskDefinition=w.task_definition_arn)["taskDefinition"]
    described["runtimePlatform"] = {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}
    (app.root / "taskdef.json").write_text(json.dumps(described, default=str))
    app.write_spec(spec_for(w, extra="task_definition: taskdef.json\n"))

    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 2, run.text
    assert (
        "the image of container web is built for linux/amd64, but the task definition's runtimePlatform is "
        "ARM64/LINUX" in run.text
    )
    assert "'exec format error'" in run.text and "build for linux/arm64" in run.text
    assert writes(sandbox, mark) == []


def test_a_platform_list_without_buildx_is_refused_before_any_write(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    doc = yaml.safe_load(spec_for(w))
    doc["images"][0]["platform"] = ["linux/amd64", "linux/arm64"]
    app.write_spec(yaml.safe_dump(doc, sort_keys=False))

    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 2, run.text
    assert "images[0].platform: failed to build the image of web for linux/amd64, linux/arm64" in run.text
    assert "install the docker buildx plugin" in run.text
    assert writes(sandbox, mark) == []


def legacy_only_cli(folder: Path) -> str:
    """A docker CLI of 23 or later without the buildx plugin: the legacy builder is all that is left."""
    cli = folder / "docker"
    cli.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        "  buildx) echo \"docker: 'buildx' is not a docker command.\" >&2; exit 1;;\n"
        "  --version) echo 'Docker version 28.2.2, build e6534b4';;\n"
        "  *) echo 'this CLI must not be asked to build' >&2; exit 99;;\n"
        "esac\n"
    )
    cli.chmod(0o755)
    return str(cli)


def test_the_legacy_builder_refuses_buildkit_syntax_before_any_write(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App], tmp_path: Path
) -> None:
    w = make_world()
    repo = f"e2e-bk-{uuid.uuid4().hex[:6]}"
    app = buildkit_app(make_app, w, repo, BUILDKIT_DOCKERFILE)

    mark = sandbox.ledger.mark()
    env = {"BUILD_TOKEN": "legacy-build-token", "ECS_SHIP_DOCKER": legacy_only_cli(tmp_path)}
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), env=env)
    assert run.code == 2, run.text
    assert "has no buildx plugin" in run.text, run.text
    assert "build secrets (token) need BuildKit" in run.text
    assert writes(sandbox, mark) == []

    # Without the secret, the Dockerfile itself is what it refuses, line by line.
    doc = yaml.safe_load(app.spec.read_text())
    del doc["images"][0]["secrets"]
    app.write_spec(yaml.safe_dump(doc, sort_keys=False))
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), env=env)
    assert run.code == 2, run.text
    dockerfile = app.root.resolve() / "Dockerfile"
    assert f"{dockerfile}:11: RUN --mount" in run.text
    assert f"{dockerfile}:13: RUN --mount" in run.text
    assert f"{dockerfile}:18: COPY --chmod" in run.text
    assert "install the docker buildx plugin" in run.text
    assert "this CLI must not be asked to build" not in run.text
    assert writes(sandbox, mark) == []
