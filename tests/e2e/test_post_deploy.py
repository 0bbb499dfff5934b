"""`post_deploy` one-off tasks through the real CLI: a task that succeeds runs with the new revision once it
serves, before the deploy says deployed; one that exits 1 fails the deploy, which rolls the service back with its
logs shown; a container the task definition lacks is bad input with no write. And a world built by hand with
plain boto3 (tasks in a private subnet, the load balancer in public ones) deployed with a pre_deploy migration
and a post_deploy task: both run with the new revision on the service's network."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import yaml

from tests.conftest import App, HelloImages
from tests.e2e.conftest import (
    TaskFamily,
    describe,
    ecs_ship,
    execution_role,
    quick_target_group,
    register_revision,
    served,
    spec_for,
    started_task,
    writes,
)
from tests.sandbox.bootstrap import CONTAINER, CONTAINER_PORT, REGION, World, wait_rollout
from tests.sandbox.sandbox import Sandbox

WARM = {"name": "warm", "command": 'sh -c "echo warming the cache for $$VERSION"', "environment": {"CACHE_KEY": "k-91"}}
MIGRATE = {"name": "migrate", "command": 'sh -c "echo migrating the schema for $$VERSION"'}


def _spec(w: World, app: App, post: list[dict[str, Any]], pre: list[dict[str, Any]] | None = None) -> None:
    extra = yaml.safe_dump({"pre_deploy": pre or [], "post_deploy": post})
    app.write_spec(spec_for(w, build_args={"VERSION": "v2"}, extra=extra))


def _line(out: str, needle: str) -> int:
    lines = out.splitlines()
    return next(i for i, line in enumerate(lines) if needle in line)


def test_a_post_deploy_task_runs_with_the_new_revision_once_it_serves(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    _spec(w, app, [WARM])
    plan = ecs_ship(sandbox, "plan", "--spec", str(app.spec))
    assert plan.code == 0, plan.text
    assert "once the new revision serves:" in plan.out and "# post_deploy warm: must exit 0" in plan.out, plan.out
    assert "CACHE_KEY=***" in plan.out and "k-91" not in plan.out, plan.out

    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    assert writes(sandbox, mark) == ["RegisterTaskDefinition", "UpdateService", "RunTask"], writes(sandbox, mark)
    # Run once the deployment reached its goal (stable here), and before the deploy says it is done.
    ran = _line(run.out, "post_deploy warm: container web exited 0")
    stable = _line(run.out, "stable: the old deployment is drained")
    assert stable < _line(run.out, "post_deploy warm: started task") < ran < _line(run.out, f"deployed {w.family}:2")
    assert "[warm] warming the cache for v2" in run.out, run.out
    ecs = sandbox.clients()["ecs"]
    task = started_task(ecs, w.cluster, run.out, "post_deploy warm")
    assert task["startedBy"] == "ecs-ship/warm" and task["containers"][0]["exitCode"] == 0
    assert task["taskDefinitionArn"] == describe(ecs, w)["taskDefinition"] and task["taskDefinitionArn"].endswith(":2")
    assert served(w) == "hello v2"


def test_a_post_deploy_task_that_fails_fails_the_deploy_and_rolls_it_back(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    _spec(w, app, [{"name": "warm", "command": 'sh -c "echo cache backend refused the connection >&2; exit 1"'}])
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 1, run.text
    made = writes(sandbox, mark)
    # The rollback: ECS's own (StopServiceDeployment) while the deployment is in progress, else a new deployment.
    assert made[:3] == ["RegisterTaskDefinition", "UpdateService", "RunTask"] and len(made) == 4, made
    assert "failed to deploy" in run.err and "post_deploy task warm failed: container web exited 1" in run.err
    assert "the service was rolled back to its previous revision" in run.err, run.text
    # Its lines as they came, and in the diagnosis with the stop reason.
    assert "[warm] cache backend refused the connection" in run.out, run.out
    why = run.out[run.out.index("deployment failed; why:") :]
    assert "Essential container in task exited" in why and "[web] cache backend refused the connection" in why, why
    assert "summary: failed, rolled back" in run.out, run.out
    assert describe(sandbox.clients()["ecs"], w)["taskDefinition"] == w.task_definition_arn
    assert served(w) == "hello v1"


def test_a_post_deploy_container_the_task_definition_lacks_is_bad_input_with_no_write(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    _spec(w, app, [{**WARM, "container": "cache"}])
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 2, run.text
    assert "has no container 'cache'" in run.err and "post_deploy[0].container" in run.err, run.text
    assert writes(sandbox, mark) == []


# --------------------------------------------------------------------------------------------
# a world built by hand
# --------------------------------------------------------------------------------------------
def private_subnet_world(sandbox: Sandbox, image: str) -> tuple[World, str]:
    """A Fargate service as a user's Terraform would make it, with plain boto3: the load balancer in two public
    subnets, the tasks in a private one with their own security group; (the world, the private subnet)."""
    c = sandbox.clients()
    ec2, ecs, elbv2, iam, logs = c["ec2"], c["ecs"], c["elbv2"], c["iam"], c["logs"]
    n = "p" + uuid.uuid4().hex[:8]
    vpc = ec2.create_vpc(CidrBlock="10.4.0.0/16")["Vpc"]["VpcId"]
    public = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=REGION + zone)["Subnet"]["SubnetId"]
        for cidr, zone in (("10.4.0.0/24", "a"), ("10.4.1.0/24", "b"))
    ]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.4.8.0/22", AvailabilityZone=f"{REGION}a")["Subnet"]
    alb_sg = ec2.create_security_group(GroupName=f"{n}-alb", Description="public HTTP", VpcId=vpc)["GroupId"]
    task_sg = ec2.create_security_group(GroupName=f"{n}-task", Description="from the ALB", VpcId=vpc)["GroupId"]
    lb = elbv2.create_load_balancer(Name=f"{n}-alb", Subnets=public, SecurityGroups=[alb_sg], Type="application")
    alb = lb["LoadBalancers"][0]
    group, port = quick_target_group(elbv2, f"{n}-tg", vpc, alb["LoadBalancerArn"])

    cluster = ecs.create_cluster(clusterName=f"{n}-cluster")["cluster"]["clusterName"]
    logs.create_log_group(logGroupName=f"/ecs/{n}")
    family = TaskFamily(f"{n}-app", execution_role(iam, f"{n}-exec"), f"/ecs/{n}", REGION)
    first = register_revision(ecs, family, image)  # awsvpc, FARGATE, awslogs
    network = {"subnets": [private["SubnetId"]], "securityGroups": [task_sg], "assignPublicIp": "DISABLED"}
    service = ecs.create_service(
        cluster=cluster,
        serviceName=f"{n}-svc",
        taskDefinition=first,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": network},
        loadBalancers=[{"targetGroupArn": group, "containerName": CONTAINER, "containerPort": CONTAINER_PORT}],
    )["service"]["serviceName"]
    w = World(
        region=REGION,
        cluster=cluster,
        service=service,
        family=family.family,
        task_definition_arn=first,
        target_group_arn=group,
        load_balancer_arn=alb["LoadBalancerArn"],
        dns_name=alb["DNSName"],
        listener_port=port,
        log_group=family.log_group,
        execution_role_arn=family.execution_role_arn,
        subnets=[private["SubnetId"]],
        security_group=task_sg,
    )
    wait_rollout(sandbox.endpoint, w, timeout=120)
    return w, str(private["SubnetId"])


def _subnet(task: dict[str, Any]) -> str | None:
    """The subnet of the task's ENI, as DescribeTasks shows it."""
    details = [d for a in task.get("attachments") or [] if a["type"] == "ElasticNetworkInterface" for d in a["details"]]
    return next((d["value"] for d in details if d["name"] == "subnetId"), None)


