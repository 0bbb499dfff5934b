"""What the default build cache saves: a build on a runner with an empty BuildKit cache, with and without the
running image as its cache source.

Each run changes one file that only the last layer copies (a new commit, as in CI), drops the engine's build
cache (a fresh runner), then builds and pushes with ecs-ship's own pipeline (`image.ship`) into the sandbox
registry: once with no cache source, once with the previously pushed image as `cache_from` (the default, whose
inline cache the push carries). The Dockerfile's RUN step stands for dependency installation (SECONDS long).

    .venv/bin/python -m bench.build_cache [--runs 5] [--seconds 3]

Medians over --runs and their ratio, measured in one run; writes bench/results/build_cache.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from ecs_ship import builder as builders
from ecs_ship import image
from ecs_ship.cache import NO_CACHE, CacheFlags, cache_flags
from ecs_ship.registry import Credentials, RegistryAPI
from ecs_ship.spec import CacheEntry, ImageSpec
from tests.sandbox.images import BASE_IMAGE, BUILDKIT_DOCKER
from tests.sandbox.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "build_cache.json"


def dockerfile(seconds: float, nonce: str) -> str:
    return (
        f"FROM {BASE_IMAGE}\n"
        f"RUN echo {nonce} > /nonce && sleep {seconds} && echo dependencies installed\n"
        "COPY stamp /stamp\n"
    )


def timed_ship(sb: Sandbox, spec: ImageSpec, tag: str, cache: CacheFlags, registry: RegistryAPI) -> tuple[float, str]:
    assert sb.docker is not None
    sb.docker.api.prune_builds(all=True)  # a fresh runner: nothing cached locally
    builder = builders.detect_builder(environ={**os.environ, "ECS_SHIP_DOCKER": BUILDKIT_DOCKER})
    start = time.perf_counter()
    shipped = image.ship(
        spec, tag, builder=lambda: builder, docker_client=lambda: sb.docker, registry=registry, log=lambda _: None,
        cache=cache,
    )  # fmt: skip
    return time.perf_counter() - start, shipped.ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    with Sandbox() as sb, tempfile.TemporaryDirectory() as tmp:
        assert sb.registry is not None
        folder = Path(tmp)
        (folder / "Dockerfile").write_text(dockerfile(args.seconds, uuid.uuid4().hex))
        repository = f"{sb.registry.address}/bench-cache"
        spec = ImageSpec("web", repository, folder, folder / "Dockerfile", ("linux/amd64",), {}, None, "{git_sha}")
        creds = Credentials(sb.registry.user, sb.registry.password, "the sandbox")
        registry = RegistryAPI(sb.registry.address, creds)
        inline = (CacheEntry("inline", "images[0].cache_to[0]"),)
        previous_entry = (CacheEntry("previous", "images[0].cache_from[0]"),)

        (folder / "stamp").write_text("0\n")
        _, previous = timed_ship(
            sb, spec, "seed", cache_flags("buildkit", (), inline, previous=None, environ={}), registry
        )
        without: list[float] = []
        with_cache: list[float] = []
        for run in range(args.runs):
            (folder / "stamp").write_text(f"{run}-a\n")
            seconds, _ = timed_ship(sb, spec, f"r{run}-none", NO_CACHE, registry)
            without.append(seconds)
            (folder / "stamp").write_text(f"{run}-b\n")
            flags = cache_flags("buildkit", previous_entry, inline, previous=previous, environ={})
            seconds, previous = timed_ship(sb, spec, f"r{run}-cached", flags, registry)
            with_cache.append(seconds)
            print(f"run {run + 1}: no cache {without[-1]:.2f}s, cache from the running image {with_cache[-1]:.2f}s")
    report = {
        "runs": args.runs,
        "run_step_seconds": args.seconds,
        "median_seconds_without_cache": round(statistics.median(without), 2),
        "median_seconds_with_cache": round(statistics.median(with_cache), 2),
        "ratio_with_to_without": round(statistics.median(with_cache) / statistics.median(without), 2),
        "without_cache": [round(s, 2) for s in without],
        "with_cache": [round(s, 2) for s in with_cache],
    }
    RESULT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
