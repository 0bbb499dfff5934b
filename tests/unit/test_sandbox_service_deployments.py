"""The sandbox's service deployments API through plain boto3, on services that run no task.

The rollouts with real tasks (rollbacks, stops, superseded deployments) are in tests/e2e/test_service_deployments.py.
"""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.exceptions
import pytest

from tests.sandbox.ledger import is_write
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.service_deployments import History, breaker_threshold, configuration_of
from tests.sandbox.services import free_port


@pytest.fixture
def ecs(sandbox: Sandbox) -> Any:
    """The session's sandbox: moto's backends are process-wide, so a second simulator in the same process (as
    a suite that also runs end-to-end tests has) cannot be started beside it."""
    return sandbox.clients()["ecs"]


def _service(ecs: Any) -> tuple[str, str, str]:
    """A service of no task: each of its deployments completes at once. (cluster, service, task definition)"""
    cluster = "c" + uuid.uuid4().hex[:8]
    ecs.create_cluster(clusterName=cluster)
    td = ecs.register_task_definition(
        family=cluster, containerDefinitions=[{"name": "web", "image": "img:1", "memory": 64}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName="s", taskDefinition=td, desiredCount=0, launchType="FARGATE")
    return cluster, "s", td


def _wait(ecs: Any, cluster: str, service: str, n: int) -> list[dict[str, Any]]:
    """The service's `n` deployments once all succeeded (bounded: a few simulator ticks)."""
    deadline = time.monotonic() + 10
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = ecs.list_service_deployments(cluster=cluster, service=service)["serviceDeployments"]
        if len(found) == n and all(b["status"] == "SUCCESSFUL" for b in found):
            return found
        time.sleep(0.05)
    raise AssertionError(f"{n} successful service deployments never showed: {found}")


def _error(call: Any) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call()
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def test_every_deployment_is_a_service_deployment_listed_newest_first(ecs: Any) -> None:
    cluster, service, td = _service(ecs)
    [first] = _wait(ecs, cluster, service, 1)
    svc = ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)["service"]
    assert svc["currentServiceDeployment"] != first["serviceDeploymentArn"]
    assert svc["currentServiceDeployment"].startswith(
        f"arn:aws:ecs:us-east-1:123456789012:service-deployment/{cluster}/{service}/"
    )
    newest, oldest = _wait(ecs, cluster, service, 2)
    assert [newest["serviceDeploymentArn"], oldest["serviceDeploymentArn"]] == [
        svc["currentServiceDeployment"],
        first["serviceDeploymentArn"],
    ]
    sd = ecs.describe_service_deployments(serviceDeploymentArns=[newest["serviceDeploymentArn"]])["serviceDeployments"][
        0
    ]
    assert [r["arn"] for r in sd["sourceServiceRevisions"]] == [first["targetServiceRevisionArn"]]
    assert sd["targetServiceRevision"]["arn"] == newest["targetServiceRevisionArn"]
    assert sd["createdAt"] <= sd["startedAt"] <= sd["finishedAt"]
    revision = ecs.describe_service_revisions(serviceRevisionArns=[newest["targetServiceRevisionArn"]])[
        "serviceRevisions"
    ][0]
    assert revision["taskDefinition"] == td and revision["launchType"] == "FARGATE"
    assert revision["containerImages"] == [{"containerName": "web", "image": "img:1"}]
    described = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    assert described["currentServiceDeployment"] == newest["serviceDeploymentArn"]
    assert [r["arn"] for r in described["currentServiceRevisions"]] == [newest["targetServiceRevisionArn"]]


def test_filters_and_pages(ecs: Any) -> None:
    cluster, service, _ = _service(ecs)
    _wait(ecs, cluster, service, 1)
    for n in (2, 3):
        ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
        every = [b["serviceDeploymentArn"] for b in _wait(ecs, cluster, service, n)]
    arns: list[str] = []
    kw: dict[str, Any] = {"cluster": cluster, "service": service, "maxResults": 2}
    while True:
        page = ecs.list_service_deployments(**kw)
        arns += [b["serviceDeploymentArn"] for b in page["serviceDeployments"]]
        if "nextToken" not in page:
            break
        kw["nextToken"] = page["nextToken"]
    assert arns == every
    stopped = ecs.list_service_deployments(cluster=cluster, service=service, status=["STOPPED"])
    assert stopped["serviceDeployments"] == []
    oldest = ecs.describe_service_deployments(serviceDeploymentArns=[every[-1]])["serviceDeployments"][0]
    after = ecs.list_service_deployments(cluster=cluster, service=service, createdAt={"after": oldest["createdAt"]})
    assert [b["serviceDeploymentArn"] for b in after["serviceDeployments"]] == every[:2]
    code, _ = _error(lambda: ecs.list_service_deployments(cluster=cluster, service=service, maxResults=101))
    assert code == "InvalidParameterException"
    code, _ = _error(lambda: ecs.list_service_deployments(cluster=cluster, service="nope"))
    assert code == "ServiceNotFoundException"


