"""EC2 launch type end to end: services on container instances in bridge (dynamic and fixed host ports) and
host network mode behind `instance` target groups, and services whose tasks no instance can hold.

Each world is built with plain boto3 calls, as a user's Terraform would: an EC2 instance, registered as a
container instance with its identity document, a task definition in bridge or host mode, an `instance`
target group, a listener and a service with launch type EC2.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.conftest import App, HelloImages
from tests.e2e.conftest import assert_iam_listed, describe, ecs_ship, poll, quick_target_group, served, spec_for
from tests.sandbox.bootstrap import REGION, World
from tests.sandbox.sandbox import Sandbox


def ec2_world(
    sandbox: Sandbox,
    image: str,
    *,
    network_mode: str,
    desired: int,
    memory: int = 128,
    container_port: int = 8080,
    host_port: int = 0,
    minimum_healthy_percent: int = 50,
    maximum_percent: int = 200,
    asg_provider: bool = False,
) -> World:
    c = sandbox.clients()
    ec2, ecs, elbv2, logs = c["ec2"], c["ecs"], c["elbv2"], c["logs"]
    n = "e" + uuid.uuid4().hex[:8]
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]
    subnets = [subnet["SubnetId"]]
    sg = ec2.create_security_group(GroupName=f"{n}-sg", Description="web", VpcId=vpc)["GroupId"]
    cluster = ecs.create_cluster(clusterName=f"{n}-cluster")["cluster"]["clusterName"]

    ami = next(i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"] if "ecs" in i["Name"])
    instance = ec2.run_instances(
        ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1, SubnetId=subnets[0], SecurityGroupIds=[sg]
    )["Instances"][0]
    register_instance(ecs, cluster, instance, subnet["AvailabilityZone"], ami)
    placing: dict[str, Any] = {"launchType": "EC2"}
    if asg_provider:
        # Capacity from an Auto Scaling group: its instance joins the cluster beside the one above, and the
        # service's strategy names the group's capacity provider.
        autoscaling = c["autoscaling"]
        template = ec2.create_launch_template(
            LaunchTemplateName=f"{n}-lt", LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.small"}
        )["LaunchTemplate"]["LaunchTemplateId"]
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=f"{n}-asg",
            LaunchTemplate={"LaunchTemplateId": template},
            MinSize=1,
            MaxSize=1,
            DesiredCapacity=1,
            VPCZoneIdentifier=subnets[0],
        )
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{n}-asg"])["AutoScalingGroups"][0]
        member = ec2.describe_instances(InstanceIds=[group["Instances"][0]["InstanceId"]])["Reservations"][0]
        register_instance(ecs, cluster, member["Instances"][0], subnet["AvailabilityZone"], ami)
        ecs.create_capacity_provider(
            name=f"{n}-cp", autoScalingGroupProvider={"autoScalingGroupArn": group["AutoScalingGroupARN"]}
        )
        ecs.put_cluster_capacity_providers(
            cluster=cluster, capacityProviders=[f"{n}-cp"], defaultCapacityProviderStrategy=[]
        )
        placing = {"capacityProviderStrategy": [{"capacityProvider": f"{n}-cp", "weight": 1}]}

    log_group = f"/ecs/{n}"
    logs.create_log_group(logGroupName=log_group)
    lb = elbv2.create_load_balancer(Name=f"{n}-alb", Subnets=subnets, SecurityGroups=[sg], Type="application")[
        "LoadBalancers"
    ][0]
    tg, listener_port = quick_target_group(elbv2, f"{n}-tg", vpc, lb["LoadBalancerArn"], target_type="instance")
    family = f"{n}-app"
    mapping = {"containerPort": container_port, "protocol": "tcp"}
    if network_mode == "bridge":
        mapping["hostPort"] = host_port  # 0: dynamic, a port from the instance's ephemeral range
    td = ecs.register_task_definition(
        family=family,
        networkMode=network_mode,
        requiresCompatibilities=["EC2"],
        containerDefinitions=[
            {
                "name": "web",
                "image": image,
                "essential": True,
                "memory": memory,
                "cpu": 128,
                "portMappings": [mapping],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": log_group, "awslogs-region": REGION, "awslogs-stream-prefix": "ecs"},
                },
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    service = ecs.create_service(
        cluster=cluster,
        serviceName=f"{n}-svc",
        taskDefinition=td,
        desiredCount=desired,
        **placing,
        loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": container_port}],
        deploymentConfiguration={"maximumPercent": maximum_percent, "minimumHealthyPercent": minimum_healthy_percent},
    )["service"]["serviceName"]
    return World(
        region=REGION,
        cluster=cluster,
        service=service,
        family=family,
        task_definition_arn=td,
        target_group_arn=tg,
        load_balancer_arn=lb["LoadBalancerArn"],
        dns_name=lb["DNSName"],
        listener_port=listener_port,
        log_group=log_group,
        execution_role_arn="",
        subnets=subnets,
        security_group=sg,
    )


def register_instance(ecs: Any, cluster: str, instance: dict[str, Any], zone: str, ami: str) -> str:
    """Join an EC2 instance to the cluster as its ECS agent would; the container instance ARN."""
    identity = {
        "instanceId": instance["InstanceId"],
        "availabilityZone": zone,
        "privateIp": instance["PrivateIpAddress"],
        "region": REGION,
        "instanceType": "t3.small",
        "imageId": ami,
    }
    # The agent states what the instance offers: a t3.small has 2 vCPU and 2 GiB, less the agent's share.
    return str(
        ecs.register_container_instance(
            cluster=cluster,
            instanceIdentityDocument=json.dumps(identity),
            instanceIdentityDocumentSignature="signature",
            totalResources=[
                {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 1900},
                {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2375", "2376", "51678", "51679"]},
            ],
        )["containerInstance"]["containerInstanceArn"]
    )


def completed(ecs: Any, w: World) -> dict[str, Any]:
    return poll(
        lambda: describe(ecs, w),
        lambda s: len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED",
        60,
        f"the first deployment of {w.service}",
    )


def running_tasks(ecs: Any, w: World) -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"]
    return ecs.describe_tasks(cluster=w.cluster, tasks=arns)["tasks"] if arns else []


def instance_targets(sandbox: Sandbox, w: World) -> set[tuple[str, int, str]]:
    elbv2 = sandbox.clients()["elbv2"]
    out = elbv2.describe_target_health(TargetGroupArn=w.target_group_arn)["TargetHealthDescriptions"]
    return {(d["Target"]["Id"], int(d["Target"]["Port"]), d["TargetHealth"]["State"]) for d in out}


def placement_event(ecs: Any, w: World) -> str:
    """The newest "unable to place a task" event of the service, once ECS has written one."""
    events = poll(
        lambda: [e["message"] for e in describe(ecs, w)["events"] if "unable to place a task" in e["message"]],
        bool,
        30,
        f"a placement event of {w.service}",
    )
    return str(events[0])


def deploy_version(sandbox: Sandbox, w: World, app: App, version: str) -> tuple[str, set[str]]:
    """Once the world's first deployment completed, deploy `version` of hello through the CLI: its output and
    the AWS actions it called, each of them named in README's IAM list (EC2 services need more than Fargate)."""
    completed(sandbox.clients()["ecs"], w)
    app.write_spec(spec_for(w, build_args={"VERSION": version}))
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    actions = assert_iam_listed(sandbox, mark)
    assert served(w) == f"hello {version}"
    return run.text, actions


