"""What the builder tests share: an image spec in a folder, and builders of each kind."""

from __future__ import annotations

from pathlib import Path

from ecs_ship.builder import Builder
from ecs_ship.spec import ImageSpec

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