def test_unknown_arns_are_missing_and_finished_deployments_cannot_stop(ecs: Any) -> None:
    cluster, service, _ = _service(ecs)
    [first] = _wait(ecs, cluster, service, 1)
    unknown = first["serviceDeploymentArn"] + "x"
    out = ecs.describe_service_deployments(serviceDeploymentArns=[unknown])
    assert out["serviceDeployments"] == [] and out["failures"] == [{"arn": unknown, "reason": "MISSING"}]
    code, message = _error(lambda: ecs.stop_service_deployment(serviceDeploymentArn=first["serviceDeploymentArn"]))
    assert code == "ConflictException" and "SUCCESSFUL" in message
    code, _ = _error(lambda: ecs.stop_service_deployment(serviceDeploymentArn=unknown))
    assert code == "ServiceDeploymentNotFoundException"


def test_stopping_is_a_write_and_listing_is_not() -> None:
    assert is_write("StopServiceDeployment")
    assert not any(is_write(a) for a in ("ListServiceDeployments", "DescribeServiceDeployments"))


def test_a_newer_deployment_stops_the_one_under_way() -> None:
    view: Any = SimpleNamespace(
        key=SimpleNamespace(account="1", region="r", cluster="c", name="s"),
        arn="svc",
        cluster_arn="cl",
        launch_type="FARGATE",
        capacity_provider_strategy=(),
        load_balancers=[],
        network_configuration={},
        circuit_breaker={"enable": True, "rollback": True},
        maximum_percent=200,
        minimum_healthy_percent=100,
        deployment_configuration={},
    )
    history = History()
    one = history.new_revision(view, "td:1", [])
    first = history.begin(view, one, [], "ecs-svc/1", configuration_of(view), 3)
    history.started(first)
    two = history.new_revision(view, "td:2", [])
    second = history.begin(view, two, [one.arn], "ecs-svc/2", configuration_of(view), 3)
    assert first.status == "STOPPED" and "newer" in first.status_reason and first.stopped is not None
    assert second.status == "PENDING" and second.sources == [one.arn]
    assert history.api(first)["deploymentCircuitBreaker"]["status"] == "MONITORING_COMPLETE"
    breaker = history.api(second)["deploymentCircuitBreaker"]
    assert breaker == {"status": "MONITORING", "failureCount": 0, "threshold": 3}


def _until(read: Any, ok: Any) -> Any:
    deadline = time.monotonic() + 10
    value = read()
    while not ok(value):
        assert time.monotonic() < deadline, f"never reached: {value}"
        time.sleep(0.05)
        value = read()
    return value


def test_pause_hook_holds_until_continue_service_deployment(ecs: Any) -> None:
    cluster = "c" + uuid.uuid4().hex[:8]
    ecs.create_cluster(clusterName=cluster)
    td = ecs.register_task_definition(
        family=cluster, containerDefinitions=[{"name": "web", "image": "img:1", "memory": 64}]
    )["taskDefinition"]["taskDefinitionArn"]
    hook = {"targetType": "PAUSE", "lifecycleStages": ["PRE_SCALE_UP"]}
    lambda_hook = {"lifecycleStages": ["PRE_SCALE_UP"], "hookTargetArn": "arn:aws:lambda:us-east-1:1:function:f"}
    create: dict[str, Any] = {"cluster": cluster, "serviceName": "s", "taskDefinition": td, "desiredCount": 0}
    code, message = _error(
        lambda: ecs.create_service(
            **create,
            deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0, "lifecycleHooks": [lambda_hook]},
        )
    )
    assert code == "InvalidParameterException" and "Lambda" in message
    assert ecs.describe_services(cluster=cluster, services=["s"])["services"] == []
    code, message = _error(
        lambda: ecs.create_service(
            **create,
            loadBalancers=[{"targetGroupArn": "arn:tg", "containerName": "web", "containerPort": 80}],
            deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0},
        )
    )
    assert code == "InvalidParameterException" and "alternateTargetGroupArn" in message

    svc = ecs.create_service(
        **create, deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0, "lifecycleHooks": [hook]}
    )["service"]
    conf = svc["deploymentConfiguration"]
    assert conf["strategy"] == "BLUE_GREEN" and conf["lifecycleHooks"][0]["timeoutConfiguration"] == {
        "timeoutInMinutes": 1440,
        "action": "ROLLBACK",
    }
    arn = ecs.describe_services(cluster=cluster, services=["s"])["services"][0]["currentServiceDeployment"]

    def read() -> dict[str, Any]:
        return dict(ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0])

    held = _until(read, lambda sd: sd["status"] == "IN_PROGRESS" and sd.get("lifecycleHookDetails"))
    assert held["lifecycleStage"] == "PRE_SCALE_UP" and held["deploymentConfiguration"]["strategy"] == "BLUE_GREEN"
    [detail] = held["lifecycleHookDetails"]
    assert detail["status"] == "AWAITING_ACTION" and detail["timeoutAction"] == "ROLLBACK"
    code, _ = _error(lambda: ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId="nope"))
    assert code == "InvalidParameterException"
    code, _ = _error(lambda: ecs.continue_service_deployment(serviceDeploymentArn=arn + "x", hookId=detail["hookId"]))
    assert code == "ServiceDeploymentNotFoundException"
    assert read()["status"] == "IN_PROGRESS"
    out = ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=detail["hookId"])
    assert out["serviceDeploymentArn"] == arn
    done = _until(read, lambda sd: sd["status"] == "SUCCESSFUL")
    assert done["lifecycleStage"] == "CLEAN_UP"
    code, _ = _error(lambda: ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=detail["hookId"]))
    assert code == "ClientException"