def deploy_unplaceable(sandbox: Sandbox, w: World, app: App, reason: str = "has insufficient memory available") -> None:
    """Deploy v2 to a world where it cannot be placed: it fails well before its 120 s timeout, event quoted."""
    app.write_spec(spec_for(w, build_args={"VERSION": "v2"}).replace("timeout: 90", "timeout: 120"))
    started = time.monotonic()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), "--no-rollback")
    took = time.monotonic() - started
    assert run.code == 1, run.text
    assert took < 60, f"took {took:.0f}s"
    assert "was unable to place a task because no container instance met all of its requirements" in run.text
    assert reason in run.text


def test_bridge_mode_with_dynamic_host_ports_deploys_behind_an_instance_target_group(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    w = ec2_world(sandbox, hello.get("v1"), network_mode="bridge", desired=2)
    text, _ = deploy_version(sandbox, w, make_app(), "v2")

    ecs = sandbox.clients()["ecs"]
    tasks = running_tasks(ecs, w)
    assert len(tasks) == 2
    (ci,) = {t["containerInstanceArn"] for t in tasks}  # both on the one container instance
    instance = ecs.describe_container_instances(cluster=w.cluster, containerInstances=[ci])["containerInstances"][0]
    instance_id = instance["ec2InstanceId"]
    remaining = {r["name"]: r for r in instance["remainingResources"]}
    assert remaining["MEMORY"]["integerValue"] == 1900 - 2 * 128 and instance["runningTasksCount"] == 2
    bindings = [t["containers"][0]["networkBindings"][0] for t in tasks]
    assert all(b["containerPort"] == 8080 for b in bindings)
    host_ports = {b["hostPort"] for b in bindings}
    assert len(host_ports) == 2 and all(p != 8080 for p in host_ports)  # dynamic, one per task
    assert all(not t.get("attachments") for t in tasks)  # bridge mode: no ENI
    assert {(i, p) for i, p, s in instance_targets(sandbox, w) if s == "healthy"} == {
        (instance_id, p) for p in host_ports
    }
    assert f"target {instance_id}:" in text  # the watch matched its targets by instance id and host port


def test_host_mode_deploys(sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]) -> None:
    # One instance, one port: the old task must stop before the new one fits, which a minimum healthy
    # percent of 0 allows (the ECS guide's advice for host mode).
    w = ec2_world(sandbox, hello.get("v1"), network_mode="host", desired=1, minimum_healthy_percent=0)
    deploy_version(sandbox, w, make_app(), "v3")
    (task,) = running_tasks(sandbox.clients()["ecs"], w)
    binding = task["containers"][0]["networkBindings"][0]
    assert binding["containerPort"] == binding["hostPort"] == 8080
    assert {p for _, p, s in instance_targets(sandbox, w) if s == "healthy"} == {8080}


