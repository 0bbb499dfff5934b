"""Between tests the sandbox forgets finished worlds: clusters with their services, tasks and instances, and the
load balancers and target groups nothing kept routes to; a world still stopping its tasks stays whole."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.sandbox.ledger import Ledger
from tests.sandbox.motoworld import MotoWorld

REGION = "us-east-1"
KW = {"region_name": REGION, "aws_access_key_id": "k", "aws_secret_access_key": "s"}


def _world(name: str, *, hand_made_group: bool = False) -> dict[str, str]:
    """A cluster with one service behind its own load balancer, as a user's boto3 calls would build it."""
    ec2, ecs, elbv2 = (boto3.client(s, **KW) for s in ("ec2", "ecs", "elbv2"))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    lb = elbv2.create_load_balancer(Name=f"{name}-lb", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elbv2.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}]
    )
    if hand_made_group:  # made by hand and never attached: nothing routes to it
        elbv2.create_target_group(Name=f"{name}-spare", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")
    ecs.create_cluster(clusterName=name)
    td = ecs.register_task_definition(
        family=name, containerDefinitions=[{"name": "app", "image": "busybox", "memory": 64}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=name,
        serviceName="web",
        taskDefinition=td,
        desiredCount=0,
        loadBalancers=[{"targetGroupArn": tg, "containerName": "app", "containerPort": 80}],
    )
    return {"lb": lb, "tg": tg}


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def _names(client: Any, call: str, key: str, field: str) -> list[str]:
    return sorted(str(x[field]) for x in getattr(client, call)()[key])


def test_forget_drops_finished_worlds_and_keeps_a_busy_one_whole(aws: None) -> None:
    done = _world("done", hand_made_group=True)
    busy = _world("busy")
    ecs, elbv2 = boto3.client("ecs", **KW), boto3.client("elbv2", **KW)

    dropped = MotoWorld(Ledger()).forget({(REGION, "busy")}, set())

    assert dropped == [(REGION, "done")]
    assert [a.rsplit("/", 1)[1] for a in ecs.list_clusters()["clusterArns"]] == ["busy"]
    assert ecs.list_services(cluster="busy")["serviceArns"]
    # The busy service's target group keeps its load balancer; the finished world's go, with the group made by
    # hand that nothing routes to.
    assert [lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]] == [busy["lb"]]
    assert _names(elbv2, "describe_target_groups", "TargetGroups", "TargetGroupArn") == [busy["tg"]]
    assert done["lb"] != busy["lb"]


def test_a_target_group_a_stopping_task_is_still_in_keeps_its_load_balancer(aws: None) -> None:
    old = _world("old")
    ecs, elbv2 = boto3.client("ecs", **KW), boto3.client("elbv2", **KW)

    assert MotoWorld(Ledger()).forget(set(), {old["tg"]}) == [(REGION, "old")]

    assert ecs.list_clusters()["clusterArns"] == []
    assert [lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]] == [old["lb"]]
    assert _names(elbv2, "describe_target_groups", "TargetGroups", "TargetGroupArn") == [old["tg"]]
