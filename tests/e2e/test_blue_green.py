"""ECS blue/green and canary service deployments through plain boto3: worlds built, deployed and read as a user
of the AWS API would, against the sandbox's simulator (bake minutes last a second there).

A blue/green deployment starts green in the alternate target group, walks its lifecycle stages, shifts the
production listener rule's weighted forward to green, keeps blue through the bake time, then stops it; a
failing green rolls back with blue serving throughout; a PAUSE hook holds its stage until
ContinueServiceDeployment; a canary sends its share of production traffic to green.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.session
import requests

from tests.conftest import HelloImages
from tests.e2e.conftest import Hammer, TaskFamily, execution_role, poll, quick_group, register_revision
from tests.sandbox.bootstrap import CONTAINER, CONTAINER_PORT
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.services import free_port

# The API's order of stages (ServiceDeploymentLifecycleStage).
ORDER = list(botocore.session.get_session().get_service_model("ecs").shape_for("ServiceDeploymentLifecycleStage").enum)
ORDER.insert(ORDER.index("PRODUCTION_TRAFFIC_SHIFT"), "PRE_PRODUCTION_TRAFFIC_SHIFT")


@dataclass(frozen=True)
class BlueGreenWorld:
    region: str
    cluster: str
    service: str
    family: str
    execution_role_arn: str
    log_group: str
    blue: str  # targetGroupArn
    green: str  # alternateTargetGroupArn
    production_rule: str
    test_rule: str | None
    url: str
    test_url: str | None


def _forward(blue: str, green: str) -> list[dict[str, Any]]:
    return [
        {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": blue, "Weight": 1}, {"TargetGroupArn": green, "Weight": 0}]
            },
        }
    ]


def _listener_rule(elbv2: Any, lb: str, blue: str, green: str) -> tuple[str, int]:
    port = free_port()
    listener = elbv2.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port=port,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    )["Listeners"][0]["ListenerArn"]
    rule = elbv2.create_rule(
        ListenerArn=listener,
        Priority=1,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}],
        Actions=_forward(blue, green),
    )["Rules"][0]["RuleArn"]
    return str(rule), port


def _world(sandbox: Sandbox, image: str, conf: dict[str, Any], *, test_listener: bool) -> BlueGreenWorld:
    c = sandbox.clients()
    ec2, ecs, elbv2, iam, logs = c["ec2"], c["ecs"], c["elbv2"], c["iam"], c["logs"]
    n = "bg" + uuid.uuid4().hex[:6]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    sg = ec2.create_security_group(GroupName=f"{n}-sg", Description="web", VpcId=vpc)["GroupId"]
    cluster = ecs.create_cluster(clusterName=n)["cluster"]["clusterName"]
    role = execution_role(iam, f"{n}-exec")
    logs.create_log_group(logGroupName=f"/ecs/{n}")
    lb = elbv2.create_load_balancer(Name=f"{n}-alb", Subnets=subnets, SecurityGroups=[sg], Type="application")[
        "LoadBalancers"
    ][0]
    blue, green = quick_group(elbv2, f"{n}-blue", vpc), quick_group(elbv2, f"{n}-green", vpc)
    production, port = _listener_rule(elbv2, lb["LoadBalancerArn"], blue, green)
    test, test_port = _listener_rule(elbv2, lb["LoadBalancerArn"], blue, green) if test_listener else (None, 0)
    advanced = {
        "alternateTargetGroupArn": green,
        "productionListenerRule": production,
        "roleArn": f"arn:aws:iam::123456789012:role/{n}-elb",
    }
    if test:
        advanced["testListenerRule"] = test
    family = f"{n}-app"
    td = register_revision(ecs, TaskFamily(family, role, f"/ecs/{n}", "us-east-1"), image)
    ecs.create_service(
        cluster=cluster,
        serviceName=n,
        taskDefinition=td,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}},
        loadBalancers=[
            {
                "targetGroupArn": blue,
                "containerName": CONTAINER,
                "containerPort": CONTAINER_PORT,
                "advancedConfiguration": advanced,
            }
        ],
        deploymentConfiguration=conf,
    )
    w = BlueGreenWorld(
        region="us-east-1",
        cluster=cluster,
        service=n,
        family=family,
        execution_role_arn=role,
        log_group=f"/ecs/{n}",
        blue=blue,
        green=green,
        production_rule=production,
        test_rule=test,
        url=f"http://{lb['DNSName']}:{port}",
        test_url=f"http://{lb['DNSName']}:{test_port}" if test else None,
    )
    # A PAUSE hook holds the new service's first deployment too: let it go.
    _finish(ecs, w, "SUCCESSFUL", answer=lambda sd: _continue_all(ecs, sd))
    return w


def _continue_all(ecs: Any, sd: dict[str, Any]) -> None:
    for hook in sd.get("lifecycleHookDetails") or []:
        if hook["status"] == "AWAITING_ACTION":
            ecs.continue_service_deployment(serviceDeploymentArn=sd["serviceDeploymentArn"], hookId=hook["hookId"])


def _deploy(ecs: Any, w: BlueGreenWorld, image: str) -> str:
    """A new revision of `image`, deployed with a plain UpdateService: its service deployment's ARN."""
    svc = ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=register_revision(ecs, w, image))
    return str(svc["service"]["currentServiceDeployment"])


