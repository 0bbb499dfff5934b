"""The spec's `deployment:` turned into the UpdateService deploymentConfiguration: checked against the service
before any write, merged over what the service has, and the traffic steps `plan` prints."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ecs_ship import deploy, strategy
from ecs_ship.errors import InputError, SpecError
from ecs_ship.spec import DeploymentSpec, PauseSpec
from tests.unit.test_pipeline import svc
from tests.unit.test_service_deployments import stubbed

__all__ = ["stubbed"]  # the fixture, used by name

PAIRED = {
    "targetGroupArn": "tg/blue",
    "containerName": "web",
    "containerPort": 8080,
    "advancedConfiguration": {
        "alternateTargetGroupArn": "tg/green",
        "productionListenerRule": "rule/prod",
        "roleArn": "role/ecs",
    },
}
BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}, "maximumPercent": 200}


def service(strategy_name: str | None = None, paired: bool = True, **config: Any) -> dict[str, Any]:
    cfg = {**BREAKER, **config} | ({"strategy": strategy_name} if strategy_name else {})
    lb = PAIRED if paired else {k: v for k, v in PAIRED.items() if k != "advancedConfiguration"}
    return {"loadBalancers": [lb], "deploymentConfiguration": cfg}


def asked(**kw: Any) -> Any:
    return replace(svc("hello"), deployment=DeploymentSpec(**kw))


def test_an_empty_deployment_changes_nothing() -> None:
    assert strategy.configuration(svc("hello"), service("BLUE_GREEN", bakeTimeInMinutes=5)) is None


def test_the_spec_is_merged_over_the_services_settings() -> None:
    got = strategy.configuration(asked(strategy="BLUE_GREEN", bake_time=3), service())
    assert got == {**BREAKER, "strategy": "BLUE_GREEN", "bakeTimeInMinutes": 3}


def test_linear_and_canary_settings_go_to_their_own_structures() -> None:
    linear = strategy.configuration(
        asked(strategy="LINEAR", step_percent=25, step_bake_time=1, bake_time=0),
        service("LINEAR", linearConfiguration={"stepPercent": 10.0, "stepBakeTimeInMinutes": 6}),
    )
    assert linear is not None
    assert linear["linearConfiguration"] == {"stepPercent": 25, "stepBakeTimeInMinutes": 1}
    canary = strategy.configuration(asked(strategy="CANARY", canary_percent=10), service())
    assert canary is not None and canary["canaryConfiguration"] == {"canaryPercent": 10}


def test_asking_for_what_the_service_has_is_no_change() -> None:
    assert strategy.configuration(asked(bake_time=5), service("BLUE_GREEN", bakeTimeInMinutes=5)) is None


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"canary_percent": 10.0}, "canary_percent"),
        ({"strategy": "LINEAR", "canary_bake_time": 3}, "canary_bake_time"),
        ({"strategy": "CANARY", "step_percent": 20.0}, "step_percent"),
        ({"bake_time": 5}, "bake_time"),
        ({"pause": PauseSpec(("POST_SCALE_UP",), None, None)}, "pause"),
    ],
)
def test_a_key_for_another_strategy_is_a_spec_error(kw: dict[str, Any], key: str) -> None:
    """The service rolls (no strategy set): canary, step, bake and pause settings would be ignored by ECS."""
    with pytest.raises(SpecError) as caught:
        strategy.configuration(asked(**kw), service())
    assert caught.value.key_path == f"deployment.{key}" and caught.value.exit_code == 2


def test_traffic_shifting_needs_the_alternate_group_and_the_listener_rule() -> None:
    with pytest.raises(InputError) as caught:
        strategy.configuration(asked(strategy="CANARY"), service(paired=False))
    assert "loadBalancers[0] has no alternateTargetGroupArn and no productionListenerRule" in str(caught.value)
    assert caught.value.exit_code == 2


def test_blue_green_needs_a_bake_time() -> None:
    with pytest.raises(SpecError) as caught:
        strategy.configuration(asked(strategy="BLUE_GREEN"), service())
    assert caught.value.key_path == "deployment.bake_time"
    assert strategy.configuration(asked(strategy="BLUE_GREEN"), service(bakeTimeInMinutes=2)) is not None


def test_a_pause_replaces_the_services_pause_hooks_and_keeps_its_lambda_hooks() -> None:
    lam = {"targetType": "AWS_LAMBDA", "hookTargetArn": "fn", "lifecycleStages": ["POST_SCALE_UP"]}
    old = {"targetType": "PAUSE", "lifecycleStages": ["PRE_SCALE_UP"]}
    got = strategy.configuration(
        asked(pause=PauseSpec(("POST_TEST_TRAFFIC_SHIFT",), 30, "CONTINUE")),
        service("BLUE_GREEN", bakeTimeInMinutes=1, lifecycleHooks=[lam, old]),
    )
    assert got is not None and got["lifecycleHooks"] == [
        lam,
        {
            "targetType": "PAUSE",
            "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
            "timeoutConfiguration": {"timeoutInMinutes": 30, "action": "CONTINUE"},
        },
    ]


def test_traffic_steps() -> None:
    assert strategy.traffic_steps({"strategy": "LINEAR", "bakeTimeInMinutes": 2, "linearConfiguration": {
        "stepPercent": 30.0, "stepBakeTimeInMinutes": 4}})[1] == (
        "production traffic: 30% at +0 min, 60% at +4 min, 90% at +8 min, 100% at +12 min; the old revision is "
        "kept 2 min more, then stopped"
    )  # fmt: skip
    assert strategy.traffic_steps({"strategy": "CANARY"})[1] == "production traffic: 5% at +0 min, 100% at +10 min"
    blue_green = strategy.traffic_steps(
        {
            "strategy": "BLUE_GREEN",
            "bakeTimeInMinutes": 0,
            "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}],
        }
    )
    assert blue_green[1:] == [
        "all production traffic moves to them at once; the old revision is kept 0 min more, then stopped",
        "pauses at POST_TEST_TRAFFIC_SHIFT until `ecs-ship continue` (after 1440 min ECS will rollback)",
    ]
    assert strategy.traffic_steps({}) == [
        "ROLLING: old tasks replaced in batches (maximumPercent 200, minimumHealthyPercent 100)"
    ]


def test_the_deploy_sends_the_configuration_with_its_update_service(stubbed: Any) -> None:
    clients, stub = stubbed
    cfg = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1}
    stub.add_response(
        "update_service",
        {"service": {"deployments": [{"id": "ecs-svc/new", "status": "PRIMARY"}]}},
        {"cluster": "c", "service": "s", "taskDefinition": "td:2", "forceNewDeployment": True,
         "deploymentConfiguration": cfg},
    )  # fmt: skip
    assert deploy.start_deployment(clients, "c", "s", "td:2", None, cfg).deployment_id == "ecs-svc/new"
    stub.assert_no_pending_responses()
