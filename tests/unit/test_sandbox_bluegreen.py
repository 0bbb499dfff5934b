"""The sandbox's blue/green, linear and canary lifecycle (bluegreen.py): pure, no clock but the one passed in."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from tests.sandbox import bluegreen
from tests.sandbox.service_deployments import ApiError

LB = [
    {
        "targetGroupArn": "tg-blue",
        "containerName": "web",
        "containerPort": 8080,
        "advancedConfiguration": {"alternateTargetGroupArn": "tg-green", "productionListenerRule": "rule-prod"},
    }
]


def _pause(*stages: str, minutes: int = 10, action: str = "ROLLBACK") -> dict[str, Any]:
    return {
        "targetType": "PAUSE",
        "lifecycleStages": list(stages),
        "timeoutConfiguration": {"timeoutInMinutes": minutes, "action": action},
    }


def _shift(conf: dict[str, Any], *, reconcile: bool = False) -> bluegreen.Shift:
    checked = bluegreen.validate(conf, LB)
    return bluegreen.Shift(bluegreen.plan(checked, reconcile=reconcile), checked["lifecycleHooks"], minute=1.0)


def _error(conf: dict[str, Any], lbs: list[dict[str, Any]] = LB) -> str:
    with pytest.raises(ApiError) as err:
        bluegreen.validate(conf, lbs)
    assert err.value.code == "InvalidParameterException"
    return err.value.message


def test_stage_order_of_a_blue_green_deployment() -> None:
    conf = bluegreen.validate({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5}, LB)
    stages = [s.stage for s in bluegreen.plan(conf, reconcile=True)]
    # The API's own order of stages; PRE_PRODUCTION_TRAFFIC_SHIFT is a hook stage the reference places just
    # before the production shift.
    api = botocore.session.get_session().get_service_model("ecs").shape_for("ServiceDeploymentLifecycleStage")
    expected = list(api.enum)
    expected.insert(expected.index("PRODUCTION_TRAFFIC_SHIFT"), "PRE_PRODUCTION_TRAFFIC_SHIFT")
    assert stages == expected
    assert [s.stage for s in bluegreen.plan(conf, reconcile=False)] == expected[1:]


def test_linear_and_canary_steps() -> None:
    linear = bluegreen.validate({"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 30.0}}, LB)
    assert bluegreen.production_steps(linear) == [30.0, 60.0, 90.0, 100.0]
    assert linear["linearConfiguration"]["stepBakeTimeInMinutes"] == 6  # the reference's default
    shifts = [s for s in bluegreen.plan(linear, reconcile=False) if s.stage == "PRODUCTION_TRAFFIC_SHIFT"]
    assert [(s.green_percent, s.hold_minutes) for s in shifts] == [(30.0, 6), (60.0, 6), (90.0, 6), (100.0, 0)]
    first = bluegreen.plan(linear, reconcile=False, blue=False)
    assert [s.green_percent for s in first if s.stage == "PRODUCTION_TRAFFIC_SHIFT"] == [100.0]
    canary = bluegreen.validate({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 12.5}}, LB)
    assert bluegreen.production_steps(canary) == [12.5, 100.0]
    assert bluegreen.weights(12.5) == (875, 125)
    assert bluegreen.weights(0) == (1, 0) and bluegreen.weights(100) == (0, 1)


def test_what_create_service_refuses() -> None:
    assert "bakeTimeInMinutes" in _error({"strategy": "BLUE_GREEN"})
    assert "Lambda" in _error(
        {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1, "lifecycleHooks": [{"lifecycleStages": ["PRE_SCALE_UP"]}]}
    )
    assert "PRODUCTION_TRAFFIC_SHIFT" in _error(
        {"strategy": "CANARY", "lifecycleHooks": [_pause("PRODUCTION_TRAFFIC_SHIFT")]}
    )
    assert "stepPercent" in _error({"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 2.0}})
    assert "canaryPercent" in _error({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 5.05}})
    assert "linearConfiguration" in _error({"strategy": "CANARY", "linearConfiguration": {"stepPercent": 10.0}})
    plain = [{"targetGroupArn": "tg-blue", "containerName": "web", "containerPort": 8080}]
    assert "alternateTargetGroupArn" in _error({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1}, plain)
    assert bluegreen.validate({"maximumPercent": 200}, plain)["strategy"] == "ROLLING"


def test_walk_waits_for_green_bake_and_blue() -> None:
    shift = _shift({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 3})
    shift.tick(0.0, green_ready=False, blue_gone=False)
    assert shift.stage == "SCALE_UP" and shift.scaling and shift.green_percent == 0
    shift.tick(1.0, green_ready=True, blue_gone=False)
    assert shift.stage == "BAKE_TIME" and shift.green_percent == 100 and shift.test_to_green
    shift.tick(3.9, green_ready=True, blue_gone=False)
    assert shift.stage == "BAKE_TIME" and not shift.cleaning
    shift.tick(4.0, green_ready=True, blue_gone=False)
    assert shift.stage == "CLEAN_UP" and shift.cleaning and not shift.done
    shift.tick(4.5, green_ready=True, blue_gone=True)
    assert shift.done


def test_pause_hook_holds_until_continued() -> None:
    shift = _shift({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0, "lifecycleHooks": [_pause("POST_SCALE_UP")]})
    shift.tick(0.0, green_ready=True, blue_gone=False)
    [hook] = shift.details()
    assert shift.stage == "POST_SCALE_UP" and hook["status"] == "AWAITING_ACTION"
    assert hook["timeoutAction"] == "ROLLBACK" and hook["targetType"] == "PAUSE"
    shift.tick(9.0, green_ready=True, blue_gone=False)
    assert shift.stage == "POST_SCALE_UP"
    with pytest.raises(ApiError) as err:
        shift.resolve("no-such-hook", "CONTINUE")
    assert err.value.code == "InvalidParameterException"
    shift.resolve(hook["hookId"], "CONTINUE")
    with pytest.raises(ApiError) as again:
        shift.resolve(hook["hookId"], "CONTINUE")
    assert again.value.code == "ClientException"
    shift.tick(9.5, green_ready=True, blue_gone=False)
    assert shift.stage == "CLEAN_UP" and shift.rollback_reason is None


def test_pause_hook_timeout_takes_its_action() -> None:
    rolls = _shift({"strategy": "CANARY", "lifecycleHooks": [_pause("PRE_SCALE_UP", minutes=2)]})
    rolls.tick(0.0, green_ready=True, blue_gone=False)
    rolls.tick(1.9, green_ready=True, blue_gone=False)
    assert rolls.rollback_reason is None and rolls.stage == "PRE_SCALE_UP"
    rolls.tick(2.0, green_ready=True, blue_gone=False)
    assert rolls.rollback_reason is not None and rolls.details()[0]["status"] == "TIMED_OUT"
    rolls.roll_back()
    assert rolls.done and rolls.stage == "PRE_SCALE_UP" and rolls.green_percent == 0

    goes_on = _shift({"strategy": "CANARY", "lifecycleHooks": [_pause("PRE_SCALE_UP", minutes=2, action="CONTINUE")]})
    goes_on.tick(0.0, green_ready=False, blue_gone=False)
    goes_on.tick(2.0, green_ready=False, blue_gone=False)
    assert goes_on.rollback_reason is None and goes_on.stage == "SCALE_UP"


def test_hook_rollback_answer_asks_for_a_rollback() -> None:
    shift = _shift({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0, "lifecycleHooks": [_pause("PRE_SCALE_UP")]})
    shift.tick(0.0, green_ready=False, blue_gone=False)
    shift.resolve(shift.details()[0]["hookId"], "ROLLBACK")
    assert shift.rollback_reason is not None and "rollback" in shift.rollback_reason


def test_forward_action_weights_both_groups() -> None:
    existing = {"Type": "forward", "Order": 1, "TargetGroupArn": "tg-blue"}
    action = bluegreen.forward_action(existing, "tg-blue", "tg-green", 30.0)
    assert action == {
        "Type": "forward",
        "Order": 1,
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": "tg-blue", "Weight": 700},
                {"TargetGroupArn": "tg-green", "Weight": 300},
            ]
        },
    }
    assert bluegreen.production_group([action], ("tg-blue", "tg-green")) == "tg-blue"
    shifted = bluegreen.forward_action(action, "tg-blue", "tg-green", 100.0)
    assert bluegreen.production_group([shifted], ("tg-blue", "tg-green")) == "tg-green"
    assert bluegreen.production_group([existing], ("tg-blue", "tg-green")) == "tg-blue"
