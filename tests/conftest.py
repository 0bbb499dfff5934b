"""Session-wide sandbox: one engine, registry, moto server and simulator for every test that asks."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.sandbox.bootstrap import World, WorldSpec
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.services import free_port


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox().start()
    try:
        yield sb
    finally:
        sb.stop()


class HelloImages:
    """examples/hello variants, built and pushed once per session: name -> registry ref with digest."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self._refs: dict[str, str] = {}

    def get(self, version: str, **behaviour: Any) -> str:
        key = version + repr(sorted(behaviour.items()))
        if key not in self._refs:
            self._refs[key] = self.sb.build_and_push("hello", version, **behaviour)
        return self._refs[key]


@pytest.fixture(scope="session")
def hello(sandbox: Sandbox) -> HelloImages:
    return HelloImages(sandbox)


@pytest.fixture
def make_world(sandbox: Sandbox, hello: HelloImages) -> Callable[..., World]:
    def make(**kw: Any) -> World:
        kw.setdefault("image", hello.get("v1"))
        name = kw.pop("name", "w" + uuid.uuid4().hex[:8])
        return sandbox.bootstrap(WorldSpec(name=name, listener_port=free_port(), **kw))

    return make
