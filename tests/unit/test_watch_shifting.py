"""Blue/green, linear and canary deployments: green tasks judged in the target group ECS registered them in,
serving only once production traffic moved, stable when ECS says SUCCESSFUL, and a PAUSE hook that is
neither a failure nor a timeout."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ecs_ship.watch import (
    Goal,
    HookState,
    LoadBalancerBinding,
    ServiceDeploymentState,
    Watcher,
    assess,
    bindings_of,
    parse_service_deployment,
    strategy_of,
)
from tests.unit.test_watch import NEW, OLD, TG, dep, snap, target, task

BLUE_TG = TG
GREEN_TG = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-green/fed"
SD = "arn:aws:ecs:us-east-1:1:service-deployment/c/s/bg1"
PAIR = LoadBalancerBinding(BLUE_TG, "web", 8080, alternate=GREEN_TG)
BG = Goal(NEW, "serving", (PAIR,), service_deployment_arn=SD, strategy="BLUE_GREEN")
BOTH = (dep(running=1), dep(OLD, "ACTIVE", 1, "COMPLETED"))


def at_stage(stage: str | None, status: str = "IN_PROGRESS", green: str = "healthy", **kw: Any) -> Any:
    """Green task 10.0.0.1 in the alternate group in state `green`; blue 10.0.0.9 healthy in production."""
    base = snap(
        deployments=BOTH,
        tasks=(task(),),
        targets=(target(green, tg=GREEN_TG), target("healthy", ip="10.0.0.9", tg=BLUE_TG)),
    )
    return replace(base, service_deployment=ServiceDeploymentState(SD, status, lifecycle_stage=stage, **kw))


def test_the_service_names_both_groups_of_a_pair_and_its_strategy() -> None:
    service = {
        "loadBalancers": [
            {
                "targetGroupArn": BLUE_TG,
                "containerName": "web",
                "containerPort": 8080,
                "advancedConfiguration": {"alternateTargetGroupArn": GREEN_TG, "productionListenerRule": "r"},
            }
        ],
        "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5},
    }
    assert bindings_of(service) == (PAIR,)
    assert strategy_of(service) == "BLUE_GREEN"
    assert strategy_of({"deploymentConfiguration": {}}) == strategy_of({}) == "ROLLING"
    assert replace(BG, load_balancers=(PAIR,)).target_groups == [BLUE_TG, GREEN_TG]


@pytest.mark.parametrize(
    ("stage", "kind"),
    [
        ("SCALE_UP", "waiting"),
        ("POST_SCALE_UP", "waiting"),
        ("TEST_TRAFFIC_SHIFT", "waiting"),
        ("PRODUCTION_TRAFFIC_SHIFT", "waiting"),  # under way: production is not all green yet
        ("POST_PRODUCTION_TRAFFIC_SHIFT", "serving"),
        ("BAKE_TIME", "serving"),
        ("CLEAN_UP", "serving"),
    ],
)
def test_healthy_green_serves_only_once_production_traffic_moved(stage: str, kind: str) -> None:
    assert assess(at_stage(stage), BG).kind == kind


def test_green_is_found_in_whichever_group_of_the_pair_ecs_registered_it_in() -> None:
    """The groups swap roles from one deployment to the next: green may be in the service's targetGroupArn."""
    swapped = replace(at_stage("BAKE_TIME"), targets=(target("healthy", tg=BLUE_TG),))
    assert assess(swapped, BG).kind == "serving"
    assert assess(at_stage("BAKE_TIME", green="initial"), BG).kind == "waiting"


def test_unhealthy_green_fails_before_any_traffic_moves() -> None:
    verdict = assess(at_stage("POST_SCALE_UP", green="unhealthy"), BG)
    assert verdict.kind == "failed" and "web-green" in verdict.reason


def test_successful_is_stable_and_a_rollback_by_ecs_is_a_failure() -> None:
    assert assess(at_stage("CLEAN_UP", "SUCCESSFUL"), BG).kind == "stable"
    rolled = assess(at_stage("BAKE_TIME", "ROLLBACK_IN_PROGRESS", rollback_reason="alarm"), BG)
    assert rolled.kind == "failed" and rolled.ecs_rolling_back


def test_rolling_services_are_judged_as_before() -> None:
    """A pair with the ROLLING strategy (no shift) serves as soon as its tasks are healthy."""
    assert assess(at_stage("SCALE_UP"), replace(BG, strategy="ROLLING")).kind == "serving"


