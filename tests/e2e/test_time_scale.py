"""AWS's default target-group timings on the sandbox's scaled clock (SimConfig.time_scale).

A world made with plain boto3 calls whose target group keeps every default AWS gives it (health checks every
30 s, 5 in a row to turn healthy, 300 s deregistration delay) rolls out a new revision in seconds when the
clock runs fast, and the ledger's wall-clock facts, times the scale, show AWS's durations.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import HelloImages
from tests.e2e.conftest import TaskFamily, execution_role, network, poll, register_revision
from tests.e2e.test_container_health import Worker
from tests.sandbox.bootstrap import CONTAINER, CONTAINER_PORT, REGION, wait_rollout
from tests.sandbox.ledger import Fact
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.services import free_port

SCALE = 40.0  # AWS seconds per real second: a 30 s health check every 0.75 s, 300 s of draining in 7.5 s


@pytest.fixture
def aws_clock(sandbox: Sandbox) -> Iterator[float]:
    """The session's sandbox runs AWS's durations as set (no 5x faster health checks, 60 s minutes), 40x fast,
    for this test only."""
    config = sandbox.sim_config
    saved = (config.time_scale, config.health_time_scale, config.minute)
    config.time_scale, config.health_time_scale, config.minute = SCALE, 1.0, 60.0
    try:
        yield sandbox.time_scale
    finally:
        config.time_scale, config.health_time_scale, config.minute = saved


def _one(facts: list[Fact]) -> Fact:
    assert len(facts) == 1, facts
    return facts[0]


def test_aws_default_target_group_timings_run_scaled(sandbox: Sandbox, hello: HelloImages, aws_clock: float) -> None:
    c = sandbox.clients()
    ec2, ecs, elbv2, iam, logs = c["ec2"], c["ecs"], c["elbv2"], c["iam"], c["logs"]
    n = "ts" + uuid.uuid4().hex[:8]
    vpc, subnets, sg = network(ec2, n, "10.3.0.0/16")
    cluster = ecs.create_cluster(clusterName=f"{n}-cluster")["cluster"]["clusterName"]
    logs.create_log_group(logGroupName=f"/ecs/{n}")
    family = TaskFamily(f"{n}-app", execution_role(iam, f"{n}-exec"), f"/ecs/{n}", REGION)
    lb = elbv2.create_load_balancer(Name=f"{n}-alb", Subnets=subnets, SecurityGroups=[sg], Type="application")[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    # Only what has no default: every health-check timing and the deregistration delay are AWS's own.
    tg = elbv2.create_target_group(
        Name=f"{n}-tg", Protocol="HTTP", Port=CONTAINER_PORT, VpcId=vpc, TargetType="ip", HealthCheckPath="/health"
    )["TargetGroups"][0]
    assert (tg["HealthCheckIntervalSeconds"], tg["HealthyThresholdCount"]) == (30, 5)
    attributes = elbv2.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "300"} in attributes
    elbv2.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port=free_port(),
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )
    v1 = register_revision(ecs, family, hello.get("v1"))
    service = ecs.create_service(
        cluster=cluster,
        serviceName=f"{n}-svc",
        taskDefinition=v1,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}},
        loadBalancers=[
            {"targetGroupArn": tg["TargetGroupArn"], "containerName": CONTAINER, "containerPort": CONTAINER_PORT}
        ],
    )["service"]["serviceName"]
    wait_rollout(sandbox.endpoint, Worker(REGION, cluster, service, v1), timeout=60)  # type: ignore[arg-type]
    old = _one(sandbox.ledger.facts_of("target_healthy")[-1:]).subject

    mark = len(sandbox.ledger.facts_of())
    ecs.update_service(
        cluster=cluster,
        service=service,
        taskDefinition=register_revision(ecs, family, hello.get("v2")),
        forceNewDeployment=True,
    )

    def since(kind: str, subject: str | None = None) -> list[Fact]:
        return [f for f in sandbox.ledger.facts[mark:] if f.kind == kind and (subject is None or f.subject == subject)]

    poll(lambda: since("target_deregistered", old), bool, 60, "the old target to finish draining")
    new = _one(since("target_initial"))
    became_healthy = _one(since("target_healthy", new.subject))
    draining = _one(since("target_draining", old))
    gone = _one(since("target_deregistered", old))

    interval, threshold = 30, 5
    healthy_after = sandbox.aws_seconds(became_healthy.at - new.at)
    drained_for = sandbox.aws_seconds(gone.at - draining.at)
    # Generous: a busy machine stretches probes and ticks (the simulator's 0.2 s tick is 8 AWS seconds here).
    assert 0.9 * (threshold - 1) * interval <= healthy_after <= (threshold + 2) * interval, healthy_after
    assert 0.9 * 300 <= drained_for <= 300 + 60, drained_for
    # Wall-clock facts: the real lags are the AWS durations divided by the scale.
    assert gone.at - draining.at < 300 / aws_clock * 1.5
