"""ECS service deployments and revisions of rolling deployments, read and stopped through plain boto3.

Every deployment a user starts is a service deployment (PENDING -> IN_PROGRESS -> SUCCESSFUL) rolling out a
new service revision; a newer one stops it; a circuit-breaker or user rollback is recorded on the deployment
that failed (ROLLBACK_REQUESTED -> ROLLBACK_IN_PROGRESS -> ROLLBACK_SUCCESSFUL) naming the revision restored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions
import pytest

from tests.conftest import HelloImages
from tests.e2e.conftest import completed, describe, poll, register_revision, served
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox

TERMINAL = ("SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")


def _listed(ecs: Any, w: World, **kw: Any) -> list[dict[str, Any]]:
    return list(ecs.list_service_deployments(cluster=w.cluster, service=w.service, **kw)["serviceDeployments"])


def _one(ecs: Any, arn: str) -> dict[str, Any]:
    return dict(ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0])


def _follow(ecs: Any, arn: str, until: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> list[str]:
    """Poll the service deployment until `until` holds; return the statuses seen, in order, without repeats."""
    seen: list[str] = []

    def read() -> dict[str, Any]:
        sd = _one(ecs, arn)
        if not seen or seen[-1] != sd["status"]:
            seen.append(sd["status"])
        return sd

    poll(read, until, timeout, what)
    return seen


def _counts(summary: dict[str, Any]) -> tuple[int, int, int]:
    return summary["requestedTaskCount"], summary["runningTaskCount"], summary["pendingTaskCount"]


def _conflict(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call()
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def test_forced_deployment_goes_in_progress_then_successful(
    sandbox: Sandbox, make_world: Callable[..., World], hello: HelloImages
) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    [first] = _listed(ecs, w)
    assert first["status"] == "SUCCESSFUL" and "finishedAt" in first
    assert describe(ecs, w)["currentServiceDeployment"] == first["serviceDeploymentArn"]

    svc = ecs.update_service(cluster=w.cluster, service=w.service, forceNewDeployment=True)["service"]
    arn = svc["currentServiceDeployment"]
    assert arn != first["serviceDeploymentArn"]
    assert arn.startswith(f"arn:aws:ecs:{w.region}:123456789012:service-deployment/{w.cluster}/{w.service}/")
    seen = _follow(ecs, arn, lambda sd: sd["status"] in TERMINAL, 60, "the forced deployment to finish")
    assert seen[-1] == "SUCCESSFUL" and "IN_PROGRESS" in seen
    assert set(seen) <= {"PENDING", "IN_PROGRESS", "SUCCESSFUL"}

    sd = _one(ecs, arn)
    assert [s["arn"] for s in sd["sourceServiceRevisions"]] == [first["targetServiceRevisionArn"]]
    assert _counts(sd["sourceServiceRevisions"][0]) == (0, 0, 0)  # the old task is gone when it finished
    target = sd["targetServiceRevision"]
    assert target["arn"] != first["targetServiceRevisionArn"] and _counts(target) == (1, 1, 0)
    assert sd["startedAt"] <= sd["finishedAt"] and "stoppedAt" not in sd and "rollback" not in sd
    assert sd["deploymentCircuitBreaker"]["status"] == "DISABLED"
    assert sd["deploymentConfiguration"]["minimumHealthyPercent"] == 100

    revision = ecs.describe_service_revisions(serviceRevisionArns=[target["arn"]])["serviceRevisions"][0]
    assert revision["taskDefinition"] == w.task_definition_arn and revision["launchType"] == "FARGATE"
    assert [lb["targetGroupArn"] for lb in revision["loadBalancers"]] == [w.target_group_arn]
    image = revision["containerImages"][0]
    assert image["image"] == hello.get("v1") and image["imageDigest"].startswith("sha256:")
    assert revision["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == w.subnets

    # Newest first, filtered by status and creation time, paged.
    assert [b["serviceDeploymentArn"] for b in _listed(ecs, w)] == [arn, first["serviceDeploymentArn"]]
    assert len(_listed(ecs, w, status=["SUCCESSFUL"])) == 2 and _listed(ecs, w, status=["IN_PROGRESS"]) == []
    assert [b["serviceDeploymentArn"] for b in _listed(ecs, w, createdAt={"after": first["createdAt"]})] == [arn]
    page = ecs.list_service_deployments(cluster=w.cluster, service=w.service, maxResults=1)
    rest = ecs.list_service_deployments(cluster=w.cluster, service=w.service, maxResults=1, nextToken=page["nextToken"])
    paged = [p["serviceDeployments"][0]["serviceDeploymentArn"] for p in (page, rest)]
    assert paged == [arn, first["serviceDeploymentArn"]]
    assert "nextToken" not in rest
    assert describe(ecs, w)["currentServiceRevisions"] == [
        {"arn": target["arn"], "requestedTaskCount": 1, "runningTaskCount": 1, "pendingTaskCount": 0}
    ]


def test_a_container_without_version_consistency_gets_no_resolved_digest(
    sandbox: Sandbox, make_world: Callable[..., World], hello: HelloImages
) -> None:
    """versionConsistency "disabled": ECS resolves no digest for the revision (each task pulls the tag)."""
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    td = register_revision(ecs, w, hello.get("v2"), versionConsistency="disabled")
    arn = ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=td)["service"][
        "currentServiceDeployment"
    ]
    _follow(ecs, arn, lambda sd: sd["status"] in TERMINAL, 60, "the deployment to finish")
    revision = _one(ecs, arn)["targetServiceRevision"]["arn"]
    [image] = ecs.describe_service_revisions(serviceRevisionArns=[revision])["serviceRevisions"][0]["containerImages"]
    assert image["image"] == hello.get("v2") and "imageDigest" not in image
    assert served(w) == "hello v2"


def test_newer_deployment_stops_the_one_in_progress(
    sandbox: Sandbox, make_world: Callable[..., World], hello: HelloImages
) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    [first] = _listed(ecs, w)
    td_bad = register_revision(ecs, w, hello.get("v2", health="500"))  # never healthy: stays in progress
    bad = ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=td_bad)["service"]
    _follow(ecs, bad["currentServiceDeployment"], lambda sd: sd["status"] == "IN_PROGRESS", 30, "in progress")

    good = ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=w.task_definition_arn)["service"]
    stopped = _one(ecs, bad["currentServiceDeployment"])
    assert stopped["status"] == "STOPPED" and "newer" in stopped["statusReason"]
    assert "stoppedAt" in stopped
    _follow(ecs, good["currentServiceDeployment"], lambda sd: sd["status"] == "SUCCESSFUL", 60, "the newer one")
    newer = _one(ecs, good["currentServiceDeployment"])
    bad_revision = stopped["targetServiceRevision"]["arn"]
    assert {s["arn"] for s in newer["sourceServiceRevisions"]} == {bad_revision, first["targetServiceRevisionArn"]}
    assert [b["status"] for b in _listed(ecs, w)] == ["SUCCESSFUL", "STOPPED", "SUCCESSFUL"]
    assert [b["serviceDeploymentArn"] for b in _listed(ecs, w, status=["STOPPED"])] == [stopped["serviceDeploymentArn"]]
    assert served(w) == "hello v1"


def test_circuit_breaker_rollback_is_recorded_on_the_failed_deployment(
    sandbox: Sandbox, make_world: Callable[..., World], hello: HelloImages
) -> None:
    w = make_world(circuit_breaker=True, rollback=True)
    ecs = sandbox.clients()["ecs"]
    [first] = _listed(ecs, w)
    td_bad = register_revision(ecs, w, hello.get("v3", health="500"))
    svc = ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=td_bad)["service"]
    arn, legacy_id = svc["currentServiceDeployment"], svc["deployments"][0]["id"]

    seen = _follow(ecs, arn, lambda sd: sd["status"] in TERMINAL, 120, "the breaker's rollback to finish")
    assert seen[-1] == "ROLLBACK_SUCCESSFUL" and "IN_PROGRESS" in seen
    assert "ROLLBACK_IN_PROGRESS" in seen and "SUCCESSFUL" not in seen
    sd = _one(ecs, arn)
    assert sd["rollback"]["serviceRevisionArn"] == first["targetServiceRevisionArn"]
    assert "circuit breaker" in sd["rollback"]["reason"] and sd["rollback"]["startedAt"] <= sd["finishedAt"]
    breaker = sd["deploymentCircuitBreaker"]
    assert breaker["status"] == "TRIGGERED" and breaker["threshold"] == 3 and breaker["failureCount"] >= 3
    assert _counts(sd["targetServiceRevision"]) == (0, 0, 0)

    # No service deployment of its own for the rollback; the legacy list got a new PRIMARY for it.
    after = describe(ecs, w)
    assert after["currentServiceDeployment"] == arn and len(_listed(ecs, w)) == 2
    assert completed(after) and after["deployments"][0]["id"] != legacy_id
    assert after["deployments"][0]["taskDefinition"] == w.task_definition_arn
    assert [r["arn"] for r in after["currentServiceRevisions"]] == [first["targetServiceRevisionArn"]]
    assert served(w) == "hello v1"


def test_stop_with_rollback_restores_the_last_successful_revision(
    sandbox: Sandbox, make_world: Callable[..., World], hello: HelloImages
) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    [first] = _listed(ecs, w)
    td_bad = register_revision(ecs, w, hello.get("v2", health="500"))
    arn = ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=td_bad)["service"][
        "currentServiceDeployment"
    ]
    _follow(ecs, arn, lambda sd: sd["status"] == "IN_PROGRESS", 30, "the deployment to be in progress")

    mark = sandbox.ledger.mark()
    assert ecs.stop_service_deployment(serviceDeploymentArn=arn)["serviceDeploymentArn"] == arn
    assert [c.action for c in sandbox.ledger.writes_since(mark)] == ["StopServiceDeployment"]
    seen = _follow(ecs, arn, lambda sd: sd["status"] in TERMINAL, 60, "the user's rollback to finish")
    assert seen[0] in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS") and seen[-1] == "ROLLBACK_SUCCESSFUL"
    sd = _one(ecs, arn)
    assert sd["rollback"]["serviceRevisionArn"] == first["targetServiceRevisionArn"]
    assert "user" in sd["rollback"]["reason"]
    assert sd["deploymentCircuitBreaker"]["status"] == "DISABLED"

    svc = describe(ecs, w)
    assert completed(svc) and svc["deployments"][0]["taskDefinition"] == w.task_definition_arn
    running = ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"]
    tasks = ecs.describe_tasks(cluster=w.cluster, tasks=running)["tasks"]
    assert [t["taskDefinitionArn"] for t in tasks] == [w.task_definition_arn]
    assert served(w) == "hello v1"

    # A finished deployment can no longer be stopped, nor can one that never existed.
    for done in (arn, first["serviceDeploymentArn"]):
        code, message = _conflict(lambda d=done: ecs.stop_service_deployment(serviceDeploymentArn=d))
        assert code == "ConflictException" and "can no longer be stopped" in message
    missing = arn.rsplit("/", 1)[0] + "/nosuchdeployment00000"
    code, _ = _conflict(lambda: ecs.stop_service_deployment(serviceDeploymentArn=missing))
    assert code == "ServiceDeploymentNotFoundException"


def test_unknown_arns_are_reported_missing(sandbox: Sandbox, make_world: Callable[..., World]) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    [first] = _listed(ecs, w)
    unknown = first["serviceDeploymentArn"].rsplit("/", 1)[0] + "/nosuchdeployment00000"
    out = ecs.describe_service_deployments(serviceDeploymentArns=[first["serviceDeploymentArn"], unknown])
    assert [d["serviceDeploymentArn"] for d in out["serviceDeployments"]] == [first["serviceDeploymentArn"]]
    assert out["failures"] == [{"arn": unknown, "reason": "MISSING"}]
    revisions = ecs.describe_service_revisions(serviceRevisionArns=[first["targetServiceRevisionArn"] + "9"])
    assert revisions["serviceRevisions"] == [] and revisions["failures"][0]["reason"] == "MISSING"
    with pytest.raises(ecs.exceptions.ServiceNotFoundException):
        ecs.list_service_deployments(cluster=w.cluster, service="no-such-service")


def test_stop_with_abort_halts_the_rollout_in_place(
    sandbox: Sandbox, make_world: Callable[..., World], hello: HelloImages
) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    td_bad = register_revision(ecs, w, hello.get("v2", health="500"))
    svc = ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=td_bad)["service"]
    arn, legacy_id = svc["currentServiceDeployment"], svc["deployments"][0]["id"]
    _follow(ecs, arn, lambda sd: sd["status"] == "IN_PROGRESS", 30, "the deployment to be in progress")

    ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ABORT")
    seen = _follow(ecs, arn, lambda sd: sd["status"] in TERMINAL, 30, "the deployment to stop")
    assert seen[-1] == "STOPPED" and set(seen) <= {"STOP_REQUESTED", "STOPPED"}
    sd = _one(ecs, arn)
    assert "user" in sd["statusReason"] and "stoppedAt" in sd and "rollback" not in sd
    # Nothing rolls back: the legacy deployment failed where it stood and the old task keeps serving.
    deployments = describe(ecs, w)["deployments"]
    assert deployments[0]["id"] == legacy_id and deployments[0]["rolloutState"] == "FAILED"
    assert len(_listed(ecs, w)) == 2
    assert served(w) == "hello v1"
