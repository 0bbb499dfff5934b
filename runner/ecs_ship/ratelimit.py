"""One rate budget per AWS API for every call of a run, shared by all the services it deploys.

ECS and ELBv2 throttle per account and Region with token buckets shared by every pipeline, console and
controller of the account: a run that spends the account's burst on its own polls gets other teams (and its
own writes) throttled. So every HTTP request the run's clients send first takes a token from the run's bucket
for that API: a sustained rate well under the account's, a burst for the reads that start a deploy. When AWS
answers ThrottlingException anyway (others are spending the bucket too), the budget halves its rate and then
earns it back a little with each request that succeeds (additive increase, multiplicative decrease, as TCP and
botocore's adaptive retry mode do), so parallel deploys back off together rather than retrying into the limit.
botocore's own retries still retry the throttled request; the budget only paces what is sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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


@dataclass
class RateBudget:
    """A token bucket: `rate` tokens a second up to `burst`; `take()` waits for one."""

    rate: float
    burst: float
    floor: float = 0.5  # never slower than this many requests a second, however throttled
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    nominal: float = field(init=False)
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)
    sent: int = field(default=0, init=False)  # requests let through
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

    def delay(self) -> float:
        """Take a token if one is there (0.0), else how long until one will be."""
        with self.lock:
            self._refill(self.clock())
            if self.tokens >= 1:
                self.tokens -= 1
                self.sent += 1
                return 0.0
            return (1 - self.tokens) / self.rate

    def take(self) -> None:
        while (wait := self.delay()) > 0:
            self.waited += wait
            self.sleep(wait)

    def on_throttled(self) -> None:
        with self.lock:
            self.throttled += 1
            self.rate = max(self.floor, self.rate / 2)
            # What is left in the bucket was sized for the old rate: spending it now would be throttled too.
            self.tokens = min(self.tokens, 0.0)

    def on_success(self) -> None:
        with self.lock:
            if self.rate < self.nominal:
                self.rate = min(self.nominal, self.rate + self.nominal / 20)

    # --- botocore -------------------------------------------------------------------------
    def attach(self, client: Any) -> None:
        """Pace every HTTP request of `client` (retries included: AWS counts them too)."""
        client.meta.events.register("before-send", self._before_send)
        client.meta.events.register("needs-retry", self._after_attempt)

    def _before_send(self, **_: Any) -> None:
        self.take()

    def _after_attempt(self, response: Any = None, **_: Any) -> None:
        if response is None:
            return  # a connection error: not the API's verdict on our rate
        http, parsed = response
        code = (parsed or {}).get("Error", {}).get("Code", "") if isinstance(parsed, dict) else ""
        if code in THROTTLING_CODES or getattr(http, "status_code", 200) == 429:
            self.on_throttled()
        elif getattr(http, "status_code", 500) < 400:
            self.on_success()


# The run's share of each API. ECS's published buckets for the reads a watch makes refill at 20 per second or
# more, per account and Region (see the README); a run keeps to a fraction of that so that parallel pipelines and
# the console still have room. Four of ours at full rate stay under ECS's refill.
DEFAULT_RATES: dict[str, tuple[float, float]] = {
    "ecs": (5.0, 15.0),
    "elasticloadbalancing": (5.0, 10.0),
    "logs": (5.0, 10.0),
    "ecr": (5.0, 10.0),
}


class Budgets:
    """The run's budgets: one per (Region, API), made on first use, shared by every client of that API."""

    def __init__(self, rates: dict[str, tuple[float, float]] | None = None) -> None:
        self.rates = dict(DEFAULT_RATES if rates is None else rates)
        self._lock = threading.Lock()
        self._budgets: dict[tuple[str, str], RateBudget] = {}

    def get(self, region: str, api: str) -> RateBudget | None:
        if api not in self.rates:
            return None
        with self._lock:
            if (region, api) not in self._budgets:
                rate, burst = self.rates[api]
                self._budgets[(region, api)] = RateBudget(rate, burst)
            return self._budgets[(region, api)]

    def attach(self, region: str, client: Any) -> Any:
        budget = self.get(region, client.meta.service_model.endpoint_prefix)
        if budget is not None:
            budget.attach(client)
        return client

    def usage(self) -> dict[str, tuple[int, int, float]]:
        """API -> (requests sent, throttling answers, seconds waited for tokens), over every Region."""
        out: dict[str, tuple[int, int, float]] = {}
        with self._lock:
            for (_, api), b in self._budgets.items():
                sent, throttled, waited = out.get(api, (0, 0, 0.0))
                out[api] = (sent + b.sent, throttled + b.throttled, waited + b.waited)
        return out


# One run is one process: every client it makes shares these.
SHARED = Budgets()
