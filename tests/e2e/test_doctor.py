"""`ecs-ship doctor` end to end: a service with AWS's default settings (set with plain boto3, as a user's Terraform
leaves them) and one tuned; what each costs, what breaks deploys, the JSON, no write (counted server-side), and
its expected times against the deploy that follows, on the simulator's scaled clock (AWS seconds)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import App
from tests.e2e.conftest import assert_iam_listed, aws, ecs_ship, spec_for, writes
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox


def with_aws_defaults(sandbox: Sandbox, w: World) -> None:
    """The target group as ELBv2 makes it when nothing is set: 30 s x 5 checks, 300 s of draining."""
    elbv2 = aws(sandbox, "elbv2", w.region)
    elbv2.modify_target_group(
        TargetGroupArn=w.target_group_arn,
        HealthCheckIntervalSeconds=30,
        HealthCheckTimeoutSeconds=5,
        HealthyThresholdCount=5,
        Matcher={"HttpCode": "200-499"},
    )
    elbv2.modify_target_group_attributes(
        TargetGroupArn=w.target_group_arn,
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "300"}],
    )


def test_doctor_prices_aws_defaults_flags_what_breaks_and_writes_nothing(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()  # no circuit breaker, as ECS creates a service unless told
    with_aws_defaults(sandbox, w)
    app = make_app()
    app.write_spec(spec_for(w))

    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "doctor", "--spec", str(app.spec))
    assert run.code == 1, run.text
    text = run.text
    assert f"doctor: {w.service} in cluster {w.cluster}: 1 task(s), rolling update, FARGATE" in text
    for row in (
        "30 s x 5",
        "~135 s a wave before a new task is healthy",
        "300 s of draining before the old tasks stop",
    ):
        assert row in text, (row, text)
    assert (
        f"aws elbv2 modify-target-group --target-group-arn {w.target_group_arn} --health-check-interval-seconds 10"
        in text
    )
    assert "Key=deregistration_delay.timeout_seconds,Value=30" in text
    assert "breaks deploys: success codes of" in text and "breaks deploys: deployment circuit breaker off" in text
    assert "measured: tasks start in" in text  # the world's running task was measured
    assert "would break deploys" in run.err
    assert writes(sandbox, mark) == []
    assert_iam_listed(sandbox, mark)

    as_json = ecs_ship(sandbox, "doctor", "--json", "--spec", str(app.spec))
    assert as_json.code == 1, as_json.text
    doc = json.loads(as_json.out.strip().splitlines()[0])
    assert doc["service"] == w.service
    assert doc["expected"]["now"]["stable"] - doc["expected"]["now"]["serving"] == 300
    assert doc["expected"]["with_changes"]["stable"] < doc["expected"]["now"]["stable"]
    group = w.target_group_arn.split("/")[1]
    assert sorted(doc["breaks"]) == ["deployment circuit breaker", f"success codes of {group}"]


def test_a_tuned_service_is_healthy_and_its_last_deploy_is_measured(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world(circuit_breaker=True, rollback=True)
    app = make_app()
    app.write_spec(spec_for(w))
    deployed = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert deployed.code == 0, deployed.text

    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "doctor", "--spec", str(app.spec))
    assert run.code == 0, run.text
    assert "breaks deploys" not in run.text and "changes:" not in run.text
    assert "deploy(s) took" in run.text  # ECS's record of the deploy just made
    assert writes(sandbox, mark) == []


@contextlib.contextmanager
def aws_clock(sandbox: Sandbox, scale: float) -> Iterator[None]:
    """The simulator's clock at `scale` AWS seconds a real second, health checks on the target group's own
    schedule (not sped up further): a deploy with AWS's default settings runs in under a minute, and the times it
    takes, times `scale`, are AWS seconds."""
    config = sandbox.sim_config
    before = (config.time_scale, config.health_time_scale)
    config.time_scale, config.health_time_scale = scale, 1.0
    try:
        yield
    finally:
        config.time_scale, config.health_time_scale = before


def milestone(text: str, name: str) -> float:
    found = re.search(rf"\] {name}: .*\((\d+(?:\.\d+)?)s\)$", text, re.MULTILINE)
    assert found, (name, text)
    return float(found.group(1))


@pytest.mark.parametrize(
    ("interval", "threshold", "drain", "scale"),
    [
        (30, 5, 300, 10.0),  # ELBv2's defaults
        (20, 3, 60, 5.0),  # tuned (a slower clock: the machine's own second of task start weighs less)
    ],
)
def test_doctor_expects_the_deploy_that_follows_within_a_fifth(
    sandbox: Sandbox,
    make_world: Callable[..., World],
    make_app: Callable[[], App],
    interval: int,
    threshold: int,
    drain: int,
    scale: float,
) -> None:
    w = make_world(circuit_breaker=True, rollback=True)
    elbv2 = aws(sandbox, "elbv2", w.region)
    elbv2.modify_target_group(
        TargetGroupArn=w.target_group_arn, HealthCheckIntervalSeconds=interval, HealthyThresholdCount=threshold
    )
    elbv2.modify_target_group_attributes(
        TargetGroupArn=w.target_group_arn,
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(drain)}],
    )
    app = make_app()
    app.write_spec(spec_for(w))  # waits until stable: both milestones are measured
    with aws_clock(sandbox, scale):
        doctor = ecs_ship(sandbox, "doctor", "--json", "--spec", str(app.spec))
        assert doctor.code == 0, doctor.text
        expected = json.loads(doctor.out.strip().splitlines()[0])["expected"]["now"]
        deployed = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert deployed.code == 0, deployed.text
    serving, stable = milestone(deployed.text, "serving") * scale, milestone(deployed.text, "stable") * scale
    assert abs(serving - expected["serving"]) <= 0.2 * expected["serving"], (serving, expected)
    assert abs(stable - expected["stable"]) <= 0.2 * expected["stable"], (stable, expected)
    assert "healthy expected in ~" in deployed.text  # the same model's ETA, said as the target registers
    assert "old target(s) draining; stable expected in ~" in deployed.text  # and as the old one drains
