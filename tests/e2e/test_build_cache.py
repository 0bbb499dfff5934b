"""Build cache from the spec: the image the service runs is the next build's cache source (exported inline),
and an entry the builder here cannot use is refused before anything is written."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import yaml

from tests.conftest import App
from tests.e2e.conftest import ecs_ship, served, spec_for, writes
from tests.sandbox.bootstrap import World
from tests.sandbox.images import BASE_IMAGE
from tests.sandbox.sandbox import Sandbox

MARK = "expensive-step-ran"

# The RUN step stands for dependency installation: slow, and the same as long as its inputs are.
CACHE_DOCKERFILE = f"""\
FROM {BASE_IMAGE}
ARG NONCE
RUN echo "$NONCE" > /nonce && echo {MARK}
COPY --chmod=0755 app/ /app/
COPY stamp /stamp
ENV PORT=8080
ENTRYPOINT ["/app/server.sh"]
"""


def cache_app(make_app: Callable[[], App], w: World, **image: object) -> App:
    app = make_app()
    (app.root / "Dockerfile").write_text(CACHE_DOCKERFILE)
    (app.root / "stamp").write_text("1\n")
    doc = yaml.safe_load(spec_for(w, build_args={"VERSION": "v1", "NONCE": uuid.uuid4().hex}))
    doc["images"][0].update(image)
    app.write_spec(yaml.safe_dump(doc, sort_keys=False))
    return app


def step_ran(log: str) -> bool:
    """The RUN step printed its line: BuildKit's plain progress shows a step's output as `#N <seconds> <line>`."""
    return re.search(rf"#\d+ \d+\.\d+ {MARK}$", log, re.MULTILINE) is not None


def next_commit(app: App, stamp: str) -> None:
    (app.root / "stamp").write_text(stamp + "\n")
    app.commit(f"stamp {stamp}")


def drop_build_cache(sandbox: Sandbox) -> None:
    """Only the registry can then supply the cached step, as on a fresh CI runner."""
    assert sandbox.docker is not None
    sandbox.docker.api.prune_builds(all=True)


def test_the_running_image_is_the_next_builds_cache(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = cache_app(make_app, w)
    first = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert first.code == 0, first.text
    assert step_ran(first.text)  # nothing to reuse on a first deploy

    next_commit(app, "2")
    drop_build_cache(sandbox)
    second = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert second.code == 0, second.text
    assert "importing cache manifest from" in second.text, second.text
    assert not step_ran(second.text)  # the RUN step came from the running image's inline cache
    assert served(w) == "hello v1"

    # The same change with the cache turned off runs the step again: the reuse above was the cache source's.
    doc = yaml.safe_load(app.spec.read_text())
    doc["images"][0]["cache_from"] = []
    app.write_spec(yaml.safe_dump(doc, sort_keys=False))
    next_commit(app, "3")
    drop_build_cache(sandbox)
    third = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert third.code == 0, third.text
    assert step_ran(third.text)


def test_a_cache_entry_the_builder_cannot_use_is_bad_input(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = cache_app(make_app, w, cache_to=[{"type": "registry", "ref": "127.0.0.1:1/cache:build", "mode": "max"}])
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 2, run.text
    assert "images[0].cache_to[0]" in run.text and "buildx" in run.text
    assert writes(sandbox, mark) == []
