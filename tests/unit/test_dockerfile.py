"""The Dockerfile scan that keeps BuildKit syntax away from the legacy builder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecs_ship import dockerfile
from ecs_ship.dockerfile import Finding
from ecs_ship.errors import InputError
from ecs_ship.spec import BuildSecret
from tests.unit.build_helpers import image_spec

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
    assert dockerfile.scan_dockerfile(SCANNED) == [
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
    assert dockerfile.scan_dockerfile(text) == []


def test_scan_honours_the_escape_directive() -> None:
    text = "# escape=`\nFROM scratch\nRUN `\n  --mount=type=cache,target=/c true\n"
    assert dockerfile.scan_dockerfile(text) == [Finding(3, "RUN --mount")]


def test_check_legacy_names_file_line_and_the_fix(tmp_path: Path) -> None:
    spec = image_spec(tmp_path, "FROM scratch\n\nRUN --mount=type=cache,target=/c true\n")
    with pytest.raises(InputError) as caught:
        dockerfile.check_legacy(spec, "r:1")
    assert caught.value.exit_code == 2
    assert f"{tmp_path / 'Dockerfile'}:3: RUN --mount" in caught.value.message
    assert caught.value.fix == dockerfile.BUILDX_FIX and "buildx" in caught.value.fix


def test_check_legacy_refuses_build_secrets(tmp_path: Path) -> None:
    spec = image_spec(tmp_path, secrets=(BuildSecret("npmrc", env="NPM_TOKEN"),))
    with pytest.raises(InputError) as caught:
        dockerfile.check_legacy(spec, "r:1")
    assert "build secrets (npmrc) need BuildKit" in caught.value.message
