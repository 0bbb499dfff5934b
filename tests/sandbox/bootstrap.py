"""The world a user following the usual console walkthrough has before ecs-ship touches it.

VPC, two subnets, a security group, an ECS cluster, a task-execution role, a CloudWatch log group, an ALB
with a listener and a target group, and a Fargate service in awsvpc mode behind that target group, already
running a first image. A blue/green-ready world also has the alternate target group and the production listener
rule that ECS's BLUE_GREEN, LINEAR and CANARY strategies shift, named in the service's advancedConfiguration.
Made with plain boto3 through the sandbox's endpoint, exactly as a user's tooling would.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import boto3

REGION = "us-east-1"
CONTAINER = "web"
CONTAINER_PORT = 8080


@dataclass(frozen=True)
class HealthCheck:
    path: str = "/health"
    interval: int = 5  # AWS's minimum; the simulator scales check timing down (SimConfig)
    timeout: int = 2
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    matcher: str = "200"
    deregistration_delay: int = 2


@dataclass(frozen=True)
class WorldSpec:
    name: str  # prefix for every resource
    image: str  # the first image the service runs, "host:port/repo@sha256:…" or ":tag"
    listener_port: int  # loopback port the ALB proxy serves
    desired_count: int = 1
    health: HealthCheck = field(default_factory=HealthCheck)
    circuit_breaker: bool = False
    rollback: bool = False
    grace_period: int = 0
    environment: dict[str, str] = field(default_factory=dict)
    wait: bool = True  # wait for the first deployment to complete
    attach_load_balancer: bool = True  # False: a worker service, not registered in any target group
    blue_green: bool = False  # True: the BLUE_GREEN strategy, an alternate target group and a production rule


@dataclass(frozen=True)
class World:
    region: str
    cluster: str
    service: str
    family: str
    task_definition_arn: str
    target_group_arn: str
    load_balancer_arn: str
    dns_name: str
    listener_port: int
    log_group: str
    execution_role_arn: str
    subnets: list[str]
    security_group: str
    alternate_target_group_arn: str | None = None  # blue/green-ready worlds
    production_rule_arn: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.dns_name}:{self.listener_port}"


def clients(endpoint: str, region: str = REGION) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": region,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    return {name: boto3.client(name, **kw) for name in ("acm", "autoscaling", "ec2", "ecs", "elbv2", "iam", "logs")}


def register_app(ecs: Any, family: str, execution_role: str, container: dict[str, Any]) -> str:
    """A Fargate revision of one container, as the sandbox's worlds run it; its ARN."""
    return str(
        ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            executionRoleArn=execution_role,
            containerDefinitions=[container],
        )["taskDefinition"]["taskDefinitionArn"]
    )


def container_definition(name: str, image: str, log_group: str, region: str, env: dict[str, str]) -> dict[str, Any]:
    return {
        "name": CONTAINER,
        "image": image,
        "essential": True,
        "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}],
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": region,
                "awslogs-stream-prefix": "ecs",
            },
        },
    }


