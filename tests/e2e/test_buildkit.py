"""A Dockerfile written for BuildKit deploys through `ecs-ship deploy` as `docker buildx build` would build it; with
only the legacy builder at hand, such a Dockerfile is refused before anything is written."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

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
    saved = io.BytesIO(b"".join(built.save()))
    contents = [saved.getvalue()]
    with tarfile.open(fileobj=io.BytesIO(saved.getvalue())) as outer:
        for member in outer.getmembers():
            data = outer.extractfile(member)
            if data is not None and member.name.endswith(".tar"):
                with tarfile.open(fileobj=io.BytesIO(data.read())) as layer:
                    contents += [
                        f.read() for m in layer.getmembers() if m.isfile() and (f := layer.extractfile(m)) is not None
                    ]
    assert all(secret.encode() not in blob for blob in contents)
    assert secret not in history and secret not in run.text


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