PORT_TAKEN = "is already using a port required by your task"


def test_bridge_mode_with_a_fixed_host_port_deploys(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    # A fixed host port fits once per instance: with one instance the old task must stop and free the port
    # before the new one is placed, which minimumHealthyPercent 0 with maximumPercent 100 allows.
    w = ec2_world(
        sandbox,
        hello.get("v1"),
        network_mode="bridge",
        desired=1,
        host_port=8080,
        minimum_healthy_percent=0,
        maximum_percent=100,
    )
    text, actions = deploy_version(sandbox, w, make_app(), "v4")
    # The instance id behind the target is read with DescribeContainerInstances, which README's IAM list
    # (checked above) must name: Fargate deploys never call it.
    assert "DescribeContainerInstances" in actions

    ecs = sandbox.clients()["ecs"]
    (task,) = running_tasks(ecs, w)
    binding = task["containers"][0]["networkBindings"][0]
    assert (binding["containerPort"], binding["hostPort"]) == (8080, 8080)
    ci = task["containerInstanceArn"]
    instance = ecs.describe_container_instances(cluster=w.cluster, containerInstances=[ci])["containerInstances"][0]
    ports = {r["name"]: r for r in instance["remainingResources"]}["PORTS"]["stringSetValue"]
    assert "8080" in ports  # a static host port is the instance's to hand out no more
    assert {(i, p) for i, p, s in instance_targets(sandbox, w) if s == "healthy"} == {(instance["ec2InstanceId"], 8080)}
    assert f"target {instance['ec2InstanceId']}:8080" in text


def test_a_second_task_on_a_fixed_host_port_fails_before_the_timeout(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    # Two tasks want host port 8080 on the one instance: ECS places one and says why the other waits. A deploy
    # keeps that old task (minimumHealthyPercent 50 of 2 keeps one healthy), so the port never frees and no
    # new task is ever placed. The old version keeps serving.
    w = ec2_world(sandbox, hello.get("v1"), network_mode="bridge", desired=2, host_port=8080)
    ecs = sandbox.clients()["ecs"]
    assert PORT_TAKEN in placement_event(ecs, w)
    # Healthy first: a task that never served would be stopped to make room, and the new one would fit.
    (instance_id,) = poll(
        lambda: {i for i, p, s in instance_targets(sandbox, w) if s == "healthy" and p == 8080},
        lambda healthy: len(healthy) == 1,
        60,
        "the placed task healthy on port 8080",
    )
    assert len(running_tasks(ecs, w)) == 1
    deploy_unplaceable(sandbox, w, make_app(), PORT_TAKEN)
    assert served(w) == "hello v1"
    assert {(i, p) for i, p, s in instance_targets(sandbox, w)} == {(instance_id, 8080)}


def test_an_auto_scaling_group_capacity_provider_places_on_its_group_only(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    # Two container instances, one of them in the provider's Auto Scaling group: every task, old and new, runs
    # there and names the provider; the deployment records the strategy, not a launch type.
    w = ec2_world(sandbox, hello.get("v1"), network_mode="bridge", desired=2, asg_provider=True)
    ecs, autoscaling = sandbox.clients()["ecs"], sandbox.clients()["autoscaling"]
    (provider,) = ecs.describe_clusters(clusters=[w.cluster])["clusters"][0]["capacityProviders"]
    name = w.cluster.removesuffix("-cluster") + "-asg"
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    members = {i["InstanceId"] for i in group["Instances"]}
    assert len(ecs.list_container_instances(cluster=w.cluster)["containerInstanceArns"]) == 2

    text, _ = deploy_version(sandbox, w, make_app(), "v5")
    tasks = running_tasks(ecs, w)
    assert len(tasks) == 2
    assert {t["capacityProviderName"] for t in tasks} == {provider}
    assert {t["launchType"] for t in tasks} == {"EC2"}
    on = [t["containerInstanceArn"] for t in tasks]
    cis = ecs.describe_container_instances(cluster=w.cluster, containerInstances=on)
    assert {ci["ec2InstanceId"] for ci in cis["containerInstances"]} <= members and len(members) == 1
    svc = describe(ecs, w)
    assert "launchType" not in svc and svc["capacityProviderStrategy"][0]["capacityProvider"] == provider
    assert svc["deployments"][0]["capacityProviderStrategy"][0]["capacityProvider"] == provider
    assert "healthy" in text


def test_a_task_no_instance_can_hold_fails_before_the_timeout(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    w = ec2_world(sandbox, hello.get("v1"), network_mode="bridge", desired=1, memory=4096)
    ecs = sandbox.clients()["ecs"]
    assert "has insufficient memory available" in placement_event(ecs, w)
    deploy_unplaceable(sandbox, w, make_app())
    assert running_tasks(ecs, w) == []
    stopped = ecs.list_tasks(cluster=w.cluster, serviceName=w.service, desiredStatus="STOPPED")["taskArns"]
    assert stopped == []


def test_a_full_instance_that_must_keep_its_old_task_fails_before_the_timeout(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    # The instance holds one task and minimumHealthyPercent 100 forbids stopping the old one first: the rolling
    # scheduler keeps it for good and the new task can never be placed. The old version keeps serving.
    w = ec2_world(sandbox, hello.get("v1"), network_mode="bridge", desired=1, memory=1200, minimum_healthy_percent=100)
    ecs = sandbox.clients()["ecs"]
    completed(ecs, w)
    deploy_unplaceable(sandbox, w, make_app())
    active = [d for d in describe(ecs, w)["deployments"] if d["status"] == "ACTIVE"]
    assert [(d["desiredCount"], d["runningCount"]) for d in active] == [(1, 1)]
    assert served(w) == "hello v1"
