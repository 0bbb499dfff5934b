"""SIGINT and SIGTERM reach the run as calls from a watcher thread, never from inside a signal handler."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The main thread is inside an Event's bookkeeping (Event.wait holds its Condition's lock for a moment, and
# fanout and run-local wait on Events all the time) when GitHub's SIGINT and SIGTERM arrive. `on_signal` sets
# that Event: called from a Python signal handler, it takes the lock its own thread holds, and the process hangs.
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from ecs_ship import signals

    event = threading.Event()
    calls = []

    def on_signal():
        calls.append(threading.current_thread().name)
        event.set()

    with signals.routed(on_signal) if sys.argv[1] == "routed" else signals_in_handler(on_signal):
        with event._cond:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100_000):  # bytecodes, where a Python handler would run
                pass
        assert event.wait(10)
        deadline = time.monotonic() + 10
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    print(" ".join(calls))
    """
)

# What the run did before: the handler itself calls on_signal.
IN_HANDLER = textwrap.dedent(
    """
    import contextlib
    @contextlib.contextmanager
    def signals_in_handler(on_signal):
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, lambda signum, frame: on_signal())
        yield
    """
)


def run_script(mode: str, tmp_path: Path, timeout: float) -> subprocess.CompletedProcess[str] | None:
    script = tmp_path / "signals_script.py"
    header, body = SCRIPT.split("from ecs_ship import signals\n")
    script.write_text(header + "from ecs_ship import signals\n" + IN_HANDLER + body)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "runner")}
    try:
        return subprocess.run(
            [sys.executable, str(script), mode], env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None


def test_every_signal_is_delivered_and_none_hangs_the_process(tmp_path: Path) -> None:
    done = run_script("routed", tmp_path, timeout=30)
    assert done is not None, "the process hung"
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ecs-ship-signals", "ecs-ship-signals"]


def test_the_script_finds_the_hang_of_a_handler_that_takes_a_lock(tmp_path: Path) -> None:
    """The test above can fail: the same signals hang the process when the handler sets the Event itself."""
    # Hung for good when seen; 5 s is far more than the 0.1 s the routed run takes.
    assert run_script("in-handler", tmp_path, timeout=5) is None
