"""AWS's API rate limits, as token buckets per account and Region (opt-in: ``Ledger.limit_rates``).

ECS and ELB throttle every caller of one account in one Region together, with the token bucket algorithm: a
bucket holds at most ``capacity`` tokens (the burst rate), gains ``refill`` tokens a second (the sustained
rate) and starts full; each request takes a token, and a request that finds none is refused with
``ThrottlingException`` / "Rate exceeded" (HTTP 400). Services calling on the user's behalf have buckets of
their own, so the simulator's own work takes no token here.

Sources (read 2025, through the stored AWS documentation):

* "Request throttling for the Amazon ECS API" (ECS API Reference / Developer Guide): per account and Region,
  token bucket, burst = bucket maximum capacity, sustained = bucket refill rate; its worked example is the
  cluster read actions (``DescribeClusters``) with a bucket of 50 tokens. The page's per-action table could not
  be read in full here, so every other ECS number below is an **assumption**: the example's 50 / 20 for reads,
  and smaller, conservative buckets for writes (registering task definitions lowest, as users report).
* "Request throttling for the ELB API" (Elastic Load Balancing User Guide): ELB API version 2 has its own
  buckets; non-mutating actions (``Describe*``) have a bucket of 40 tokens refilled at 10 a second. The numbers
  for mutating actions are not in what could be read: the ones below are **assumptions**.

Assumption: a listed action has a bucket of its own unless it names a shared one (``RateLimit.bucket``); the
actions a table does not list share their category's bucket (``READS`` or ``WRITES``), as ELB's page describes
its non-mutating actions as drawing from one bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Category defaults in a service's table: the actions not listed, read or write (see ledger.is_write).
READS = "(reads)"
WRITES = "(writes)"


@dataclass(frozen=True)
class RateLimit:
    capacity: float  # burst: the most tokens the bucket holds, and so calls in one second
    refill: float  # sustained: tokens added a second
    bucket: str = ""  # actions naming the same bucket share it; "" gives the action its own


# Service names as they appear in a request's SigV4 credential scope (what the server sees).
AWS_RATE_LIMITS: dict[str, dict[str, RateLimit]] = {
    "ecs": {
        # Documented: the cluster read actions' bucket of 50 (the page's example); refill assumed 20/s.
        "DescribeClusters": RateLimit(50, 20, "cluster-read"),
        "ListClusters": RateLimit(50, 20, "cluster-read"),
        # Assumptions (see the module docstring): reads like the documented one, each action its own bucket.
        "DescribeServices": RateLimit(50, 20),
        "ListServices": RateLimit(50, 20),
        "DescribeTasks": RateLimit(50, 20),
        "ListTasks": RateLimit(50, 20),
        "DescribeTaskDefinition": RateLimit(50, 20),
        "ListServiceDeployments": RateLimit(50, 20),
        "DescribeServiceDeployments": RateLimit(50, 20),
        "DescribeServiceRevisions": RateLimit(50, 20),
        # Assumptions: writes are throttled harder than reads.
        "UpdateService": RateLimit(20, 5),
        "CreateService": RateLimit(20, 5),
        "RunTask": RateLimit(20, 5),
        "StopTask": RateLimit(20, 5),
        "RegisterTaskDefinition": RateLimit(20, 1),
        "DeregisterTaskDefinition": RateLimit(20, 1),
        READS: RateLimit(50, 20),
        WRITES: RateLimit(20, 5),
    },
    "elasticloadbalancing": {
        # Documented: non-mutating actions, bucket 40, refill 10/s, one bucket for all of them.
        "DescribeTargetHealth": RateLimit(40, 10, READS),
        "DescribeTargetGroups": RateLimit(40, 10, READS),
        "DescribeLoadBalancers": RateLimit(40, 10, READS),
        "DescribeListeners": RateLimit(40, 10, READS),
        "DescribeRules": RateLimit(40, 10, READS),
        READS: RateLimit(40, 10),
        # Assumptions: mutating actions, target registration apart from the rest.
        "RegisterTargets": RateLimit(20, 4, "registration"),
        "DeregisterTargets": RateLimit(20, 4, "registration"),
        WRITES: RateLimit(20, 2),
    },
}


@dataclass
class TokenBucket:
    """One bucket: full at first, refilled continuously (a fraction of a token counts toward the next)."""

    capacity: float
    refill: float
    tokens: float
    at: float  # when `tokens` was last brought up to date

    @classmethod
    def full(cls, limit: RateLimit, now: float) -> TokenBucket:
        return cls(limit.capacity, limit.refill, limit.capacity, now)

    def take(self, now: float) -> bool:
        """Take a token if there is one; False means the call is throttled (it takes nothing)."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.at) * self.refill)
        self.at = max(self.at, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def scaled(limit: RateLimit, factor: float) -> RateLimit:
    """`limit` with burst and sustained rate multiplied by `factor` (a small world can then reach them); at
    least one token, or no call could ever pass."""
    if factor <= 0:
        raise ValueError(f"rate limit factor must be positive, not {factor}")
    return RateLimit(max(1.0, limit.capacity * factor), limit.refill * factor, limit.bucket)


class RateLimiter:
    """The buckets of one account: per Region, service and bucket, shared by every caller. Not thread-safe on
    its own (the ledger calls it under its lock)."""

    def __init__(
        self,
        limits: Mapping[str, Mapping[str, RateLimit]] = AWS_RATE_LIMITS,
        *,
        factor: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {svc: {a: scaled(lim, factor) for a, lim in table.items()} for svc, table in limits.items()}
        self.clock = clock
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}

    def limit_of(self, service: str, action: str, *, write: bool) -> tuple[str, RateLimit] | None:
        """The bucket `action` draws from (its name, its limit), or None when the service is not limited."""
        table = self.limits.get(service)
        if table is None:
            return None
        limit = table.get(action)
        if limit is not None:
            return limit.bucket or action, limit
        category = WRITES if write else READS
        limit = table.get(category)
        return (category, limit) if limit is not None else None

    def admit(self, region: str, service: str, action: str, *, write: bool) -> bool:
        """Take a token for one call; False: answer it with throttling."""
        found = self.limit_of(service, action, write=write)
        if found is None:
            return True
        name, limit = found
        now = self.clock()
        key = (region, service, name)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket.full(limit, now)
        return bucket.take(now)
