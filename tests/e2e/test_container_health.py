"""Services without a load balancer, judged by their container health checks; tasks interrupted mid-rollout;
a service of more than 100 tasks.

Each world is made here with plain boto3 calls, as a user's Terraform would make a worker service: a cluster,
a log group, a task definition whose container has a ``healthCheck`` (or none), and a service with no load
balancer. ecs-ship then deploys to it through the real CLI.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.conftest import App, HelloImages
from tests.e2e.conftest import ecs_ship, execution_role, poll, start_ecs_ship
from tests.sandbox.bootstrap import REGION, wait_rollout
from tests.sandbox.sandbox import Sandbox

CHECK = ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:$PORT/health || exit 1"]


@dataclass(frozen=True)
class Worker:
    region: str
    cluster: str
    service: str
    task_definition_arn: str


def make_worker(
    sandbox: Sandbox,
    image: str,
    *,
    desired: int = 1,
    health_check: dict[str, Any] | None = None,
    command: list[str] | None = None,
    providers: list[str] | None = None,
    strategy: list[dict[str, Any]] | None = None,
    default_strategy: list[dict[str, Any]] | None = None,
) -> Worker:
    """A Fargate worker service; with `providers` its cluster has those capacity providers (and the default
    strategy), and the service takes `strategy`, or the cluster's default when none is given."""
    c = sandbox.clients()
    ecs, logs, ec2 = c["ecs"], c["logs"], c["ec2"]
    n = "k" + uuid.uuid4().hex[:8]
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName=f"{n}-sg", Description="worker", VpcId=vpc)["GroupId"]
    cluster = ecs.create_cluster(
        clusterName=f"{n}-cluster",
        **(
            {"capacityProviders": providers, "defaultCapacityProviderStrategy": default_strategy or []}
            if providers
            else {}
        ),
    )["cluster"]["clusterName"]
    logs.create_log_group(logGroupName=f"/ecs/{n}")
    placing: dict[str, Any] = {"launchType": "FARGATE"}
    if strategy:
        placing = {"capacityProviderStrategy": strategy}
    elif default_strategy:
        placing = {}
    container: dict[str, Any] = {
        "name": "web",
        "image": image,
        "essential": True,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": f"/ecs/{n}", "awslogs-region": REGION, "awslogs-stream-prefix": "ecs"},
        },
    }
    if health_check is not None:
        # A worker may still listen on a port (for its own health endpoint) without any load balancer.
        container["portMappings"] = [{"containerPort": 8080, "protocol": "tcp"}]
        container["healthCheck"] = health_check
    if command is not None:
        container["entryPoint"], container["command"] = ["/bin/sh", "-c"], command
    td = ecs.register_task_definition(
        family=f"{n}-worker",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        # Fargate sends awslogs output with the task execution role, as AWS requires.
        executionRoleArn=execution_role(c["iam"], f"{n}-exec"),
        containerDefinitions=[container],
    )["taskDefinition"]["taskDefinitionArn"]
    service = ecs.create_service(
        cluster=cluster,
        serviceName=f"{n}-svc",
        taskDefinition=td,
        desiredCount=desired,
        **placing,
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [sg], "assignPublicIp": "DISABLED"}
        },
        deploymentConfiguration={
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
    )["service"]["serviceName"]
    w = Worker(REGION, cluster, service, td)
    wait_rollout(sandbox.endpoint, w, timeout=120)  # type: ignore[arg-type]
    return w


def worker_spec(app: App, w: Worker, build_args: dict[str, str]) -> None:
    doc = {
        "version": 1,
        "region": w.region,
        "cluster": w.cluster,
        "service": w.service,
        "images": [
            {
                "container": "web",
                "repository": "${REGISTRY}/e2e-" + uuid.uuid4().hex[:6],
                "context": ".",
                "build_args": build_args,
            }
        ],
        "wait": {"until": "stable", "timeout": 120, "poll_interval": 0.5},
    }
    app.write_spec(yaml.safe_dump(doc, sort_keys=False))


def service_of(sandbox: Sandbox, w: Worker) -> dict[str, Any]:
    ecs = sandbox.clients()["ecs"]
    return dict(ecs.describe_services(cluster=w.cluster, services=[w.service])["services"][0])


