"""What the sandbox saw and what it was told to break.

Three things later work measures against, kept apart from moto so they survive a moto upgrade:

* every AWS API call the server answered (service, action, wall time) — proves "no write on dry run"
  and gives calls per second;
* ground truth: when each task started/stopped and each target changed state, so a benchmark can
  say how long after the fact a tool noticed;
* fault plans: answer the next N calls of an action with a throttling error.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

# Actions that change state. Describe*/List*/Get* never do; anything else is treated as a write so
# that a new action is counted as a write until someone proves otherwise.
_READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "Filter", "Lookup")


def is_write(action: str) -> bool:
    return not action.startswith(_READ_PREFIXES)


@dataclass(frozen=True)
class Call:
    at: float
    service: str
    action: str
    throttled: bool


@dataclass(frozen=True)
class Fact:
    """One thing that really happened in the simulated world, stamped when it happened."""

    at: float
    kind: str  # task_started, task_stopped, target_initial, target_healthy, target_unhealthy, ...
    subject: str  # task ARN or "<target group ARN>|<ip>:<port>"
    detail: str = ""


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: list[Call] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    _throttle: dict[str, int] = field(default_factory=dict)

    # --- calls -----------------------------------------------------------------------------
    def record_call(self, service: str, action: str) -> bool:
        """Record a call; return True when a fault plan says to answer it with throttling."""
        with self.lock:
            throttled = self._throttle.get(action, 0) > 0
            if throttled:
                self._throttle[action] -= 1
            self.calls.append(Call(time.time(), service, action, throttled))
            return throttled

    def mark(self) -> int:
        """A position in the call log; pass it to calls_since() to see only what came after."""
        with self.lock:
            return len(self.calls)

    def calls_since(self, mark: int = 0) -> list[Call]:
        with self.lock:
            return list(self.calls[mark:])

    def writes_since(self, mark: int = 0) -> list[Call]:
        return [c for c in self.calls_since(mark) if is_write(c.action)]

    def count_by_action(self, mark: int = 0) -> Counter[str]:
        return Counter(c.action for c in self.calls_since(mark))

    # --- faults ----------------------------------------------------------------------------
    def throttle(self, action: str, times: int) -> None:
        """Answer the next `times` calls of `action` (e.g. "DescribeServices") with throttling."""
        with self.lock:
            self._throttle[action] = self._throttle.get(action, 0) + times

    # --- ground truth ----------------------------------------------------------------------
    def fact(self, kind: str, subject: str, detail: str = "") -> None:
        with self.lock:
            self.facts.append(Fact(time.time(), kind, subject, detail))

    def facts_of(self, kind: str | None = None, subject: str | None = None) -> list[Fact]:
        with self.lock:
            return [
                f for f in self.facts if (kind is None or f.kind == kind) and (subject is None or f.subject == subject)
            ]
