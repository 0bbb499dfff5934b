"""SIGINT and SIGTERM, delivered as calls from an ordinary thread.

A Python signal handler runs in the main thread between two bytecodes: possibly inside a lock's bookkeeping
(``threading.Event.wait`` holds its Condition's lock for a moment) or inside the handler of the signal before
(GitHub's cancel sends SIGINT, then SIGTERM; a user presses Ctrl-C twice). Setting an Event from there takes
that same non-reentrant lock again and the process hangs for good. So the Python handlers here do nothing:
the interpreter's C-level handler writes each signal's number to a wakeup pipe, and a watcher thread calls
``on_signal`` once per signal, where taking a lock is safe.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def routed(on_signal: Callable[[], None]) -> Iterator[None]:
    """While inside, each SIGINT or SIGTERM calls `on_signal` from a watcher thread. Outside the main thread
    (the CLI run in-process by a test, say) signals cannot be handled, and nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # set_wakeup_fd requires it: the C handler must never block
    watcher = threading.Thread(target=_watch, args=(read_fd, on_signal), name="ecs-ship-signals", daemon=True)
    watcher.start()
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    previous = {s: signal.signal(s, _ignore) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(write_fd)  # the watcher reads end-of-file, calls for what was still queued, and stops
        watcher.join(timeout=1)


def _ignore(signum: int, frame: object) -> None:
    """Installed so the C handler writes to the wakeup pipe; the call itself is made by the watcher."""


def _watch(read_fd: int, on_signal: Callable[[], None]) -> None:
    try:
        while data := os.read(read_fd, 64):
            for _ in data:  # one byte per signal received
                on_signal()
    finally:
        os.close(read_fd)
