"""The scenarios: which image each rollout ships, what truth each tool is measured against, what the world is like,
and what the sandbox must offer for it to run at all."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tests.sandbox.bootstrap import HealthCheck
from tests.sandbox.ledger import Ledger
from tests.sandbox.simulator import SimConfig

from .tools import ECS_SHIP, TOOLS
from .truth import DEPLOYMENT_COMPLETED, NEW_TARGET_HEALTHY, NEW_TARGET_UNHEALTHY, NEW_TASK_STOPPED

GOOD, BAD, CRASH = "good", "bad", "crash"
# ECS's and the ALB's defaults: 30 s between checks, 5 in a row to be healthy, 300 s of draining.
AWS_DEFAULT_HEALTH = HealthCheck(
    interval=30, timeout=5, healthy_threshold=5, unhealthy_threshold=2, deregistration_delay=300
)
TIME_SCALE = 10.0  # AWS seconds per real second for the AWS-timings scenarios
# The several-service AWS-timings runs go slower: the run's own pacing (its writes, spread by the rate budget)
# takes real seconds, which a scaled clock counts as that many times more AWS seconds. At 10x, 7 s of staggered
# UpdateService calls weighed as 70 s against the deploy; at 2.5x as 17.5 s, nearer what they weigh on AWS.
AWS_PACE_SCALE = 2.5
PEERS_UP_TO = 4  # several-service runs with more services than this run ecs-ship only unless --peers-at-20


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    image: str  # GOOD | BAD | CRASH
    truth: str  # what ecs-ship (wait.until: serving) is measured against
    peer_truth: str  # what tools that wait for a stable service are measured against
    failure: bool = False
    services: int = 1
    clusters: int = 1
    multi: bool = False  # a several-service scenario: ecs-ship deploys them with a `services:` spec
    health: HealthCheck = field(default_factory=HealthCheck)
    time_scale: float | None = None  # needs SimConfig.time_scale
    throttled: bool = False  # needs Ledger.limit_rates
    cap_factor: float = 1.0  # AWS timings take longer in real seconds too
    single: str = ""  # the 1-service scenario its wall time is compared with
    peers: bool = True  # False: ecs-ship alone (the peers are measured on these timings elsewhere)

    def tools(self, peers_at_20: bool) -> tuple[str, ...]:
        if not self.peers or (self.services > PEERS_UP_TO and not peers_at_20):
            return (ECS_SHIP,)
        return TOOLS

    @property
    def scale(self) -> float:
        return self.time_scale or 1.0


def _multi(name: str, services: int, clusters: int, throttled: bool, aws_timings: bool = False) -> Scenario:
    where = "one cluster" if clusters == 1 else f"{clusters} clusters"
    extra = (", AWS-like rate limits" if throttled else "") + (
        ", AWS default timings, scaled clock" if aws_timings else ""
    )
    # With AWS's timings a deploy lasts minutes: what a run's fixed reads and writes cost is weighed against that,
    # not the sandbox's seconds. It is compared with one service under the same timings and clock.
    timings: dict[str, Any] = (
        {
            "health": AWS_DEFAULT_HEALTH,
            "time_scale": AWS_PACE_SCALE,
            "cap_factor": 2.0 * TIME_SCALE / AWS_PACE_SCALE,
            "single": "throttled-aws-timings-1svc",
            # The peers wait for stable, 300 s of draining: minutes a run at this clock. `aws-timings` has them.
            "peers": False,
        }
        if aws_timings
        else {"single": "throttled-1svc" if throttled else "1svc"}
    )
    return Scenario(
        name=name,
        what=f"{services} service(s) in {where}, one ecs-ship run{extra}",
        image=GOOD,
        truth=NEW_TARGET_HEALTHY,
        peer_truth=DEPLOYMENT_COMPLETED,
        services=services,
        clusters=clusters,
        multi=True,
        throttled=throttled,
        **timings,
    )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("healthy", "new revision healthy", GOOD, NEW_TARGET_HEALTHY, DEPLOYMENT_COMPLETED),
    Scenario(
        "broken-health",
        "/health answers 500, no circuit breaker",
        BAD,
        NEW_TARGET_UNHEALTHY,
        NEW_TARGET_UNHEALTHY,
        failure=True,
    ),
    Scenario(
        "crash-at-start",
        "the container exits at start, no circuit breaker",
        CRASH,
        NEW_TASK_STOPPED,
        NEW_TASK_STOPPED,
        failure=True,
    ),
    Scenario(
        "aws-timings",
        "healthy, AWS default health check and draining timings under a scaled clock",
        GOOD,
        NEW_TARGET_HEALTHY,
        DEPLOYMENT_COMPLETED,
        health=AWS_DEFAULT_HEALTH,
        time_scale=TIME_SCALE,
        cap_factor=2.0,
    ),
    Scenario(
        "aws-timings-broken",
        "/health answers 500, AWS default timings under a scaled clock",
        BAD,
        NEW_TARGET_UNHEALTHY,
        NEW_TARGET_UNHEALTHY,
        failure=True,
        health=AWS_DEFAULT_HEALTH,
        time_scale=TIME_SCALE,
        cap_factor=2.0,
    ),
    _multi("1svc", 1, 1, throttled=False),
    _multi("4svc", 4, 1, throttled=False),
    _multi("20svc", 20, 1, throttled=False),
    _multi("20svc-4clusters", 20, 4, throttled=False),
    _multi("throttled-1svc", 1, 1, throttled=True),
    _multi("throttled-4svc", 4, 1, throttled=True),
    _multi("throttled-20svc", 20, 1, throttled=True),
    _multi("throttled-20svc-4clusters", 20, 4, throttled=True),
    _multi("throttled-aws-timings-1svc", 1, 1, throttled=True, aws_timings=True),
    _multi("throttled-aws-timings-20svc", 20, 1, throttled=True, aws_timings=True),
    _multi("throttled-aws-timings-20svc-4clusters", 20, 4, throttled=True, aws_timings=True),
)
BY_NAME = {s.name: s for s in SCENARIOS}
# Scenario groups accepted by --scenarios next to single names.
GROUPS = {
    "single": ("healthy", "broken-health", "crash-at-start"),
    "aws-default": ("aws-timings", "aws-timings-broken"),
    "multi": ("1svc", "4svc", "20svc", "20svc-4clusters"),
    "throttled": (
        "throttled-1svc",
        "throttled-4svc",
        "throttled-20svc",
        "throttled-20svc-4clusters",
        "throttled-aws-timings-1svc",
        "throttled-aws-timings-20svc",
        "throttled-aws-timings-20svc-4clusters",
    ),
}


def missing(s: Scenario) -> str | None:
    """Why this sandbox cannot run `s`, or None (an older checkout of tests/sandbox lacks these features)."""
    if s.time_scale is not None and "time_scale" not in {f.name for f in dataclasses.fields(SimConfig)}:
        return "the sandbox has no scaled clock yet (SimConfig.time_scale)"
    if s.throttled and not hasattr(Ledger, "limit_rates"):
        return "the sandbox has no AWS-like rate limits yet (Ledger.limit_rates)"
    return None


def select(names: list[str]) -> list[Scenario]:
    wanted: list[str] = []
    for name in names:
        for one in GROUPS.get(name, (name,)):
            if one not in BY_NAME:
                known = ", ".join([*GROUPS, *BY_NAME])
                raise ValueError(f"unknown scenario {one!r}: one of {known}")
            if one not in wanted:
                wanted.append(one)
    return [BY_NAME[n] for n in wanted]
