"""The worlds a scenario deploys to, built with the sandbox's bootstrap helpers as a user's Terraform would.

`bootstrap` makes one cluster, ALB and service per world; a scenario with several services in a cluster adds the
others to a bootstrapped world's cluster and ALB: each its own target group and task family, reached through the
ALB's one listener by a host-header rule, the usual shape of a load balancer shared by a team's services.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from tests.sandbox.bootstrap import (
    CONTAINER,
    CONTAINER_PORT,
    HealthCheck,
    World,
    WorldSpec,
    _target_group,
    clients,
    container_definition,
    register_app,
    wait_rollout,
)
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.services import free_port

from .truth import ServiceRef

ROLLOUT_TIMEOUT = 180.0  # the first rollout of 20 services at once on a busy 2-core machine


def add_service(endpoint: str, base: World, index: int, image: str, health: HealthCheck) -> World:
    """Another Fargate service in `base`'s cluster, behind its own target group that a host-header rule of
    `base`'s listener forwards to, made as bootstrap makes the first (same network, role and log group)."""
    c = clients(endpoint, base.region)
    ec2, ecs, elbv2 = c["ec2"], c["ecs"], c["elbv2"]
    name = f"{base.service.removesuffix('-svc')}-{index:02d}"
    vpc = ec2.describe_subnets(SubnetIds=base.subnets[:1])["Subnets"][0]["VpcId"]
    tg = _target_group(elbv2, f"{name}-tg"[:32], vpc, health)
    listener = next(
        lst
        for lst in elbv2.describe_listeners(LoadBalancerArn=base.load_balancer_arn)["Listeners"]
        if lst["Port"] == base.listener_port
    )
    elbv2.create_rule(
        ListenerArn=listener["ListenerArn"],
        Priority=index,
        Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [f"{name}.example.com"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": tg}],
    )
    family = f"{name}-app"
    td = register_app(
        ecs, family, base.execution_role_arn, container_definition(name, image, base.log_group, base.region, {})
    )
    service: dict[str, Any] = ecs.create_service(
        cluster=base.cluster,
        serviceName=f"{name}-svc",
        taskDefinition=td,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": base.subnets,
                "securityGroups": [base.security_group],
                "assignPublicIp": "ENABLED",
            }
        },
        loadBalancers=[{"targetGroupArn": tg, "containerName": CONTAINER, "containerPort": CONTAINER_PORT}],
        deploymentConfiguration={
            "deploymentCircuitBreaker": {"enable": False, "rollback": False},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
    )["service"]
    return replace(
        base,
        service=service["serviceName"],
        family=family,
        task_definition_arn=td,
        target_group_arn=tg,
    )


def build(
    sb: Sandbox, image: str, *, services: int = 1, clusters: int = 1, health: HealthCheck | None = None
) -> list[World]:
    """`services` services spread evenly over `clusters` clusters, all running `image` and rolled out."""
    health = health or HealthCheck()
    worlds: list[World] = []
    per_cluster = [services // clusters + (1 if k < services % clusters else 0) for k in range(clusters)]
    for count in per_cluster:
        name = "b" + uuid.uuid4().hex[:7]
        # Not waited for one by one: the first rollouts of all services overlap, as they would in AWS.
        base = sb.bootstrap(WorldSpec(name=name, image=image, listener_port=free_port(), health=health, wait=False))
        worlds.append(base)
        worlds += [add_service(sb.endpoint, base, i, image, health) for i in range(1, count)]
    for w in worlds:
        wait_rollout(sb.endpoint, w, timeout=ROLLOUT_TIMEOUT)
    return worlds


def refs(worlds: list[World]) -> list[ServiceRef]:
    """How the truth and the reports name each service: s00, s01, … (ecs-ship's labels in a multi-service spec)."""
    return [
        ServiceRef(name=f"s{i:02d}", cluster=w.cluster, service=w.service, target_group_arn=w.target_group_arn)
        for i, w in enumerate(worlds)
    ]


def deployment_ids(sb: Sandbox, worlds: list[World]) -> dict[str, list[str]]:
    """Each service's deployment ids now, after the run: the one a tool started is among them."""
    ecs = sb.clients()["ecs"]
    out: dict[str, list[str]] = {}
    for ref, w in zip(refs(worlds), worlds, strict=True):
        svc = ecs.describe_services(cluster=w.cluster, services=[w.service])["services"][0]
        out[ref.name] = [d["id"] for d in svc.get("deployments", [])]
    return out
