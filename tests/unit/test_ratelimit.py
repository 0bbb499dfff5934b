"""The run's rate budget: a token bucket that waits rather than spends past its rate, and backs off when AWS
throttles anyway (fake clock and sleep: nothing waits for real)."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.awsrequest

from ecs_ship import ratelimit
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


def test_throttling_halves_the_rate_once_a_second_down_to_the_floor_and_success_earns_it_back() -> None:
    b, t = budget(rate=4.0, burst=4.0)
    b.on_throttled()
    assert b.rate == 2.0 and b.tokens <= 0
    b.on_throttled()  # the same burst's other answers: one signal
    assert b.rate == 2.0
    for _ in range(5):
        t.now += 1.0
        b.on_throttled()
    assert b.rate == b.floor == 1.0
    assert b.throttled == 7
    b.on_success()
    assert b.rate == 1.0  # earned back in time, not per request
    t.now += ratelimit.RECOVERY / 2
    b.on_success()
    assert b.rate == 3.0  # half the recovery time: the floor plus half the nominal rate
    t.now += ratelimit.RECOVERY
    b.on_success()
    assert b.rate == 4.0  # never above what it was made with
    b.take()  # the emptied bucket refills at the current rate before the next request goes
    assert t.slept and t.slept[0] > 0


def test_one_budget_per_region_paces_every_api_of_the_run_and_counts_each() -> None:
    budgets = Budgets(rate=1.0, burst=1.0)
    t = Time()
    kw: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
    ecs, elbv2 = boto3.client("ecs", **kw), boto3.client("elbv2", **kw)
    shared = budgets.get("us-east-1")
    assert budgets.get("us-east-1") is shared and budgets.get("eu-west-1") is not shared
    shared.clock, shared.sleep = t.clock, t.sleep
    sent: list[str] = []
    for client in (ecs, elbv2):
        budgets.attach("us-east-1", client)

        # Registered after the budget's handler: answers in place of the network.
        def answer(request: Any, **_: Any) -> Any:
            sent.append(request.url)
            throttled = len(sent) == 2
            body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}' if throttled else b"{}"
            return botocore.awsrequest.AWSResponse(request.url, 400 if throttled else 200, {}, _Raw(body))

        client.meta.events.register("before-send", answer)
    ecs.list_clusters()
    ecs.list_clusters()  # throttled once, retried by botocore: the retry waits for a token too
    elbv2.meta.events.unregister("before-send", answer)
    elbv2.meta.events.register("before-send", lambda request, **_: _ok(request))
    elbv2.describe_load_balancers()
    assert len(sent) == 3
    assert shared.throttled == 1
    assert t.now >= 2.0  # four requests through one bucket of one a second (and half that once throttled)
    usage = budgets.usage()
    assert usage["ecs"][:2] == (3, 1) and usage["elasticloadbalancing"][:2] == (1, 0)
    assert usage["ecs"][2] > 0


def test_the_pre_flight_checks_reads_take_tokens_from_the_same_budget() -> None:
    """IAM and the other APIs the checks read are calls of the run too: they count against its rate."""
    budgets = Budgets(rate=1.0, burst=1.0)
    t = Time()
    shared = budgets.get("us-east-1")
    shared.clock, shared.sleep = t.clock, t.sleep
    kw: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
    iam = budgets.attach("us-east-1", boto3.client("iam", **kw))
    iam.meta.events.register(
        "before-send", lambda request, **_: botocore.awsrequest.AWSResponse(request.url, 200, {}, _Raw(_ROLES))
    )
    iam.list_roles()
    iam.list_roles()
    assert t.now >= 1.0  # the second waited for the budget
    assert budgets.usage()["iam"][0] == 2


_ROLES = b"<ListRolesResponse><ListRolesResult><Roles/></ListRolesResult></ListRolesResponse>"


def _ok(request: Any) -> Any:
    body = b"<DescribeLoadBalancersResponse><DescribeLoadBalancersResult/></DescribeLoadBalancersResponse>"
    return botocore.awsrequest.AWSResponse(request.url, 200, {}, _Raw(body))


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

    class Spent(Budgets):
        def __init__(self) -> None:
            super().__init__()
            self.now: dict[str, tuple[int, int, float]] = {"ecs": (3, 0, 0.0)}

        def usage(self) -> dict[str, tuple[int, int, float]]:
            return dict(self.now)

    budgets = Spent()
    monkeypatch.setattr(ratelimit, "SHARED", budgets)
    before = budgets.usage()
    budgets.now = {"ecs": (10, 2, 0.0), "elasticloadbalancing": (4, 0, 1.5)}
    stream = io.StringIO()
    api_usage(Context(args=argparse.Namespace(), out=Reporter(stream=stream, environ={})), before)
    assert "AWS API requests: ecs 7, elasticloadbalancing 4; throttled 2; 1.5s spent within" in stream.getvalue()


def test_background_requests_leave_the_reserve_to_the_others() -> None:
    b, t = budget(rate=2.0, burst=6.0)
    for _ in range(4):
        assert b.take(reserve=1.0) == 0.0  # six tokens: a second's worth (two) stays, four may go
    assert b.take(reserve=1.0) == 0.5 and t.now == 0.5  # the fifth waits for a token beyond the reserve
    assert b.take() == 0.0 and b.take() == 0.0  # a foreground request spends the reserve at once
    assert b.take() == 0.5


def test_the_reserve_is_a_second_of_the_current_rate_so_a_throttled_watch_still_polls_every_few_seconds() -> None:
    b, t = budget(rate=8.0, burst=20.0)
    for _ in range(3):
        b.on_throttled()
        t.now += 1.0  # one halving a second: 8 -> 4 -> 2 -> 1
    assert b.rate == 1.0 and b.tokens <= 0.0
    start = t.now
    b.take(reserve=1.0)
    # Two tokens at one a second: one held back for the others, one to send. Eight tokens' reserve would be nine.
    assert t.now - start <= 2.0 + 1e-9


def test_the_reserve_never_holds_back_the_whole_bucket() -> None:
    b, _ = budget(rate=8.0, burst=4.0)
    assert b.take(reserve=1.0) == 0.0  # a second's worth is eight, more than the bucket: the last token is the poll's


def test_a_watch_poll_is_a_background_request_only_while_it_polls() -> None:
    assert not ratelimit.in_background()
    with ratelimit.background():
        assert ratelimit.in_background()
        with ratelimit.background():
            pass
        assert ratelimit.in_background()
    assert not ratelimit.in_background()


def test_polls_leave_the_reserve_only_while_a_service_of_the_run_has_not_started_its_deployment() -> None:
    budgets = Budgets(rate=2.0, burst=4.0)
    t = Time()
    shared = budgets.get("us-east-1")
    shared.clock, shared.sleep = t.clock, t.sleep
    kw: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
    elbv2 = budgets.attach("us-east-1", boto3.client("elbv2", **kw))
    elbv2.meta.events.register("before-send", lambda request, **_: _ok(request))

    def poll() -> float:
        start = t.now
        with ratelimit.background():
            elbv2.describe_load_balancers()
        return t.now - start

    budgets.starting(["web", "worker"])
    budgets.started("web")  # web watches; worker is still preparing: its writes keep their second of tokens
    assert poll() == 0.0  # four tokens: two may go to polls
    assert poll() == 0.0
    assert poll() == 0.5  # the third waits for a token beyond the reserve (two at two a second)
    budgets.started("worker")  # every service watches: nothing is held back for anyone
    assert poll() == 0.0 and poll() == 0.0