def test_without_the_service_deployment_only_blue_gone_counts() -> None:
    no_sd = replace(at_stage("BAKE_TIME"), service_deployment=None)
    assert assess(no_sd, BG).kind == "waiting"
    done = replace(no_sd, deployments=(dep(running=1, rollout="COMPLETED"),))
    assert assess(done, BG).kind == "stable"


HOOK = {"hookId": "h-123", "targetType": "PAUSE", "status": "AWAITING_ACTION", "timeoutAction": "ROLLBACK"}


def test_a_pause_hook_is_read_from_the_service_deployment() -> None:
    sd = parse_service_deployment(
        {"serviceDeploymentArn": SD, "status": "IN_PROGRESS", "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT"}
        | {"lifecycleHookDetails": [HOOK, {**HOOK, "hookId": "h-0", "status": "SUCCEEDED"}]}
    )
    assert sd.paused_at == HookState("h-123", "PAUSE", "AWAITING_ACTION", None, "ROLLBACK")
    assert replace(sd, hooks=sd.hooks[1:]).paused_at is None


@pytest.mark.parametrize("stage", ["PRE_SCALE_UP", "POST_TEST_TRAFFIC_SHIFT"])
def test_a_paused_deployment_is_paused_whatever_its_tasks(stage: str) -> None:
    """Before green even starts (no task yet) or with green healthy: paused names the stage and the hook."""
    hooks = (HookState("h-123", "PAUSE", "AWAITING_ACTION", None, "ROLLBACK"),)
    held = at_stage(stage, hooks=hooks)
    if stage == "PRE_SCALE_UP":
        held = replace(held, tasks=(), targets=())
    verdict = assess(held, BG)
    assert verdict.kind == "paused"
    assert verdict.reason == (
        f"service deployment bg1 is paused at {stage} by hook h-123; at its timeout ECS will rollback"
    )


def test_the_watcher_stops_at_a_pause_instead_of_waiting_for_its_timeout() -> None:
    hooks = (HookState("h-123", "PAUSE", "AWAITING_ACTION"),)
    polls = iter([at_stage("SCALE_UP", green="initial"), at_stage("POST_TEST_TRAFFIC_SHIFT", hooks=hooks)])
    clock = iter(float(n) for n in range(100))

    class Scripted:
        def snapshot(self, goal: Goal) -> Any:
            return next(polls)

        def close(self) -> None:
            pass

    said: list[str] = []
    watcher = Watcher(
        reader=Scripted(),  # type: ignore[arg-type]
        goal=BG,
        timeout=600,
        interval=2.0,
        say=said.append,
        clock=lambda: next(clock),
        sleep=lambda _: None,
        jitter=lambda: 0.5,
    )
    outcome = watcher.run()
    assert outcome.verdict.kind == "paused" and outcome.diagnosis == []
    assert any("POST_TEST_TRAFFIC_SHIFT" in line for line in said)  # the stage was told as it moved


ECS_BACK = replace(BG, ecs_rollback=True)


def test_a_rollback_asked_of_ecs_waits_on_the_service_deployment_not_on_the_failed_deployment() -> None:
    """`continue --rollback` watches the held deployment, which ECS marks FAILED as it rolls back: that is the
    rollback under way, not a failure of it; ROLLBACK_SUCCESSFUL ends it well, ROLLBACK_FAILED badly."""
    rolling_back = ECS_BACK
    failed_ours = replace(
        at_stage("POST_TEST_TRAFFIC_SHIFT", "ROLLBACK_IN_PROGRESS"),
        deployments=(dep(running=0, rollout="FAILED"), dep(OLD, "ACTIVE", 1, "COMPLETED")),
    )
    assert assess(failed_ours, rolling_back).kind == "waiting"
    assert assess(replace(failed_ours, deployments=BOTH[1:]), rolling_back).kind == "waiting"  # gone
    done = replace(failed_ours, service_deployment=ServiceDeploymentState(SD, "ROLLBACK_SUCCESSFUL"))
    assert assess(done, rolling_back).kind == "stable"
    bad = replace(failed_ours, service_deployment=ServiceDeploymentState(SD, "ROLLBACK_FAILED"))
    assert assess(bad, rolling_back).kind == "failed"
    # Watching the rollback's own deployment (a deploy's rollback): its tasks are judged as any deployment's.
    assert assess(at_stage("SCALE_UP", "ROLLBACK_IN_PROGRESS", green="unhealthy"), rolling_back).kind == "failed"
