"""What every command is given: the arguments, where output goes, a shared cancel flag and the clock.

One ``Context`` serves every service of a run, so parallel services share the cancel flag (an interruption
stops them all) and the record of images already shipped (services that share an image build it once).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import Interrupted
from .gha import Reporter

if TYPE_CHECKING:
    # Types only: the builder and the image pipeline load docker-py, which a run that builds nothing never needs.
    from .builder import Builder
    from .image import ShippedImage
    from .watch.board import ServiceBoard


@dataclass
class Context:
    args: argparse.Namespace
    out: Reporter
    cancel: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.time
    # Per service label: step outputs, milestones, outcome, and the stage it is in (for an interrupted run).
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Services of one spec often share an image: build and push each repository:tag once.
    shipped: dict[tuple[str, str], ShippedImage] = field(default_factory=dict)
    ship_lock: threading.Lock = field(default_factory=threading.Lock)
    builder: Builder | None = None  # detected at the first build of the run (under ship_lock)
    interrupts: int = 0  # SIGINT/SIGTERM received; the second one ends the grace given to running services
    _board: ServiceBoard | None = field(default=None, init=False, repr=False)
    _board_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        # What an earlier run in this process read once (aws.Clients.once: target groups, listener rules) may
        # have changed since. No clients exist when the AWS module was never loaded: nothing to forget.
        made = sys.modules.get("ecs_ship.aws")
        if made is not None:
            made.forget_reads()

    @property
    def board(self) -> ServiceBoard:
        """The one board the watches of a run read their services through: one DescribeServices per ten services
        of a cluster, however many are deployed in parallel. Made by the first watch, so the watch package is
        imported when a watch starts (a deploy's first write does not wait for it; other commands never load it)."""
        with self._board_lock:
            if self._board is None:
                from .watch.board import ServiceBoard

                self._board = ServiceBoard()
            return self._board

    def interrupt(self) -> None:
        """What a signal does: count it and cancel. Called from signals.py's watcher thread, never from inside a
        signal handler, where setting the Event could wait on a lock the interrupted thread holds."""
        self.interrupts += 1
        self.cancel.set()

    def sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise Interrupted("interrupted")

    def check_cancel(self) -> None:
        """Stages call this between steps, so a cancel stops a service before its next write."""
        if self.cancel.is_set():
            raise Interrupted("interrupted")

    def result(self, label: str) -> dict[str, Any]:
        return self.results.setdefault(label, {})

    def stage(self, label: str, name: str) -> None:
        """Record where a service is, so an interruption can say what state it was left in, and when it got
        there, so the summary can say where the minutes went."""
        result = self.result(label)
        result["stage"] = name
        result.setdefault("stages", []).append((name, self.clock()))
        self.check_cancel()

    def sayer(self, label: str) -> Callable[[str], None]:
        """Every line of a service carries its label, so parallel deploys stay readable."""

        def say(line: str) -> None:
            self.out.line(line, label)

        return say


def rev(arn: str | None) -> str:
    """`family:revision` (or a task/deployment id) from an ARN, for messages."""
    return arn.rsplit("/", 1)[-1] if arn else "?"