def test_worker_with_a_passing_container_check_deploys(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    w = make_worker(sandbox, hello.get("v1"), health_check={"command": CHECK, "interval": 5, "retries": 2})
    app = make_app()
    worker_spec(app, w, {"VERSION": "v30"})
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    assert "serving: every new task is HEALTHY by its container health checks" in run.out
    assert "container health HEALTHY" in run.out
    assert "counts as serving" not in run.out
    ecs = sandbox.clients()["ecs"]
    svc = service_of(sandbox, w)
    assert svc["taskDefinition"].endswith(":2") and len(svc["deployments"]) == 1
    (arn,) = ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"]
    t = ecs.describe_tasks(cluster=w.cluster, tasks=[arn])["tasks"][0]
    assert t["healthStatus"] == "HEALTHY" and t["containers"][0]["healthStatus"] == "HEALTHY"


def test_worker_whose_container_check_fails_is_rolled_back_with_the_check_named(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    w = make_worker(sandbox, hello.get("v1"), health_check={"command": CHECK, "interval": 5, "retries": 2})
    app = make_app()
    worker_spec(app, w, {"VERSION": "v31", "HEALTH": "500"})
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 1, run.text
    assert f"container web failed its health check [{' '.join(CHECK)}]" in run.text
    # The diagnosis carries the app's own lines: its health endpoint answered 500.
    assert "GET /health 500" in run.text
    svc = poll(
        lambda: service_of(sandbox, w),
        lambda s: len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED",
        60,
        "the rollback to complete",
    )
    assert svc["taskDefinition"] == w.task_definition_arn  # rolled back to the revision that served
    assert "rolled back" in run.text


def test_without_any_check_running_is_enough_and_said_once(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    w = make_worker(sandbox, hello.get("v1"), command=["echo worker $VERSION up; exec sleep 600"])
    app = make_app()
    worker_spec(app, w, {"VERSION": "v32"})
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    assert run.out.count("a RUNNING task counts as serving") == 1


def test_spot_interruption_of_a_new_task_mid_rollout_is_not_a_failure(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    # startPeriod covers the app's slow start, so the new task is RUNNING but not yet HEALTHY for a while:
    # the interruption lands mid-rollout.
    check = {"command": CHECK, "interval": 5, "retries": 2, "startPeriod": 60}
    w = make_worker(
        sandbox,
        hello.get("v1"),
        health_check=check,
        providers=["FARGATE", "FARGATE_SPOT"],
        strategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
    )
    app = make_app()
    worker_spec(app, w, {"VERSION": "v33", "START_DELAY": "4"})
    ecs = sandbox.clients()["ecs"]
    proc = start_ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    try:

        def new_running_task() -> str | None:
            deps = service_of(sandbox, w)["deployments"]
            ours = [d for d in deps if d["taskDefinition"] != w.task_definition_arn]
            if not ours:
                return None
            arns = ecs.list_tasks(cluster=w.cluster, startedBy=ours[0]["id"])["taskArns"]
            tasks = ecs.describe_tasks(cluster=w.cluster, tasks=arns)["tasks"] if arns else []
            running = [t["taskArn"] for t in tasks if t["lastStatus"] == "RUNNING" and t["healthStatus"] == "UNKNOWN"]
            return running[0] if running else None

        victim = poll(new_running_task, bool, 90, "a new task running, not yet healthy")
        sandbox.interrupt_task(victim)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    short = victim.rsplit("/", 1)[-1]
    assert f"task {short} stopped, interrupted (SpotInterruption)" in out, out
    t = ecs.describe_tasks(cluster=w.cluster, tasks=[victim])["tasks"][0]
    assert t["stopCode"] == "SpotInterruption" and t["stoppedReason"] == "Your Spot Task was interrupted."
    assert t["capacityProviderName"] == "FARGATE_SPOT" and t["launchType"] == "FARGATE"
    svc = service_of(sandbox, w)
    assert svc["taskDefinition"].endswith(":2") and svc["deployments"][0]["failedTasks"] == 0


@pytest.mark.timeout(600)
def test_service_of_more_than_100_tasks(sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]) -> None:
    w = make_worker(sandbox, hello.get("v1"), desired=101, command=["exec sleep 600"])
    ecs = sandbox.clients()["ecs"]
    first = ecs.list_tasks(cluster=w.cluster, serviceName=w.service)
    assert len(first["taskArns"]) == 100 and first["nextToken"]
    rest = ecs.list_tasks(cluster=w.cluster, serviceName=w.service, nextToken=first["nextToken"])
    assert len(rest["taskArns"]) == 1 and "nextToken" not in rest
    dep_id = service_of(sandbox, w)["deployments"][0]["id"]
    with pytest.raises(ClientError) as exc:
        ecs.list_tasks(cluster=w.cluster, serviceName=w.service, startedBy=dep_id)
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"

    app = make_app()
    worker_spec(app, w, {"VERSION": "v34"})
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), timeout=400)
    assert run.code == 0, run.text
    svc = service_of(sandbox, w)
    assert svc["taskDefinition"].endswith(":2") and svc["runningCount"] == 101
    assert "running 101/101" in run.out
    status = ecs_ship(sandbox, "status", "--spec", str(app.spec))
    assert status.code == 0, status.text
    assert status.out.count(" RUNNING ") == 101  # every task, past the first page
