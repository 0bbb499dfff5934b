"""A service that registers one container in two target groups, each with its own health check and listener.

The world is made with plain boto3 calls: a Fargate service whose ``loadBalancers`` name the same container
and port twice, once per target group. ECS registers each task in both; a task serves only when it is healthy
in both, and a revision healthy in one and unhealthy in the other fails naming that group.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from tests.conftest import App, HelloImages
from tests.e2e.conftest import ecs_ship, quick_target_group
from tests.e2e.test_container_health import Worker, worker_spec
from tests.sandbox.bootstrap import REGION, wait_rollout
from tests.sandbox.sandbox import Sandbox


def two_group_world(sandbox: Sandbox, image: str) -> tuple[Worker, list[str]]:
    """The service and the names of its two target groups: -a checks `/` (always 200), -b `/health` (what the
    image's HEALTH decides)."""
    c = sandbox.clients()
    ec2, ecs, elbv2 = c["ec2"], c["ecs"], c["elbv2"]
    n = "g" + uuid.uuid4().hex[:8]
    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.2.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    sg = ec2.create_security_group(GroupName=f"{n}-sg", Description="web", VpcId=vpc)["GroupId"]
    cluster = ecs.create_cluster(clusterName=f"{n}-cluster")["cluster"]["clusterName"]
    lb = elbv2.create_load_balancer(Name=f"{n}-alb", Subnets=subnets, SecurityGroups=[sg], Type="application")[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    checks = {f"{n}-tg-a": "/", f"{n}-tg-b": "/health"}
    arns = [quick_target_group(elbv2, name, vpc, lb, path=path)[0] for name, path in checks.items()]
    td = ecs.register_task_definition(
        family=f"{n}-app",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "web", "image": image, "essential": True, "portMappings": [{"containerPort": 8080}]}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    service = ecs.create_service(
        cluster=cluster,
        serviceName=f"{n}-svc",
        taskDefinition=td,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}},
        loadBalancers=[{"targetGroupArn": arn, "containerName": "web", "containerPort": 8080} for arn in arns],
    )["service"]["serviceName"]
    w = Worker(REGION, cluster, service, td)
    wait_rollout(sandbox.endpoint, w, timeout=120)  # type: ignore[arg-type]
    return w, list(checks)


def deploy(sandbox: Sandbox, app: App, w: Worker, build_args: dict[str, str]) -> tuple[int, str]:
    worker_spec(app, w, build_args)
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), "--no-rollback")
    return run.code, run.text


def test_a_task_serves_only_when_healthy_in_both_groups(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    w, (a, b) = two_group_world(sandbox, hello.get("v1"))
    code, text = deploy(sandbox, make_app(), w, {"VERSION": "v40"})
    assert code == 0, text
    lines = text.splitlines()
    serving_at = next(i for i, ln in enumerate(lines) if "serving: every new task" in ln)
    for name in (a, b):
        healthy_at = next(i for i, ln in enumerate(lines) if f"in {name}: healthy" in ln)
        assert healthy_at < serving_at, text

    code, text = deploy(sandbox, make_app(), w, {"VERSION": "v41", "HEALTH": "500"})
    assert code == 1, text
    assert f"in {b} is unhealthy (Target.ResponseCodeMismatch" in text
    assert f"in {a} is unhealthy" not in text
