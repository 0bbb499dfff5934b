"""The run's rate budget: a token bucket that waits rather than spends past its rate, and backs off when AWS
throttles anyway (fake clock and sleep: nothing waits for real)."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.awsrequest

from ecs_ship.ratelimit import Budgets, RateBudget


class Time:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def budget(rate: float = 2.0, burst: float = 3.0) -> tuple[RateBudget, Time]:
    t = Time()
    return RateBudget(rate, burst, clock=t.clock, sleep=t.sleep), t


def test_the_burst_is_spent_at_once_then_requests_wait_for_the_rate() -> None:
    b, t = budget(rate=2.0, burst=3.0)
    for _ in range(3):
        b.take()
    assert t.slept == []
    for _ in range(4):
        b.take()
    assert t.now == 2.0  # four more at two a second
    assert b.waited == 2.0


def test_throttling_halves_the_rate_down_to_the_floor_and_success_earns_it_back() -> None:
    b, t = budget(rate=4.0, burst=4.0)
    b.on_throttled()
    assert b.rate == 2.0 and b.tokens <= 0
    for _ in range(5):
        b.on_throttled()
    assert b.rate == b.floor == 0.5
    assert b.throttled == 6
    for _ in range(200):
        b.on_success()
    assert b.rate == 4.0  # never above what it was made with
    b.take()  # the emptied bucket refills at the current rate before the next request goes
    assert t.slept and t.slept[0] > 0


def test_budgets_are_shared_per_region_and_api_and_pace_real_client_requests() -> None:
    budgets = Budgets({"ecs": (1.0, 1.0)})
    t = Time()
    kw: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
    one, two = boto3.client("ecs", **kw), boto3.client("ecs", **kw)
    shared = budgets.get("us-east-1", "ecs")
    assert shared is not None and budgets.get("us-east-1", "ecs") is shared
    assert budgets.get("eu-west-1", "ecs") is not shared
    assert budgets.get("us-east-1", "sts") is None  # an API without a budget is not paced
    shared.clock, shared.sleep = t.clock, t.sleep
    sent: list[str] = []
    for client in (one, two):
        budgets.attach("us-east-1", client)

        # Registered after the budget's handler: answers in place of the network.
        def answer(request: Any, **_: Any) -> Any:
            sent.append(request.url)
            throttled = len(sent) == 2
            body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}' if throttled else b"{}"
            return botocore.awsrequest.AWSResponse(request.url, 400 if throttled else 200, {}, _Raw(body))

        client.meta.events.register("before-send", answer)
    one.list_clusters()
    two.list_clusters()  # throttled once, retried by botocore: the retry waits for a token too
    assert len(sent) == 3
    assert shared.throttled == 1
    assert t.now >= 1.0


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def test_a_run_says_what_it_spent_of_each_api(monkeypatch: Any) -> None:
    import argparse
    import io

    from ecs_ship import ratelimit
    from ecs_ship.context import Context
    from ecs_ship.gha import Reporter
    from ecs_ship.summary import api_usage

    budgets = Budgets()
    monkeypatch.setattr(ratelimit, "SHARED", budgets)
    ecs = budgets.get("us-east-1", "ecs")
    assert ecs is not None
    ecs.sent = 3
    before = budgets.usage()
    ecs.sent, ecs.throttled = 10, 2
    elb = budgets.get("us-east-1", "elasticloadbalancing")
    assert elb is not None
    elb.sent = 4
    stream = io.StringIO()
    api_usage(Context(args=argparse.Namespace(), out=Reporter(stream=stream, environ={})), before)
    assert "AWS API requests: ecs 7, elasticloadbalancing 4; throttled 2" in stream.getvalue()
