"""AWS's API rate limits in the sandbox (ratelimits.py, Ledger.limit_rates): pure, no clock but the one passed in."""

from __future__ import annotations

import pytest

from tests.sandbox.ledger import THROTTLING, Ledger
from tests.sandbox.ratelimits import AWS_RATE_LIMITS, READS, WRITES, RateLimit, RateLimiter, TokenBucket, scaled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_its_burst_through_then_throttles() -> None:
    bucket = TokenBucket.full(RateLimit(3, 1), now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]


def test_the_bucket_refills_at_its_sustained_rate_up_to_its_size() -> None:
    bucket = TokenBucket.full(RateLimit(4, 2), now=0.0)
    for _ in range(4):
        assert bucket.take(0.0)
    assert not bucket.take(0.4)  # 0.8 of a token: not yet
    assert bucket.take(0.5)  # the first whole token
    assert not bucket.take(0.5)
    # A long pause fills it to its size and no further.
    assert sum(bucket.take(100.0) for _ in range(10)) == 4


def test_a_throttled_call_takes_no_token() -> None:
    bucket = TokenBucket.full(RateLimit(1, 1), now=0.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.5)
    assert not bucket.take(0.9)
    assert bucket.take(1.0)  # the refill was not spent on the refused calls


def test_a_clock_that_steps_back_adds_no_tokens() -> None:
    bucket = TokenBucket.full(RateLimit(1, 1), now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)
    assert bucket.take(11.0)


def test_factor_shrinks_burst_and_sustained_rate_alike_but_keeps_one_token() -> None:
    assert scaled(RateLimit(40, 10, "x"), 0.1) == RateLimit(4, 1, "x")
    assert scaled(RateLimit(20, 1), 0.01).capacity == 1.0
    with pytest.raises(ValueError):
        scaled(RateLimit(20, 1), 0)


def test_listed_actions_have_their_own_bucket_unless_they_share_one() -> None:
    clock = Clock()
    limiter = RateLimiter({"ecs": {"DescribeServices": RateLimit(2, 1), "ListTasks": RateLimit(2, 1)}}, clock=clock)
    assert [limiter.admit("us-east-1", "ecs", "DescribeServices", write=False) for _ in range(3)] == [True, True, False]
    assert limiter.admit("us-east-1", "ecs", "ListTasks", write=False)

    shared = RateLimiter(
        {"elasticloadbalancing": {"DescribeTargetHealth": RateLimit(2, 1, READS), READS: RateLimit(2, 1)}}, clock=clock
    )
    assert shared.admit("us-east-1", "elasticloadbalancing", "DescribeTargetHealth", write=False)
    assert shared.admit("us-east-1", "elasticloadbalancing", "DescribeTargetGroups", write=False)
    assert not shared.admit("us-east-1", "elasticloadbalancing", "DescribeTargetHealth", write=False)


def test_unlisted_actions_share_their_category_bucket_and_other_services_are_unlimited() -> None:
    clock = Clock()
    limiter = RateLimiter({"ecs": {READS: RateLimit(1, 1), WRITES: RateLimit(1, 1)}}, clock=clock)
    assert limiter.admit("us-east-1", "ecs", "DescribeClusters", write=False)
    assert not limiter.admit("us-east-1", "ecs", "ListServices", write=False)
    assert limiter.admit("us-east-1", "ecs", "TagResource", write=True)
    assert not limiter.admit("us-east-1", "ecs", "UntagResource", write=True)
    assert all(limiter.admit("us-east-1", "logs", "GetLogEvents", write=False) for _ in range(100))
    assert limiter.limit_of("ecs", "ListServices", write=False) == (READS, RateLimit(1, 1))
    assert limiter.limit_of("iam", "CreateRole", write=True) is None


def test_buckets_are_per_region() -> None:
    limiter = RateLimiter({"ecs": {"DescribeServices": RateLimit(1, 1)}}, clock=Clock())
    assert limiter.admit("us-east-1", "ecs", "DescribeServices", write=False)
    assert not limiter.admit("us-east-1", "ecs", "DescribeServices", write=False)
    assert limiter.admit("eu-west-1", "ecs", "DescribeServices", write=False)


def test_the_table_names_the_actions_a_deploy_tool_polls() -> None:
    ecs, elb = AWS_RATE_LIMITS["ecs"], AWS_RATE_LIMITS["elasticloadbalancing"]
    for action in ("DescribeServices", "ListTasks", "DescribeTasks", "UpdateService", "RegisterTaskDefinition"):
        assert action in ecs
    assert "DescribeServiceDeployments" in ecs and READS in ecs and WRITES in ecs
    # ELB's page: non-mutating actions, one bucket of 40 refilled at 10 a second.
    assert elb["DescribeTargetHealth"] == elb["DescribeTargetGroups"] == RateLimit(40, 10, READS)
    assert elb[READS] == RateLimit(40, 10)
    for table in AWS_RATE_LIMITS.values():
        for limit in table.values():
            assert limit.capacity >= limit.refill > 0


def test_ledger_answers_calls_past_a_bucket_with_rate_exceeded_and_counts_them() -> None:
    clock = Clock()
    ledger = Ledger()
    ledger.limit_rates(factor=0.1, clock=clock)  # ECS DescribeServices 50/20 -> 5/2
    answers = [ledger.record_call("ecs", "DescribeServices", "us-east-1") for _ in range(6)]
    assert answers[:5] == [None] * 5
    error = answers[5]
    assert error is not None and (error.code, error.status, error.message) == (THROTTLING, 400, "Rate exceeded")
    assert [c.throttled for c in ledger.calls_since()] == [False] * 5 + [True]
    clock.now += 0.5  # one token back at 2 a second
    assert ledger.record_call("ecs", "DescribeServices", "us-east-1") is None
    assert ledger.record_call("ecs", "DescribeServices", "us-east-1") is not None


def test_a_fault_plan_answers_first_and_takes_no_token() -> None:
    ledger = Ledger()
    ledger.limit_rates({"ecs": {"UpdateService": RateLimit(1, 1)}}, clock=Clock())
    ledger.fail("UpdateService", 1, "InternalFailure", 500)
    first = ledger.record_call("ecs", "UpdateService", "us-east-1")
    assert first is not None and first.code == "InternalFailure"
    assert ledger.record_call("ecs", "UpdateService", "us-east-1") is None


def test_unlimit_and_clear_faults_end_the_limits() -> None:
    ledger = Ledger()
    ledger.limit_rates({"ecs": {READS: RateLimit(1, 1)}}, clock=Clock())
    assert ledger.record_call("ecs", "ListTasks") is None
    assert ledger.record_call("ecs", "ListTasks") is not None
    ledger.unlimit_rates()
    assert ledger.record_call("ecs", "ListTasks") is None
    ledger.limit_rates({"ecs": {READS: RateLimit(1, 1)}}, clock=Clock())
    ledger.record_call("ecs", "ListTasks")
    ledger.clear_faults()
    assert ledger.record_call("ecs", "ListTasks") is None
