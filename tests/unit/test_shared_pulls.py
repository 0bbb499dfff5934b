"""The sandbox's shared pull: overlapping launches of one image make one registry pull."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tests.sandbox.simulator import _SharedPulls

IMAGE = "127.0.0.1:5000/app:1"


def _launch_together(pull: Callable[[], None], n: int) -> tuple[_SharedPulls, list[BaseException | None]]:
    """Start `n` launches and hold the pull until all of them share it."""
    pulls = _SharedPulls()
    all_in = threading.Event()
    results: list[BaseException | None] = [None] * n

    def held() -> None:
        assert all_in.wait(5), "the launches never joined the running pull"
        pull()

    def launch(i: int) -> None:
        try:
            pulls.run(IMAGE, held)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=launch, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 5
    while pulls.launches(IMAGE) < n and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    all_in.set()
    for th in threads:
        th.join(5)
        assert not th.is_alive()
    return pulls, results


def test_overlapping_launches_share_one_pull_and_a_later_one_pulls_again() -> None:
    calls: list[str] = []
    pulls, results = _launch_together(lambda: calls.append("pull"), 20)
    assert results == [None] * 20
    assert calls == ["pull"]
    assert pulls.launches(IMAGE) == 0

    pulls.run(IMAGE, lambda: calls.append("pull"))
    assert calls == ["pull", "pull"]


def test_a_failed_pull_fails_every_launch_that_shared_it_and_the_next_one_tries_again() -> None:
    def down() -> None:
        raise RuntimeError("registry down")

    pulls, results = _launch_together(down, 6)
    assert all(isinstance(r, RuntimeError) for r in results)

    calls: list[str] = []
    pulls.run(IMAGE, lambda: calls.append("pull"))
    assert calls == ["pull"]
    with pytest.raises(RuntimeError):
        pulls.run(IMAGE, down)
