"""One rate budget per Region for every AWS call of a run, shared by all the services it deploys.

ECS and ELBv2 throttle per account and Region with token buckets shared by every pipeline, console and
controller of the account: a run that spends the account's burst on its own polls gets other teams (and its
own writes) throttled. So every HTTP request the run's clients send first takes a token from the run's bucket
for its Region: a sustained rate well under the account's, a burst for the reads that start a deploy. When AWS
answers ThrottlingException anyway (others are spending the bucket too), the budget halves its rate and then,
while requests succeed, earns it back linearly over ``RECOVERY`` seconds (multiplicative decrease, additive
increase in time, as TCP per round trip and botocore's adaptive retry mode do), so parallel deploys back off
together rather than retrying into the limit. Earned per second, not per request: at 1 request a second a
per-request increase took twenty seconds to come back, the watch polling slowly all that while.
botocore's own retries still retry the throttled request; the budget only paces what is sent.

A watch's polls are the run's background: twenty services in their health checks would take every token as it
comes, and the preparations and writes of the services still starting would queue behind them. So while some
service of the run has not started its deployment (``starting``), requests made in ``background()`` leave the
last ``RESERVE`` seconds of tokens (at the budget's current rate) to the others. Once every service watches,
there is no one to leave them to: a reserve then only delays the polls, and with them the news they bring.
The reserve is counted in seconds, not tokens: after AWS throttled and the rate halved to 1 a second, a reserve
of 8 tokens would hold every poll back 9 s, and the watch would see its targets turn healthy that late.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

# Error codes with which AWS APIs say "slow down" (botocore's standard retry mode knows the same set).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)


# Seconds without a throttling answer in which a halved rate climbs back to the budget's nominal one.
RECOVERY = 10.0


@dataclass
class RateBudget:
    """A token bucket: `rate` tokens a second up to `burst`; `take()` waits for one."""

    rate: float
    burst: float
    floor: float = 1.0  # never slower than this many requests a second, however throttled
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    nominal: float = field(init=False)
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)
    decreased: float | None = field(default=None, init=False)  # when the rate was last halved
    low: float = field(default=0.0, init=False)  # the rate it was halved to then
    throttled: int = field(default=0, init=False)  # throttling answers seen
    waited: float = field(default=0.0, init=False)  # seconds spent waiting for tokens
    lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.nominal = self.rate
        self.tokens = self.burst

    def _refill(self, now: float) -> None:
        if self.updated is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def delay(self, reserve: float = 0.0) -> float:
        """Take a token if one is there beyond `reserve` seconds of tokens at the current rate, else how long
        until one will be."""
        with self.lock:
            self._refill(self.clock())
            reserve = min(self.burst - 1, reserve * self.rate)
            if self.tokens >= 1 + reserve:
                self.tokens -= 1
                return 0.0
            return (1 + reserve - self.tokens) / self.rate

    def take(self, reserve: float = 0.0) -> float:
        """Wait for a token beyond `reserve` seconds of them; the seconds waited."""
        waited = 0.0
        while (wait := self.delay(reserve)) > 0:
            waited += wait
            self.sleep(wait)
        with self.lock:
            self.waited += waited
        return waited

    def on_throttled(self) -> None:
        with self.lock:
            self.throttled += 1
            now = self.clock()
            # The answers to one burst come back together: they are one signal, not many (TCP halves its window
            # once per round trip for the same reason), so the rate halves at most once a second.
            if self.decreased is not None and now - self.decreased < 1.0:
                return
            self.decreased = now
            self.rate = self.low = max(self.floor, self.rate / 2)
            # What is left in the bucket was sized for the old rate: spending it now would be throttled too.
            self.tokens = min(self.tokens, 0.0)

    def on_success(self) -> None:
        with self.lock:
            if self.rate < self.nominal and self.decreased is not None:
                since = max(0.0, self.clock() - self.decreased)
                self.rate = min(self.nominal, self.low + self.nominal * since / RECOVERY)

    def observe(self, response: Any) -> bool:
        """Learn from one attempt's answer (botocore's needs-retry `response`); True when it was throttled."""
        if response is None:
            return False  # a connection error: not the API's verdict on our rate
        http, parsed = response
        code = (parsed or {}).get("Error", {}).get("Code", "") if isinstance(parsed, dict) else ""
        if code in THROTTLING_CODES or getattr(http, "status_code", 200) == 429:
            self.on_throttled()
            return True
        if getattr(http, "status_code", 500) < 400:
            self.on_success()
        return False


# The run's budget per Region, for every API it calls: the requests a deploy makes move between ECS (placing,
# registering, the tasks) and ELBv2 (target health), with a few reads of IAM, EC2 and CloudWatch Logs by the
# pre-flight checks, so one budget serves them all better than shares would. AWS's buckets are per account and
# Region (ECS's documented example: 50 tokens for the cluster reads; ELBv2's: 40, refilled at 10 a second, for
# its describe calls), and every pipeline of the account draws on them: a run keeps to 10 requests a second on
# average over any ten seconds or more (8 a second, plus a burst of 20 for the reads and writes that start a
# few deploys at once), spread over several actions, which leaves most of each bucket to the others.
DEFAULT_RATE = 8.0
DEFAULT_BURST = 20.0
# What a background request leaves in the bucket: a second's worth of tokens, for what a service starting needs.
RESERVE = 1.0

_where = threading.local()


@contextlib.contextmanager
def background() -> Iterator[None]:
    """The requests this thread sends meanwhile make way for the run's others (see the module's note)."""
    before = getattr(_where, "background", False)
    _where.background = True
    try:
        yield
    finally:
        _where.background = before


def in_background() -> bool:
    return bool(getattr(_where, "background", False))


class Budgets:
    """The run's budgets: one per Region, made on first use, shared by every client of the paced APIs; and what
    each API was sent, for the run's closing line."""

    def __init__(self, rate: float = DEFAULT_RATE, burst: float = DEFAULT_BURST) -> None:
        self.rate = rate
        self.burst = burst
        self._lock = threading.Lock()
        self._budgets: dict[str, RateBudget] = {}
        self._usage: dict[str, list[float]] = {}  # API -> [sent, throttled, seconds waited]
        self._starting: set[str] = set()  # services of the run that have not started their deployment yet

    def starting(self, services: Iterable[str]) -> None:
        """These services will make their writes after other services' watches have begun polling."""
        with self._lock:
            self._starting |= set(services)

    def started(self, service: str) -> None:
        """The service's deployment began (or its run ended): it needs no reserve any more."""
        with self._lock:
            self._starting.discard(service)

    def _reserve(self) -> float:
        with self._lock:
            return RESERVE if self._starting else 0.0

    def get(self, region: str) -> RateBudget:
        with self._lock:
            if region not in self._budgets:
                self._budgets[region] = RateBudget(self.rate, self.burst)
            return self._budgets[region]

    def attach(self, region: str, client: Any) -> Any:
        """Pace every HTTP request of `client` (retries included: AWS counts them too)."""
        api = str(client.meta.service_model.endpoint_prefix)
        budget = self.get(region)
        with self._lock:
            usage = self._usage.setdefault(api, [0, 0, 0.0])

        def before_send(**_: Any) -> None:
            waited = budget.take(self._reserve() if in_background() else 0.0)
            with self._lock:
                usage[0] += 1
                usage[2] += waited

        def after_attempt(response: Any = None, **_: Any) -> None:
            if budget.observe(response):
                with self._lock:
                    usage[1] += 1

        client.meta.events.register("before-send", before_send)
        client.meta.events.register("needs-retry", after_attempt)
        return client

    def usage(self) -> dict[str, tuple[int, int, float]]:
        """API -> (requests sent, throttling answers, seconds waited for the budget), over every Region."""
        with self._lock:
            return {api: (int(u[0]), int(u[1]), float(u[2])) for api, u in self._usage.items()}


# One run is one process: every client it makes shares these.
SHARED = Budgets()
