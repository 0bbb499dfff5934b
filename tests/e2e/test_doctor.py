"""`ecs-ship doctor` end to end: a service with AWS's default settings (set with plain boto3, as a user's Terraform
leaves them) and one tuned; what each costs, what breaks deploys, the JSON, no write (counted server-side), and
its expected times against the deploy that follows, on the simulator's scaled clock (AWS seconds)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import App, HelloImages
from tests.e2e.conftest import assert_iam_listed, aws, ecs_ship, spec_for, writes
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.services import wait_until


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
    took = r"the last (\d+) deploy\(s\) took (\d+) s to complete \(median, from its {}\)"
    recorded = re.search(took.format("service deployments"), run.text)
    assert recorded, run.text  # ECS's record of the deploy just made
    assert writes(sandbox, mark) == []

    # A role without ecs:ListServiceDeployments: the same deploy, timed from the service's events.
    sandbox.ledger.fail("ListServiceDeployments", 1, "AccessDeniedException", 400, "not authorized")
    denied = ecs_ship(sandbox, "doctor", "--spec", str(app.spec))
    assert denied.code == 0, denied.text
    told = re.search(took.format("events"), denied.text)
    assert told, denied.text
    # The service's creation and the deploy: as many, and as long, as ECS's record says.
    assert told.group(1) == recorded.group(1) == "2", (told.group(0), recorded.group(0))
    assert abs(int(told.group(2)) - int(recorded.group(2))) <= 1, (told.group(0), recorded.group(0))


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


def test_a_grace_period_shorter_than_the_app_s_start_is_flagged_from_the_tasks_ecs_stopped(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App], hello: HelloImages
) -> None:
    # An app that listens 6 s after it starts, serving with a 20 s grace period; then someone sets the grace
    # period to 0 and forces a new deployment, with plain boto3 as a console or Terraform would.
    w = make_world(image=hello.get("v1", start_delay=6), grace_period=20)
    ecs = aws(sandbox, "ecs", w.region)
    ecs.update_service(cluster=w.cluster, service=w.service, healthCheckGracePeriodSeconds=0, forceNewDeployment=True)

    def stopped_by_health_checks() -> list[dict[str, Any]]:
        arns = ecs.list_tasks(cluster=w.cluster, serviceName=w.service, desiredStatus="STOPPED")["taskArns"]
        tasks = ecs.describe_tasks(cluster=w.cluster, tasks=arns)["tasks"] if arns else []
        return [t for t in tasks if "failed ELB health checks" in t.get("stoppedReason", "")]

    wait_until(stopped_by_health_checks, 60, 0.5, "ECS to stop a new task for failing its health checks")
    app = make_app()
    app.write_spec(spec_for(w))

    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "doctor", "--spec", str(app.spec))
    assert run.code == 1, run.text
    assert "breaks deploys: health check grace period 0 s" in run.text, run.text
    assert "of the image serving now stopped for failing ELB health checks" in run.text, run.text
    assert f"--service {w.service} --health-check-grace-period-seconds 60" in run.text, run.text
    assert writes(sandbox, mark) == []


def test_run_local_asks_the_image_each_health_check_and_a_path_it_refuses_breaks_deploys(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world(circuit_breaker=True, rollback=True)
    app = make_app()
    app.write_spec(spec_for(w))
    group = w.target_group_arn.split("/")[1]

    mark = sandbox.ledger.mark()
    served = ecs_ship(sandbox, "doctor", "--run-local", "--spec", str(app.spec))
    assert served.code == 0, served.text
    assert re.search(rf"health check path of {group} +/health +the image answers HTTP 200 when run locally", served.out)

    # Someone points the group at a path the app does not serve (plain boto3, as a console edit would).
    assert writes(sandbox, mark) == []
    aws(sandbox, "elbv2", w.region).modify_target_group(TargetGroupArn=w.target_group_arn, HealthCheckPath="/ready")
    mark = sandbox.ledger.mark()
    refused = ecs_ship(sandbox, "doctor", "--run-local", "--json", "--spec", str(app.spec))
    assert refused.code == 1, refused.text
    doc = json.loads(refused.out)  # stdout holds the JSON alone: the local run says its lines on stderr
    assert doc["breaks"] == [f"health check path of {group}"], doc
    row = next(r for r in doc["settings"] if r["setting"] == f"health check path of {group}")
    assert row["value"] == "/ready" and "HTTP 404, not HTTP 200" in row["why"], row
    assert writes(sandbox, mark) == []
    assert sandbox.docker is not None
    assert sandbox.docker.containers.list(all=True, filters={"label": "ecs-ship.local"}) == []  # nothing left running


def test_an_app_that_ignores_sigterm_costs_its_stop_timeout_and_the_row_says_so(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    # The service's app exits on SIGTERM; then someone deploys a revision whose app ignores it, with a 5 s
    # stopTimeout, and later forces a new deployment: ECS kills that app when the 5 s run out. All plain boto3.
    w = make_world(circuit_breaker=True, rollback=True)
    ecs = aws(sandbox, "ecs", w.region)
    current = ecs.describe_services(cluster=w.cluster, services=[w.service])["services"][0]["taskDefinition"]
    td = ecs.describe_task_definition(taskDefinition=current)["taskDefinition"]
    container = dict(td["containerDefinitions"][0])
    container["environment"] = [*container.get("environment", []), {"name": "ON_TERM", "value": "ignore"}]
    container["stopTimeout"] = 5
    keep = ("family", "networkMode", "requiresCompatibilities", "cpu", "memory", "executionRoleArn", "taskRoleArn")
    ignoring = ecs.register_task_definition(**{k: td[k] for k in keep if td.get(k)}, containerDefinitions=[container])[
        "taskDefinition"
    ]["taskDefinitionArn"]

    def stopped() -> list[dict[str, Any]]:
        arns = ecs.list_tasks(cluster=w.cluster, serviceName=w.service, desiredStatus="STOPPED")["taskArns"]
        found = ecs.describe_tasks(cluster=w.cluster, tasks=arns)["tasks"] if arns else []
        return [t for t in found if t.get("lastStatus") == "STOPPED"]

    ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=ignoring, forceNewDeployment=True)
    wait_until(lambda: len(stopped()) == 1, 60, 0.5, "the first task to stop")
    ecs.update_service(cluster=w.cluster, service=w.service, forceNewDeployment=True)
    wait_until(lambda: len(stopped()) == 2, 60, 0.5, "the task that ignores SIGTERM to stop")

    exited, killed = sorted(stopped(), key=lambda t: t["taskDefinitionArn"] == ignoring)
    assert exited["containers"][0]["exitCode"] == 0 and killed["containers"][0]["exitCode"] == 137
    # Both drained as long; the one that ignored SIGTERM then waited out its stopTimeout (not the sandbox's 2 s).
    took = [(t["stoppedAt"] - t["stoppingAt"]).total_seconds() for t in (exited, killed)]
    assert took[1] - took[0] >= 4, took

    app = make_app()
    app.write_spec(spec_for(w))
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "doctor", "--json", "--spec", str(app.spec))
    assert run.code == 0, run.text  # slow, not broken
    doc = json.loads(run.out)
    row = next(r for r in doc["settings"] if r["setting"] == "stop timeout (stopTimeout)")
    assert row["level"] == "slow" and row["value"] == "5 s", row
    assert "ignored SIGTERM and was killed (exit 137) in 1 of 2 task(s) ECS stopped" in row["cost"], row
    assert doc["measured"]["stopped_by_ecs"] == 2 and doc["measured"]["killed_at_stop"] == [container["name"]]
    assert writes(sandbox, mark) == []