def _current(ecs: Any, w: BlueGreenWorld) -> str:
    svc = ecs.describe_services(cluster=w.cluster, services=[w.service])["services"][0]
    return str(svc["currentServiceDeployment"])


def _sd(ecs: Any, arn: str) -> dict[str, Any]:
    return dict(ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0])


def _finish(
    ecs: Any, w: BlueGreenWorld, want: str, timeout: float = 60, answer: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    done = ("SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")

    def read() -> dict[str, Any]:
        sd = _sd(ecs, _current(ecs, w))
        if answer is not None:
            answer(sd)
        return sd

    sd = poll(read, lambda s: s["status"] in done, timeout, "the deployment to end")
    assert sd["status"] == want, sd
    return sd


def _stages(ecs: Any, arn: str, until: str, timeout: float = 60) -> list[str]:
    """The lifecycle stages seen, in order, until the deployment's status is `until`."""
    seen: list[str] = []

    def read() -> dict[str, Any]:
        sd = _sd(ecs, arn)
        if sd.get("lifecycleStage") and (not seen or seen[-1] != sd["lifecycleStage"]):
            seen.append(sd["lifecycleStage"])
        return sd

    poll(read, lambda sd: sd["status"] == until, timeout, f"status {until}")
    return seen


def _weights(elbv2: Any, rule: str) -> dict[str, int]:
    [described] = elbv2.describe_rules(RuleArns=[rule])["Rules"]
    forward = next(a for a in described["Actions"] if a["Type"] == "forward")
    return {g["TargetGroupArn"]: g["Weight"] for g in forward["ForwardConfig"]["TargetGroups"]}


def _registered(elbv2: Any, tg: str) -> list[str]:
    return [
        d["TargetHealth"]["State"] for d in elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    ]


def _get(url: str) -> str:
    return requests.get(url + "/", timeout=5).text.strip()


def test_blue_green_shifts_production_to_green_then_stops_blue(sandbox: Sandbox, hello: HelloImages) -> None:
    w = _world(sandbox, hello.get("v1"), {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 2}, test_listener=True)
    c = sandbox.clients()
    ecs, elbv2 = c["ecs"], c["elbv2"]
    assert _get(w.url) == "hello v1" and _registered(elbv2, w.green) == []
    svc = ecs.describe_services(cluster=w.cluster, services=[w.service])["services"][0]
    assert svc["deploymentConfiguration"]["strategy"] == "BLUE_GREEN"
    assert svc["loadBalancers"][0]["advancedConfiguration"]["alternateTargetGroupArn"] == w.green

    arn = _deploy(ecs, w, hello.get("v2"))
    poll(lambda: _sd(ecs, arn), lambda sd: sd.get("lifecycleStage") == "BAKE_TIME", 60, "the bake time")
    # Green took production and test traffic; blue still runs, registered where it was.
    assert _weights(elbv2, w.production_rule) == {w.blue: 0, w.green: 1}
    assert _weights(elbv2, w.test_rule or "") == {w.blue: 0, w.green: 1}
    assert _registered(elbv2, w.green) == ["healthy"] and _registered(elbv2, w.blue) == ["healthy"]
    assert {_get(w.url) for _ in range(10)} == {"hello v2"}
    stages = _stages(ecs, arn, "SUCCESSFUL")
    assert stages[-2:] == ["BAKE_TIME", "CLEAN_UP"]
    poll(lambda: _registered(elbv2, w.blue), lambda s: s == [], 30, "blue to leave its target group")
    assert _get(w.url) == "hello v2"

    # The next deployment goes the other way: green is now the production group.
    arn3 = _deploy(ecs, w, hello.get("v3"))
    stages = _stages(ecs, arn3, "SUCCESSFUL")
    # Stages without a wait may pass between two polls; those seen come in the API's order, and the ones that
    # wait (green starting, the bake time, blue stopping) are seen.
    assert stages == sorted(stages, key=ORDER.index)
    assert {"SCALE_UP", "BAKE_TIME", "CLEAN_UP"} <= set(stages)
    assert _weights(elbv2, w.production_rule) == {w.green: 0, w.blue: 1}
    assert _get(w.url) == "hello v3"


def test_failing_green_rolls_back_with_blue_serving(sandbox: Sandbox, hello: HelloImages) -> None:
    conf = {
        "strategy": "BLUE_GREEN",
        "bakeTimeInMinutes": 1,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
    }
    w = _world(sandbox, hello.get("v1"), conf, test_listener=False)
    c = sandbox.clients()
    ecs, elbv2 = c["ecs"], c["elbv2"]
    hammer = Hammer(w.url + "/", seconds=90)
    hammer.start()
    try:
        _deploy(ecs, w, hello.get("v2", health="500"))
        sd = _finish(ecs, w, "ROLLBACK_SUCCESSFUL", timeout=90)
        hammer.wait_answers(5)
    finally:
        hammer.stop()
    assert sd["lifecycleStage"] == "SCALE_UP" and sd["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    assert set(hammer.bodies) == {"hello v1"} and hammer.failures == []
    assert _weights(elbv2, w.production_rule) == {w.blue: 1, w.green: 0}
    poll(lambda: _registered(elbv2, w.green), lambda s: s == [], 30, "green to leave")


def test_pause_hook_holds_until_continue(sandbox: Sandbox, hello: HelloImages) -> None:
    conf = {
        "strategy": "BLUE_GREEN",
        "bakeTimeInMinutes": 0,
        "lifecycleHooks": [
            {
                "targetType": "PAUSE",
                "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
                "timeoutConfiguration": {"timeoutInMinutes": 600, "action": "ROLLBACK"},
            }
        ],
    }
    w = _world(sandbox, hello.get("v1"), conf, test_listener=True)
    c = sandbox.clients()
    ecs, elbv2 = c["ecs"], c["elbv2"]
    arn = _deploy(ecs, w, hello.get("v2"))
    sd = poll(lambda: _sd(ecs, arn), lambda s: s.get("lifecycleStage") == "POST_TEST_TRAFFIC_SHIFT", 60, "the hook")
    [hook] = sd["lifecycleHookDetails"]
    assert hook["status"] == "AWAITING_ACTION" and hook["targetType"] == "PAUSE" and hook["timeoutAction"] == "ROLLBACK"
    # Held: test traffic on green, production still on blue.
    assert _get(w.test_url or "") == "hello v2" and _get(w.url) == "hello v1"
    assert _sd(ecs, arn)["lifecycleStage"] == "POST_TEST_TRAFFIC_SHIFT"
    ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action="CONTINUE")
    _stages(ecs, arn, "SUCCESSFUL")
    assert _get(w.url) == "hello v2" and _weights(elbv2, w.production_rule)[w.green] == 1


def test_canary_sends_its_share_to_green(sandbox: Sandbox, hello: HelloImages) -> None:
    conf = {
        "strategy": "CANARY",
        "bakeTimeInMinutes": 0,
        "canaryConfiguration": {"canaryPercent": 30.0, "canaryBakeTimeInMinutes": 60},
    }
    w = _world(sandbox, hello.get("v1"), conf, test_listener=False)
    c = sandbox.clients()
    ecs, elbv2 = c["ecs"], c["elbv2"]
    arn = _deploy(ecs, w, hello.get("v2"))
    poll(lambda: _sd(ecs, arn), lambda s: s.get("lifecycleStage") == "PRODUCTION_TRAFFIC_SHIFT", 60, "the canary")
    assert _weights(elbv2, w.production_rule) == {w.blue: 700, w.green: 300}
    seen = Counter(_get(w.url) for _ in range(200))
    assert set(seen) == {"hello v1", "hello v2"} and 30 <= seen["hello v2"] <= 100, seen
    ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    sd = _finish(ecs, w, "ROLLBACK_SUCCESSFUL")
    assert sd["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT"
    assert {_get(w.url) for _ in range(10)} == {"hello v1"}
