"""SIGINT and SIGTERM reach the run as calls from a watcher thread, never from inside a signal handler."""

from __future__ import annotations

import os
import signal
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


# A service whose work ignores the cancel (a build in a C library, a push the engine will not abandon): after the
# grace the run must still end with exit 130, its outputs and summary written, instead of Python waiting for the
# worker thread at exit.
STUCK = textwrap.dedent(
    """
    import sys, threading
    from ecs_ship import cli, commands, fanout

    fanout.GRACE_SECONDS = 0.5

    def execute(ctx, svc):
        ctx.stage(svc.name, "building app:1")
        print("working", flush=True)
        threading.Event().wait()  # never returns, whatever the cancel says

    commands.COMMANDS["status"] = commands.Command(lambda ctx, spec, svc: svc, execute)
    sys.argv = ["ecs-ship", "status", "--spec", sys.argv[1]]
    cli.entry()
    """
)


def test_a_run_whose_service_ignores_the_cancel_still_exits_130_with_its_outputs_written(tmp_path: Path) -> None:
    spec = tmp_path / "ecs-ship.yml"
    spec.write_text("version: 1\ncluster: c\nservice: app\n")
    (tmp_path / "stuck.py").write_text(STUCK)
    outputs, summary = tmp_path / "out", tmp_path / "summary"
    outputs.touch()
    summary.touch()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "runner"),
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "stuck.py"), str(spec)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "working"
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the process waited for a worker thread that never ends") from None
    assert code == 130
    assert "interrupted while building app:1: the service was not changed" in outputs.read_text()
    assert "interrupted while building app:1" in summary.read_text()
