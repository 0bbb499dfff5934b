"""Run a tool's processes side by side, each line of their output stamped the moment it is read, up to a cap."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from .judge import ProcessResult
from .truth import Line


@dataclass(frozen=True)
class Command:
    label: str
    argv: list[str]
    service: str | None = None  # the service this process deploys, when a run has one process per service


def _read(stream: IO[str], name: str, source: str, sink: list[Line], lock: threading.Lock) -> None:
    for text in iter(stream.readline, ""):
        line = Line(time.time(), name, text.rstrip("\n"), source)
        with lock:
            sink.append(line)
    stream.close()


def _stop(proc: subprocess.Popen[str]) -> None:
    # Each tool runs in its own session, so its process group is exactly what it started (a shell's aws commands
    # too), and nothing else.
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_all(commands: Sequence[Command], env: dict[str, str], cap: float) -> list[ProcessResult]:
    """Start every command at once; each gets `cap` seconds from its start, then is stopped (code None)."""
    lock = threading.Lock()
    started: list[tuple[Command, subprocess.Popen[str], float, list[Line], list[threading.Thread]]] = []
    for cmd in commands:
        t0 = time.time()
        proc = subprocess.Popen(
            cmd.argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        lines: list[Line] = []
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            threading.Thread(target=_read, args=(proc.stdout, "stdout", cmd.label, lines, lock), daemon=True),
            threading.Thread(target=_read, args=(proc.stderr, "stderr", cmd.label, lines, lock), daemon=True),
        ]
        for r in readers:
            r.start()
        started.append((cmd, proc, t0, lines, readers))
    results = []
    for cmd, proc, t0, lines, readers in started:
        code: int | None
        try:
            code = proc.wait(timeout=max(0.0, t0 + cap - time.time()))
            ended = time.time()
        except subprocess.TimeoutExpired:
            ended = time.time()
            code = None
            _stop(proc)
        for r in readers:
            r.join(timeout=5)
        with lock:
            got = tuple(lines)
        results.append(ProcessResult(cmd.label, t0, ended, code, got, cmd.service))
    return results