def test_a_hand_built_service_deploys_with_a_migration_before_and_a_task_after_on_its_network(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    w, private = private_subnet_world(sandbox, hello.get("v1"))
    ecs = sandbox.clients()["ecs"]
    network = describe(ecs, w)["networkConfiguration"]
    app = make_app()
    _spec(w, app, [WARM], pre=[MIGRATE])
    plan = ecs_ship(sandbox, "plan", "--spec", str(app.spec))
    assert plan.code == 0, plan.text
    run_tasks = [line for line in plan.out.splitlines() if "ecs.run_task(" in line]
    # What ecs-ship asks of RunTask: the service's launch type and network configuration, for both tasks.
    assert len(run_tasks) == 2, plan.out
    assert all(f"networkConfiguration={network!r}" in ln and "launchType='FARGATE'" in ln for ln in run_tasks)

    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    made = writes(sandbox, mark)
    assert made == ["RegisterTaskDefinition", "RunTask", "UpdateService", "RunTask"], made
    new = describe(ecs, w)["taskDefinition"]
    assert new != w.task_definition_arn and new.endswith(":2")
    for label, started_by, line in (
        ("pre_deploy migrate", "ecs-ship/migrate", "[migrate] migrating the schema for v2"),
        ("post_deploy warm", "ecs-ship/warm", "[warm] warming the cache for v2"),
    ):
        task = started_task(ecs, w.cluster, run.out, label)
        assert (task["startedBy"], task["taskDefinitionArn"], task["launchType"]) == (started_by, new, "FARGATE")
        assert task["lastStatus"] == "STOPPED" and task["containers"][0]["exitCode"] == 0, task
        # What ran: the task's network interface is in the service's private subnet.
        assert _subnet(task) == private, task.get("attachments")
        assert line in run.out, run.out
    assert served(w) == "hello v2"
