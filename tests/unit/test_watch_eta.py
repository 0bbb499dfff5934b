"""The watch's ETA for `serving`: a new target is expected healthy (threshold - 1/2) x interval after it was first
seen `initial`, by its target group's own schedule."""

from __future__ import annotations

from ecs_ship.watch import Goal, LoadBalancerBinding
from ecs_ship.watch.eta import serving_in, stable_in
from ecs_ship.watch.model import TargetState

TG = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-tg/abc"
GOAL = Goal("ecs-svc/new", "serving", (LoadBalancerBinding(TG, "web", 8080),), health_schedule=((TG, 30, 5),))


def target(state: str, ip: str = "10.0.0.1") -> TargetState:
    return TargetState(TG, ip, 8080, state, None, None)


def test_a_target_first_seen_initial_is_due_after_its_schedule() -> None:
    since = {(TG, "10.0.0.1", 8080): 100.0}
    assert serving_in(GOAL, since, [target("initial")], now=100.0) == 135.0  # AWS's defaults: 30 s x 5
    assert serving_in(GOAL, since, [target("initial")], now=200.0) == 35.0
    assert serving_in(GOAL, since, [target("initial")], now=300.0) == 0.0  # overdue: due now


def test_the_last_target_decides_and_healthy_ones_or_unknown_groups_do_not_count() -> None:
    since = {(TG, "10.0.0.1", 8080): 100.0, (TG, "10.0.0.2", 8080): 130.0}
    both = [target("initial"), target("initial", "10.0.0.2")]
    assert serving_in(GOAL, since, both, now=150.0) == 115.0
    assert serving_in(GOAL, since, [target("healthy"), target("healthy", "10.0.0.2")], now=150.0) is None
    unknown = Goal("ecs-svc/new", "serving", (LoadBalancerBinding(TG, "web", 8080),))
    assert serving_in(unknown, since, both, now=150.0) is None


def test_the_old_targets_are_drained_a_deregistration_delay_after_they_began() -> None:
    goal = Goal("ecs-svc/new", "stable", (LoadBalancerBinding(TG, "web", 8080),), drain_delays=((TG, 300),))
    since = {(TG, "10.0.0.9", 8080): 100.0}
    old = TargetState(TG, "10.0.0.9", 8080, "draining", "Target.DeregistrationInProgress", None)
    assert stable_in(goal, since, [old, target("healthy")], now=160.0) == 240.0
    assert stable_in(goal, since, [target("healthy")], now=160.0) is None  # gone: nothing to wait for
    assert stable_in(Goal("ecs-svc/new", "stable", ()), since, [old], now=160.0) is None  # delay not read
