"""What the sandbox saw and what it was told to break.

Three things later work measures against, kept apart from moto so they survive a moto upgrade:

* every AWS API call the server answered (service, action, wall time) — proves "no write on dry run"
  and gives calls per second;
* ground truth: when each task started/stopped and each target changed state, so a benchmark can
  say how long after the fact a tool noticed;
* fault plans: answer the next N calls of an action (or of any action) with an AWS error of any code and
  HTTP status, or every call with expired credentials until they are renewed;
* rate limits (opt-in, ``limit_rates``): AWS's token buckets per account and Region (``ratelimits.py``), a call
  past its bucket answered with throttling as AWS answers it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .ratelimits import AWS_RATE_LIMITS, RateLimit, RateLimiter

# Actions that change state. Describe*/List*/Get* never do; anything else is treated as a write so
# that a new action is counted as a write until someone proves otherwise.
_READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "Filter", "Lookup", "Head")


def is_write(action: str) -> bool:
    return not action.startswith(_READ_PREFIXES)


THROTTLING = "ThrottlingException"
EXPIRED_TOKEN = "ExpiredTokenException"
ANY = "*"


@dataclass(frozen=True)
class AwsError:
    """An error answer: the JSON protocol's ``__type``, the HTTP status and the message."""

    code: str
    status: int
    message: str


# What ECS and ELB answer past a rate limit (both pages name the code and the message).
RATE_EXCEEDED = AwsError(THROTTLING, 400, "Rate exceeded")


@dataclass(frozen=True)
class Call:
    at: float
    service: str
    action: str
    error: str = ""  # the code it was answered with by a fault plan, "" when moto answered

    @property
    def throttled(self) -> bool:
        return self.error == THROTTLING


@dataclass
class _Plan:
    actions: frozenset[str] | None  # None: any action
    remaining: int
    error: AwsError

    def takes(self, action: str) -> bool:
        return self.remaining > 0 and (self.actions is None or action in self.actions)


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
    _plans: list[_Plan] = field(default_factory=list)
    # Per-action outages (burst_each): each action's first `times` calls from now fail with the error.
    _each: list[tuple[int, AwsError, Counter[str]]] = field(default_factory=list)
    _expired: bool = False
    _rates: RateLimiter | None = None

    # --- calls -----------------------------------------------------------------------------
    def record_call(self, service: str, action: str, region: str = "") -> AwsError | None:
        """Record a call; return the error a fault plan or a rate limit says to answer it with, or None.

        A fault plan answers first: the call it fails never reached AWS's throttling, so takes no token.
        """
        with self.lock:
            error = None
            if self._expired:
                error = AwsError(EXPIRED_TOKEN, 400, "The security token included in the request is expired")
            else:
                plan = next((p for p in self._plans if p.takes(action)), None)
                if plan is not None:
                    plan.remaining -= 1
                    error = plan.error
                    self._plans = [p for p in self._plans if p.remaining > 0]
                for times, each_error, seen in self._each if error is None else []:
                    if seen[action] < times:
                        seen[action] += 1
                        error = each_error
                        break
            rates = self._rates
            if error is None and rates is not None and not rates.admit(region, service, action, write=is_write(action)):
                error = RATE_EXCEEDED
            self.calls.append(Call(time.time(), service, action, error.code if error else ""))
            return error

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
    # Plans queue up: a call is answered by the oldest plan that covers its action.
    def fail(
        self, action: str, times: int, code: str = "InternalFailure", status: int = 500, message: str | None = None
    ) -> None:
        """Answer the next `times` calls of `action` ("DescribeServices", or "*" for any) with error `code`."""
        self.burst([action], times, code, status, message)

    def throttle(self, action: str, times: int) -> None:
        """Answer the next `times` calls of `action` with throttling, as AWS does past a rate limit."""
        self.fail(action, times, THROTTLING, 400, "Rate exceeded")

    def burst(
        self,
        actions: str | Iterable[str],
        times: int,
        code: str = "ServiceUnavailable",
        status: int = 503,
        message: str | None = None,
    ) -> None:
        """An outage: the next `times` calls in a row of any of `actions` ("*" = every action) fail.

        The count is shared: with two actions and times=4 the next four calls of either fail, whichever
        comes, rather than four of each.
        """
        names = frozenset([actions] if isinstance(actions, str) else actions)
        error = AwsError(code, status, message or f"{code} (injected by the sandbox)")
        with self.lock:
            self._plans.append(_Plan(None if ANY in names else names, times, error))

    def burst_each(self, times: int, code: str = "ServiceUnavailable", status: int = 503) -> None:
        """Every action's first `times` calls from now fail, each action counted on its own (until
        clear_faults): a fault no action of a run escapes, however few calls it makes."""
        error = AwsError(code, status, f"{code} (injected by the sandbox)")
        with self.lock:
            self._each.append((times, error, Counter()))

    def expire_credentials(self) -> None:
        """Every call answers ExpiredTokenException (HTTP 400) until renew_credentials()."""
        with self.lock:
            self._expired = True

    def renew_credentials(self) -> None:
        with self.lock:
            self._expired = False

    def limit_rates(
        self,
        limits: Mapping[str, Mapping[str, RateLimit]] = AWS_RATE_LIMITS,
        *,
        factor: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Throttle calls as AWS does past its rate limits: one token bucket per Region, service and bucket of
        `limits` (service -> action -> RateLimit, ``ratelimits.READS``/``WRITES`` for the actions not listed),
        shared by every caller, full from now. `factor` multiplies every burst and sustained rate (0.1: buckets a
        tenth the size, refilled a tenth as fast), so a small world can reach them. A call past its bucket is
        answered ThrottlingException / "Rate exceeded" (HTTP 400) and recorded as throttled. Replaces the
        buckets of an earlier call; ``unlimit_rates`` (or ``clear_faults``) ends it."""
        limiter = RateLimiter(limits, factor=factor, clock=clock)
        with self.lock:
            self._rates = limiter

    def unlimit_rates(self) -> None:
        with self.lock:
            self._rates = None

    def clear_faults(self) -> None:
        """Drop every pending plan and rate limit, and renew credentials."""
        with self.lock:
            self._plans.clear()
            self._each.clear()
            self._expired = False
            self._rates = None

    # --- ground truth ----------------------------------------------------------------------
    def fact(self, kind: str, subject: str, detail: str = "") -> None:
        with self.lock:
            self.facts.append(Fact(time.time(), kind, subject, detail))

    def facts_of(self, kind: str | None = None, subject: str | None = None) -> list[Fact]:
        with self.lock:
            return [
                f for f in self.facts if (kind is None or f.kind == kind) and (subject is None or f.subject == subject)
            ]
