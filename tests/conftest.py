"""Session-wide sandbox: one engine, registry, moto server and simulator for every test that asks.

Importing this file needs no Docker engine, moto or root: the sandbox is imported and started only when a
test asks for it, and any such test is an ``e2e`` test wherever it lives, so ``pytest -m "not e2e"`` never
starts it.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.sandbox.bootstrap import World
    from tests.sandbox.sandbox import Sandbox


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "sandbox" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    from tests.sandbox.sandbox import Sandbox

    sb = Sandbox().start()
    try:
        # In-process builds (run-local) use the sandbox's BuildKit-capable docker CLI too.
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ECS_SHIP_DOCKER", sb.env()["ECS_SHIP_DOCKER"])
            yield sb
    finally:
        sb.stop()
        _teardown.update(sb.stop_times)


# Where the sandbox's teardown spent its time, said after the results (pytest shows no fixture's output there).
_teardown: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _teardown:
        parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in _teardown.items())
        terminalreporter.write_line(f"sandbox teardown: {parts}")


@pytest.fixture(autouse=True)
def _fresh_sandbox_after(request: pytest.FixtureRequest) -> Iterator[None]:
    """The sandbox is shared by the session: neither a fault a test set nor the tasks of its worlds outlive it."""
    yield
    if "sandbox" in request.fixturenames:
        sb: Sandbox = request.getfixturevalue("sandbox")
        sb.end_test()


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
    from tests.sandbox.bootstrap import WorldSpec
    from tests.sandbox.services import free_port

    def make(**kw: Any) -> World:
        kw.setdefault("image", hello.get("v1"))
        name = kw.pop("name", "w" + uuid.uuid4().hex[:8])
        return sandbox.bootstrap(WorldSpec(name=name, listener_port=free_port(), **kw))

    return make


HELLO = Path(__file__).resolve().parents[1] / "examples" / "hello"


@dataclass
class App:
    """A user's repository: the hello app, its ecs-ship.yml, committed to git."""

    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "ecs-ship.yml"

    def commit(self, message: str = "change") -> str:
        subprocess.run(["git", "add", "-A"], cwd=self.root, check=True, capture_output=True)
        subprocess.run(["git", "commit", "-qm", message], cwd=self.root, check=True, capture_output=True)
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=self.root, check=True, capture_output=True, text=True
        ).stdout.strip()

    def write_spec(self, text: str) -> None:
        self.spec.write_text(textwrap.dedent(text))
        self.commit("spec")


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., App]:
    def make() -> App:
        root = tmp_path / f"app-{uuid.uuid4().hex[:6]}"
        shutil.copytree(HELLO, root, ignore=shutil.ignore_patterns("ecs-ship.yml", "README.md"))
        (root / "NONCE").write_text(uuid.uuid4().hex)  # every app repository gets its own commit ids
        for cmd in (
            ["git", "init", "-q"],
            ["git", "config", "user.email", "dev@example.invalid"],
            ["git", "config", "user.name", "dev"],
        ):
            subprocess.run(cmd, cwd=root, check=True, capture_output=True)
        app = App(root)
        app.commit("initial")
        return app

    return make