def test_blue_green_service_keeps_its_advanced_configuration_and_owns_the_production_rule(ecs: Any) -> None:
    kw = {
        "endpoint_url": ecs.meta.endpoint_url,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    ec2, elbv2 = boto3.client("ec2", **kw), boto3.client("elbv2", **kw)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    lb = elbv2.create_load_balancer(Name="lb" + uuid.uuid4().hex[:6], Subnets=subnets)["LoadBalancers"][0]
    blue, green = (
        elbv2.create_target_group(Name=n + uuid.uuid4().hex[:6], Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        for n in ("blue", "green")
    )
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=free_port(),  # the sandbox's ALB listens on it for real
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    )["Listeners"][0]["ListenerArn"]
    rule = elbv2.create_rule(
        ListenerArn=listener,
        Priority=1,
        Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": blue}],
    )["Rules"][0]["RuleArn"]
    cluster = "c" + uuid.uuid4().hex[:8]
    ecs.create_cluster(clusterName=cluster)
    td = ecs.register_task_definition(
        family=cluster, containerDefinitions=[{"name": "web", "image": "img:1", "memory": 64}]
    )["taskDefinition"]["taskDefinitionArn"]
    advanced = {"alternateTargetGroupArn": green, "productionListenerRule": rule, "roleArn": "arn:aws:iam::1:role/r"}
    lbs = [{"targetGroupArn": blue, "containerName": "web", "containerPort": 80, "advancedConfiguration": advanced}]
    create: dict[str, Any] = {"cluster": cluster, "serviceName": "s", "taskDefinition": td, "desiredCount": 0}
    conf = {"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 25.0}}
    missing = [{**lbs[0], "advancedConfiguration": {**advanced, "productionListenerRule": rule + "x"}}]
    code, message = _error(lambda: ecs.create_service(**create, loadBalancers=missing, deploymentConfiguration=conf))
    assert code == "InvalidParameterException" and "productionListenerRule" in message

    ecs.create_service(**create, loadBalancers=lbs, deploymentConfiguration=conf)
    svc = ecs.describe_services(cluster=cluster, services=["s"])["services"][0]
    assert svc["loadBalancers"][0]["advancedConfiguration"] == advanced
    assert svc["deploymentConfiguration"]["linearConfiguration"] == {"stepPercent": 25.0, "stepBakeTimeInMinutes": 6}
    arn = svc["currentServiceDeployment"]

    def read() -> dict[str, Any]:
        return dict(ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0])

    assert _until(read, lambda sd: sd["status"] == "SUCCESSFUL")["lifecycleStage"] == "CLEAN_UP"
    # With no blue task the first deployment moves no traffic, but ECS owns the rule now: both groups, weighted.
    [described] = elbv2.describe_rules(RuleArns=[rule])["Rules"]
    groups = described["Actions"][0]["ForwardConfig"]["TargetGroups"]
    assert [(g["TargetGroupArn"], g["Weight"]) for g in groups] == [(green, 0), (blue, 1)]
    # UpdateService checks a new configuration against the load balancers the service keeps.
    code, _ = _error(
        lambda: ecs.update_service(cluster=cluster, service="s", deploymentConfiguration={"strategy": "BLUE_GREEN"})
    )
    assert code == "InvalidParameterException"
    ecs.update_service(cluster=cluster, service="s", deploymentConfiguration={"strategy": "CANARY"})
    svc = ecs.describe_services(cluster=cluster, services=["s"])["services"][0]
    assert svc["deploymentConfiguration"]["canaryConfiguration"] == {
        "canaryPercent": 5.0,
        "canaryBakeTimeInMinutes": 10,
    }
    assert svc["loadBalancers"][0]["advancedConfiguration"] == advanced


@pytest.mark.parametrize(
    ("threshold", "desired", "want"),
    [
        (None, 1, 3),  # ECS's default, BOUNDED_PERCENT 50: never under 3
        (None, 10, 5),
        (None, 1000, 200),  # nor over 200
        ({"type": "BOUNDED_PERCENT", "value": 20}, 30, 6),
        ({"type": "UNBOUNDED_PERCENT", "value": 50}, 1000, 500),
        ({"type": "UNBOUNDED_PERCENT", "value": 50}, 1, 1),
        ({"type": "COUNT", "value": 1}, 100, 1),
        ({"type": "COUNT", "value": 250}, 1, 250),
    ],
)
def test_the_breaker_threshold_follows_its_threshold_configuration(
    threshold: dict[str, Any] | None, desired: int, want: int
) -> None:
    breaker: dict[str, Any] = {"enable": True, "rollback": True}
    if threshold is not None:
        breaker["thresholdConfiguration"] = threshold
    assert breaker_threshold({"deploymentCircuitBreaker": breaker}, desired) == want