def bootstrap(endpoint: str, spec: WorldSpec, region: str = REGION) -> World:
    c = clients(endpoint, region)
    ec2, ecs, elbv2, iam, logs = c["ec2"], c["ecs"], c["elbv2"], c["iam"], c["logs"]
    n = spec.name

    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    sg = ec2.create_security_group(GroupName=f"{n}-sg", Description=f"{n} web", VpcId=vpc)["GroupId"]

    cluster = ecs.create_cluster(clusterName=f"{n}-cluster")["cluster"]["clusterName"]
    role = iam.create_role(
        RoleName=f"{n}-ecsTaskExecutionRole",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    log_group = f"/ecs/{n}"
    logs.create_log_group(logGroupName=log_group)

    lb = elbv2.create_load_balancer(
        Name=f"{n}-alb", Subnets=subnets, SecurityGroups=[sg], Scheme="internet-facing", Type="application"
    )["LoadBalancers"][0]
    tg = _target_group(elbv2, f"{n}-tg"[:32], vpc, spec.health)
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=spec.listener_port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )["Listeners"][0]["ListenerArn"]
    load_balancer: dict[str, Any] = {"targetGroupArn": tg, "containerName": CONTAINER, "containerPort": CONTAINER_PORT}
    deployment: dict[str, Any] = {
        "deploymentCircuitBreaker": {"enable": spec.circuit_breaker, "rollback": spec.rollback},
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
    }
    alternate = rule = None
    if spec.blue_green:
        alternate = _target_group(elbv2, f"{n}-tg2"[:32], vpc, spec.health)
        # ECS shifts the weights of a rule's forward action, never a listener's default action.
        rule = elbv2.create_rule(
            ListenerArn=listener,
            Priority=1,
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}],
            Actions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": tg, "Weight": 1},
                            {"TargetGroupArn": alternate, "Weight": 0},
                        ]
                    },
                }
            ],
        )["Rules"][0]["RuleArn"]
        load_balancer["advancedConfiguration"] = {
            "alternateTargetGroupArn": alternate,
            "productionListenerRule": rule,
            "roleArn": role.replace(":role/", ":role/elb-"),
        }
        deployment.update(strategy="BLUE_GREEN", bakeTimeInMinutes=0)

    family = f"{n}-app"
    td = register_app(ecs, family, role, container_definition(n, spec.image, log_group, region, spec.environment))
    service = ecs.create_service(
        cluster=cluster,
        serviceName=f"{n}-svc",
        taskDefinition=td,
        desiredCount=spec.desired_count,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg], "assignPublicIp": "ENABLED"}
        },
        loadBalancers=[load_balancer] if spec.attach_load_balancer else [],
        healthCheckGracePeriodSeconds=spec.grace_period,
        deploymentConfiguration=deployment,
    )["service"]["serviceName"]
    world = World(
        region=region,
        cluster=cluster,
        service=service,
        family=family,
        task_definition_arn=td,
        target_group_arn=tg,
        load_balancer_arn=lb["LoadBalancerArn"],
        dns_name=lb["DNSName"],
        listener_port=spec.listener_port,
        log_group=log_group,
        execution_role_arn=role,
        subnets=subnets,
        security_group=sg,
        alternate_target_group_arn=alternate,
        production_rule_arn=rule,
    )
    if spec.wait:
        wait_rollout(endpoint, world, timeout=90)
    return world


def _target_group(elbv2: Any, name: str, vpc: str, hc: HealthCheck) -> str:
    arn = str(
        elbv2.create_target_group(
            Name=name,
            Protocol="HTTP",
            Port=CONTAINER_PORT,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckProtocol="HTTP",
            HealthCheckPath=hc.path,
            HealthCheckIntervalSeconds=hc.interval,
            HealthCheckTimeoutSeconds=hc.timeout,
            HealthyThresholdCount=hc.healthy_threshold,
            UnhealthyThresholdCount=hc.unhealthy_threshold,
            Matcher={"HttpCode": hc.matcher},
        )["TargetGroups"][0]["TargetGroupArn"]
    )
    elbv2.modify_target_group_attributes(
        TargetGroupArn=arn,
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(hc.deregistration_delay)}],
    )
    return arn


def wait_rollout(endpoint: str, world: World, *, timeout: float, want: str = "COMPLETED") -> dict[str, Any]:
    """Poll until the PRIMARY deployment's rolloutState is `want` (bounded); return the service."""
    ecs = clients(endpoint, world.region)["ecs"]
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = ecs.describe_services(cluster=world.cluster, services=[world.service])["services"][0]
        primary = next(d for d in last["deployments"] if d["status"] == "PRIMARY")
        if primary.get("rolloutState") == want and len(last["deployments"]) == 1:
            return last
        if primary.get("rolloutState") == "FAILED" and want != "FAILED":
            raise RuntimeError(f"deployment {primary['id']} failed: {primary.get('rolloutStateReason')}")
        time.sleep(0.3)
    events = [e["message"] for e in last.get("events", [])[:10]]
    raise TimeoutError(f"service {world.service} not {want} after {timeout}s; events: {events}")
