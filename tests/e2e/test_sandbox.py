"""Self-tests of the sandbox, through plain boto3 and the peers people use today.

Each test drives the simulated ECS/ALB the way a deploy tool would and checks what a user could observe:
deployments, task states and reasons, target health, service events, CloudWatch logs, and what the load
balancer's DNS name serves.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import docker
import docker.errors
import pytest
import requests

from tests.conftest import HelloImages
from tests.e2e.conftest import (
    ROOT,
    Hammer,
    completed,
    describe,
    poll,
    register_revision,
    served,
    targets,
)
from tests.sandbox.bootstrap import CONTAINER, World, clients
from tests.sandbox.hosts import MARKER
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.simulator import LABEL


# --------------------------------------------------------------------------------------------
# the happy path: a rolling deployment
# --------------------------------------------------------------------------------------------
def test_new_revision_rolls_out_with_no_failed_request(
    sandbox: Sandbox, make_world: Callable[..., World], hello: HelloImages
) -> None:
    w = make_world()
    c = sandbox.clients()
    ecs, elbv2 = c["ecs"], c["elbv2"]
    assert served(w) == "hello v1"
    before = describe(ecs, w)
    old_ports = set(targets(elbv2, w))
    assert [s for s, _, _ in targets(elbv2, w).values()] == ["healthy"]

    td2 = register_revision(ecs, w, hello.get("v2"))
    hammer = Hammer(w.url + "/")
    hammer.start()
    hammer.wait_answers(10)
    resp = ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=td2, forceNewDeployment=True)
    deps = resp["service"]["deployments"]
    assert [d["status"] for d in deps] == ["PRIMARY", "ACTIVE"]
    assert deps[0]["taskDefinition"] == td2 and deps[0]["rolloutState"] == "IN_PROGRESS"
    assert deps[1]["taskDefinition"] == w.task_definition_arn
    assert deps[0]["id"] != before["deployments"][0]["id"]
    assert resp["service"]["taskDefinition"] == td2

    seen: dict[int, list[str]] = {}
    task_states: list[str] = []
    new_task: str | None = None

    def observe() -> dict[str, Any]:
        nonlocal new_task
        for port, (state, _, _) in targets(elbv2, w).items():
            states = seen.setdefault(port, [])
            if not states or states[-1] != state:
                states.append(state)
        if new_task is None:
            arns = ecs.list_tasks(cluster=w.cluster, startedBy=deps[0]["id"])["taskArns"]
            new_task = arns[0] if arns else None
        if new_task is not None:
            st = ecs.describe_tasks(cluster=w.cluster, tasks=[new_task])["tasks"][0]["lastStatus"]
            if not task_states or task_states[-1] != st:
                task_states.append(st)
        return describe(ecs, w)

    svc = poll(observe, completed, 60, "the new deployment to complete")
    # Old targets leave only after draining; keep watching until they are gone.
    poll(lambda: (observe(), targets(elbv2, w))[1], lambda t: not (set(t) & old_ports), 30, "old targets to go")
    hammer.wait_answers(10)
    hammer.stop()

    assert svc["taskDefinition"] == td2
    assert svc["deployments"][0]["runningCount"] == 1 and svc["runningCount"] == 1
    new_ports = set(seen) - old_ports
    assert len(new_ports) == 1
    (new_port,) = new_ports
    assert seen[new_port][:2] == ["initial", "healthy"], seen
    (old_port,) = old_ports
    assert seen[old_port] == ["healthy", "draining"], seen
    assert task_states[-1] == "RUNNING" and set(task_states) <= {"PROVISIONING", "PENDING", "RUNNING"}

    assert hammer.failures == [], hammer.failures[:5]
    assert len(hammer.bodies) > 20
    assert hammer.bodies[0] == "hello v1" and hammer.bodies[-1] == "hello v2"
    assert served(w) == "hello v2"

    events = [e["message"] for e in svc["events"]]
    assert any("has reached a steady state." in m for m in events)
    assert any("registered 1 targets" in m for m in events)

    # Ground truth: the new target was healthy before the old one began draining, and the old task stopped.
    ledger = sandbox.ledger
    healthy_at = ledger.facts_of("target_healthy", f"{w.target_group_arn}|127.0.0.1:{new_port}")[0].at
    draining_at = ledger.facts_of("target_draining", f"{w.target_group_arn}|127.0.0.1:{old_port}")[0].at
    assert healthy_at <= draining_at
    stopped = ecs.list_tasks(cluster=w.cluster, serviceName=w.service, desiredStatus="STOPPED")["taskArns"]
    old = ecs.describe_tasks(cluster=w.cluster, tasks=stopped)["tasks"]
    assert [t["lastStatus"] for t in old] == ["STOPPED"]
    assert old[0]["stoppedReason"].startswith("Scaling activity initiated by (deployment")


def test_force_new_deployment_of_same_revision_replaces_tasks(
    sandbox: Sandbox, make_world: Callable[..., World]
) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    first = ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"]
    resp = ecs.update_service(cluster=w.cluster, service=w.service, forceNewDeployment=True)
    deps = resp["service"]["deployments"]
    assert len(deps) == 2 and deps[0]["taskDefinition"] == deps[1]["taskDefinition"] == w.task_definition_arn
    poll(lambda: describe(ecs, w), completed, 60, "forced deployment to complete")
    now = poll(
        lambda: ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"],
        lambda arns: len(arns) == 1 and arns != first,
        30,
        "the old task to be replaced",
    )
    assert now != first
    assert served(w) == "hello v1"


def test_update_without_force_or_new_revision_starts_no_deployment(
    sandbox: Sandbox, make_world: Callable[..., World]
) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    resp = ecs.update_service(cluster=w.cluster, service=w.service, desiredCount=2)
    assert len(resp["service"]["deployments"]) == 1
    svc = poll(lambda: describe(ecs, w), lambda s: s["runningCount"] == 2, 30, "two running tasks")
    assert len(svc["deployments"]) == 1
    elbv2 = sandbox.clients()["elbv2"]
    poll(
        lambda: targets(elbv2, w),
        lambda t: [s for s, _, _ in t.values()] == ["healthy", "healthy"],
        30,
        "two healthy targets",
    )


# --------------------------------------------------------------------------------------------
# the ways deploys break
# --------------------------------------------------------------------------------------------
def test_broken_health_check_trips_breaker_and_rolls_back(
    sandbox: Sandbox, make_world: Callable[..., World], hello: HelloImages
) -> None:
    w = make_world(circuit_breaker=True, rollback=True)
    c = sandbox.clients()
    ecs, elbv2 = c["ecs"], c["elbv2"]
    td_bad = register_revision(ecs, w, hello.get("v3", health="500"))
    dep_id = ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=td_bad)["service"]["deployments"][
        0
    ]["id"]

    reasons: set[tuple[str, str | None, str | None]] = set()
    rollouts: set[tuple[str, str, str]] = set()
    served_during: list[str] = []

    def observe() -> dict[str, Any]:
        reasons.update(targets(elbv2, w).values())
        svc = describe(ecs, w)
        rollouts.update((d["id"], d["rolloutState"], d.get("rolloutStateReason", "")) for d in svc["deployments"])
        served_during.append(served(w))
        return svc

    def rolled_back(svc: dict[str, Any]) -> bool:
        return (
            completed(svc)
            and svc["deployments"][0]["taskDefinition"] == w.task_definition_arn
            and svc["deployments"][0]["id"] != dep_id
        )

    svc = poll(observe, rolled_back, 120, "the breaker to roll back")

    assert ("unhealthy", "Target.ResponseCodeMismatch", "Health checks failed with these codes: [500]") in reasons
    # The FAILED state lasts until the rollback completes: a poll may miss it, the world's record does not.
    failed = [f.detail for f in sandbox.ledger.facts_of("deployment_failed", dep_id)]
    assert failed and "circuit breaker" in failed[0]
    assert all("circuit breaker" in r[2] for r in rollouts if r[0] == dep_id and r[1] == "FAILED")
    assert svc["taskDefinition"] == w.task_definition_arn
    stopped = ecs.list_tasks(cluster=w.cluster, serviceName=w.service, desiredStatus="STOPPED")["taskArns"]
    bad = [t for t in ecs.describe_tasks(cluster=w.cluster, tasks=stopped)["tasks"] if t["taskDefinitionArn"] == td_bad]
    health_stops = [t for t in bad if t["stoppedReason"].startswith("Task failed ELB health checks in (target-group")]
    assert len(health_stops) >= 3  # ECS's threshold for one desired task
    assert all(t["lastStatus"] == "STOPPED" and t["startedBy"] == dep_id for t in bad)
    events = [e["message"] for e in svc["events"]]
    assert any("is unhealthy in target-group" in m and "[500]" in m for m in events)
    assert any("deployment failed: tasks failed to start" in m for m in events)
    # The old task never stopped serving: every request during the failed rollout saw v1.
    assert set(served_during) == {"hello v1"}


def test_crash_at_start_reports_exit_code_and_logs(
    sandbox: Sandbox, make_world: Callable[..., World], hello: HelloImages
) -> None:
    w = make_world()
    c = sandbox.clients()
    ecs, logs = c["ecs"], c["logs"]
    td_bad = register_revision(ecs, w, hello.get("v4", crash=True))
    dep_id = ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=td_bad, forceNewDeployment=True)[
        "service"
    ]["deployments"][0]["id"]

    def crashed() -> list[dict[str, Any]]:
        # startedBy must be the only filter, and alone it lists running tasks: find stopped ones by service.
        arns = ecs.list_tasks(cluster=w.cluster, serviceName=w.service, desiredStatus="STOPPED")["taskArns"]
        if not arns:
            return []
        return [
            t
            for t in ecs.describe_tasks(cluster=w.cluster, tasks=arns)["tasks"]
            if t["lastStatus"] == "STOPPED" and t["startedBy"] == dep_id
        ]

    tasks = poll(crashed, bool, 60, "a crashed task")
    task = tasks[0]
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["stopCode"] == "EssentialContainerExited"
    container = task["containers"][0]
    assert container["name"] == CONTAINER and container["exitCode"] == 3

    stream = f"ecs/{CONTAINER}/{task['taskArn'].split('/')[-1]}"
    messages = poll(
        lambda: [e["message"] for e in logs.get_log_events(logGroupName=w.log_group, logStreamName=stream)["events"]],
        lambda m: any(line.startswith("fatal:") for line in m),
        10,
        "the fatal line in CloudWatch Logs",
    )
    assert any(line.startswith("fatal:") for line in messages)

    svc = poll(
        lambda: describe(ecs, w),
        lambda s: s["deployments"][0]["failedTasks"] >= 2,
        60,
        "the scheduler to retry and count failures",
    )
    # No circuit breaker here: ECS keeps trying and the old deployment keeps serving.
    assert svc["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert svc["deployments"][1]["runningCount"] == 1
    assert served(w) == "hello v1"


def test_user_stop_task_is_replaced(sandbox: Sandbox, make_world: Callable[..., World]) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    (arn,) = ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"]
    ecs.stop_task(cluster=w.cluster, task=arn, reason="operator says so")
    task = poll(
        lambda: ecs.describe_tasks(cluster=w.cluster, tasks=[arn])["tasks"][0],
        lambda t: t["lastStatus"] == "STOPPED",
        30,
        "the task to stop",
    )
    assert task["stoppedReason"] == "operator says so" and task["stopCode"] == "UserInitiated"
    poll(
        lambda: ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"],
        lambda a: len(a) == 1 and a != [arn],
        30,
        "a replacement task",
    )


# --------------------------------------------------------------------------------------------
# counting and faults
# --------------------------------------------------------------------------------------------
def test_ledger_counts_calls_and_separates_writes(sandbox: Sandbox, make_world: Callable[..., World]) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    mark = sandbox.ledger.mark()
    describe(ecs, w)
    ecs.list_tasks(cluster=w.cluster)
    assert sandbox.ledger.writes_since(mark) == []
    ecs.update_service(cluster=w.cluster, service=w.service, forceNewDeployment=True)
    writes = [(c.service, c.action) for c in sandbox.ledger.writes_since(mark)]
    assert writes == [("ecs", "UpdateService")]
    assert sandbox.ledger.count_by_action(mark)["DescribeServices"] >= 1


def _client(sandbox: Sandbox, service: str, attempts: int = 1) -> Any:
    """A plain boto3 client; attempts=1 shows each error as the caller gets it, without botocore's retries."""
    return boto3.client(
        service,
        endpoint_url=sandbox.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


def _error(call: Callable[[], Any]) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call()
    return err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_throttling_fault_is_served_as_aws_does(sandbox: Sandbox, make_world: Callable[..., World]) -> None:
    w = make_world()
    patient = _client(sandbox, "ecs", attempts=5)
    sandbox.ledger.throttle("DescribeServices", 2)
    resp = patient.describe_services(cluster=w.cluster, services=[w.service])
    assert resp["ResponseMetadata"]["RetryAttempts"] == 2

    elbv2 = _client(sandbox, "elbv2")
    sandbox.ledger.throttle("DescribeTargetHealth", 1)
    assert _error(lambda: elbv2.describe_target_health(TargetGroupArn=w.target_group_arn)) == ("Throttling", 400)
    throttled = [c for c in sandbox.ledger.calls_since() if c.throttled]
    assert {c.action for c in throttled} >= {"DescribeServices", "DescribeTargetHealth"}


def test_rate_limits_throttle_calls_past_a_shrunken_bucket(sandbox: Sandbox) -> None:
    ecs, elbv2 = _client(sandbox, "ecs"), _client(sandbox, "elbv2")
    cluster = ecs.create_cluster(clusterName=f"rl-{uuid.uuid4().hex[:6]}")["cluster"]["clusterName"]
    # A tenth of AWS's buckets: DescribeServices 5 (refilled at 2/s), ELB's Describe* 4 (1/s), shared by all.
    sandbox.ledger.limit_rates(factor=0.1)
    mark = sandbox.ledger.mark()
    errors: list[botocore.exceptions.ClientError] = []
    for _ in range(12):  # well past 5 plus what refills while they run
        try:
            ecs.describe_services(cluster=cluster, services=["none"])
        except botocore.exceptions.ClientError as exc:
            errors.append(exc)
    assert errors, "a burst past the bucket was not throttled"
    first = errors[0].response
    assert (first["Error"]["Code"], first["Error"]["Message"]) == ("ThrottlingException", "Rate exceeded")
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(botocore.exceptions.ClientError) as err:
        for _ in range(12):
            elbv2.describe_target_groups()
            elbv2.describe_load_balancers()  # the same bucket: ELB's non-mutating actions share one
    # The query protocol's name for it (botocore retries both as throttling).
    assert (err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]) == (
        "Throttling",
        "Rate exceeded",
    )
    calls = sandbox.ledger.calls_since(mark)
    assert sum(c.throttled for c in calls if c.action == "DescribeServices") == len(errors)
    assert any(c.throttled for c in calls if c.service == "elasticloadbalancing")
    sandbox.ledger.unlimit_rates()
    ecs.describe_services(cluster=cluster, services=["none"])


def test_any_aws_error_in_the_json_and_query_protocols(sandbox: Sandbox, make_world: Callable[..., World]) -> None:
    w = make_world()
    ecs, elbv2, logs = _client(sandbox, "ecs"), _client(sandbox, "elbv2"), _client(sandbox, "logs")
    mark = sandbox.ledger.mark()
    sandbox.ledger.fail("DescribeServices", 1, "InternalFailure", 500)
    sandbox.ledger.fail("DescribeTargetHealth", 1, "ServiceUnavailable", 503)
    sandbox.ledger.fail("DescribeLogStreams", 1, "ExpiredTokenException", 400)
    assert _error(lambda: describe(ecs, w)) == ("InternalFailure", 500)
    assert _error(lambda: targets(elbv2, w)) == ("ServiceUnavailable", 503)
    assert _error(lambda: logs.describe_log_streams(logGroupName=w.log_group)) == ("ExpiredTokenException", 400)
    # Each plan was used up by its one call.
    assert describe(ecs, w)["serviceName"] == w.service
    assert targets(elbv2, w)
    logs.describe_log_streams(logGroupName=w.log_group)
    assert [c.error for c in sandbox.ledger.calls_since(mark) if c.error] == [
        "InternalFailure",
        "ServiceUnavailable",
        "ExpiredTokenException",
    ]
    # A 5xx is retryable: botocore's standard mode rides it out.
    sandbox.ledger.fail("DescribeServices", 2, "InternalFailure", 500)
    resp = _client(sandbox, "ecs", attempts=5).describe_services(cluster=w.cluster, services=[w.service])
    assert resp["ResponseMetadata"]["RetryAttempts"] == 2


def test_burst_fails_calls_in_a_row_whatever_their_action(sandbox: Sandbox, make_world: Callable[..., World]) -> None:
    w = make_world()
    ecs, elbv2 = _client(sandbox, "ecs"), _client(sandbox, "elbv2")
    sandbox.ledger.burst("*", 3)
    assert _error(lambda: describe(ecs, w)) == ("ServiceUnavailable", 503)
    assert _error(lambda: targets(elbv2, w)) == ("ServiceUnavailable", 503)
    assert _error(lambda: ecs.list_tasks(cluster=w.cluster)) == ("ServiceUnavailable", 503)
    assert describe(ecs, w)["serviceName"] == w.service

    sandbox.ledger.burst(["DescribeServices", "ListTasks"], 2, "InternalFailure", 500)
    assert targets(elbv2, w)  # not in the burst
    assert _error(lambda: ecs.list_tasks(cluster=w.cluster)) == ("InternalFailure", 500)
    assert _error(lambda: describe(ecs, w)) == ("InternalFailure", 500)
    assert ecs.list_tasks(cluster=w.cluster)["taskArns"]


def test_expired_credentials_until_renewed(sandbox: Sandbox, make_world: Callable[..., World]) -> None:
    w = make_world()
    ecs, elbv2 = _client(sandbox, "ecs"), _client(sandbox, "elbv2")
    sandbox.ledger.expire_credentials()
    for _ in range(3):
        assert _error(lambda: describe(ecs, w)) == ("ExpiredTokenException", 400)
        assert _error(lambda: targets(elbv2, w)) == ("ExpiredToken", 400)
    sandbox.ledger.renew_credentials()
    assert describe(ecs, w)["serviceName"] == w.service


def test_aws_restart_refuses_connections_then_serves_the_same_world(
    sandbox: Sandbox, make_world: Callable[..., World]
) -> None:
    w = make_world()
    ecs = _client(sandbox, "ecs")
    endpoint = sandbox.endpoint
    port = int(endpoint.rsplit(":", 1)[1])
    describe(ecs, w)  # the client now holds a kept-alive connection, which the restart must cut too
    sandbox.slow_start(w.service, 2.0)  # the new task starts while the endpoint is down
    dep = ecs.update_service(cluster=w.cluster, service=w.service, forceNewDeployment=True)["service"]
    dep_id = dep["deployments"][0]["id"]

    outage: dict[str, float] = {}

    def restart() -> None:
        outage["down"] = time.time()
        sandbox.restart_aws(6.0)
        outage["up"] = time.time()

    restarter = threading.Thread(target=restart, daemon=True)
    restarter.start()

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except ConnectionRefusedError:
            return True
        except OSError:  # a connection caught in the listener's backlog as it closes is reset instead
            return False
        return False

    poll(refused, bool, 5, "the endpoint to refuse connections")
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        describe(ecs, w)
    restarter.join(timeout=30)
    assert "up" in outage and sandbox.endpoint == endpoint

    svc = poll(lambda: describe(ecs, w), completed, 60, "the deployment begun before the outage to complete")
    assert svc["deployments"][0]["id"] == dep_id
    started = [f.at for f in sandbox.ledger.facts_of("task_started") if f.detail == dep_id]
    assert started and outage["down"] < started[0] < outage["up"], (outage, started)
    assert served(w) == "hello v1"


def test_slow_start_applies_to_one_service_only(sandbox: Sandbox, make_world: Callable[..., World]) -> None:
    slow, quick = make_world(), make_world()
    ecs = sandbox.clients()["ecs"]
    sandbox.slow_start(slow.service, 6.0)
    t0 = time.time()
    deps = {
        w.service: ecs.update_service(cluster=w.cluster, service=w.service, forceNewDeployment=True)["service"][
            "deployments"
        ][0]["id"]
        for w in (slow, quick)
    }
    for w in (slow, quick):
        poll(lambda w=w: describe(ecs, w), completed, 60, f"{w.service} to complete")
    started = {
        name: next(f.at for f in sandbox.ledger.facts_of("task_started") if f.detail == dep) - t0
        for name, dep in deps.items()
    }
    assert started[slow.service] >= 6.0 > started[quick.service], started


# --- registry --------------------------------------------------------------------------------
def _manifest_url(sandbox: Sandbox, image: str) -> str:
    assert sandbox.registry is not None
    repo, digest = image.split("@", 1)
    return f"{sandbox.registry.url}/v2/{repo.split('/', 1)[1]}/manifests/{digest}"


def test_registry_refuses_auth_as_for_a_wrong_password(sandbox: Sandbox, hello: HelloImages) -> None:
    reg, client = sandbox.registry, sandbox.docker
    assert reg is not None and client is not None
    url = _manifest_url(sandbox, hello.get("v1"))
    with reg.session() as session:
        wrong = session.get(url, auth=(reg.user, "not-the-password"), timeout=10)
        assert wrong.status_code == 401
        reg.faults.refuse_auth()
        refused = session.get(url, timeout=10)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == wrong.headers["WWW-Authenticate"]
        assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED"
        with pytest.raises(docker.errors.APIError, match=r"401|unauthorized"):
            client.login(username=reg.user, password=reg.password, registry=reg.address, reauth=True)
        reg.faults.clear()
        assert session.get(url, timeout=10).status_code == 200
    assert client.login(username=reg.user, password=reg.password, registry=reg.address, reauth=True)


def test_registry_manifest_500_then_recovers(sandbox: Sandbox, hello: HelloImages) -> None:
    reg, client = sandbox.registry, sandbox.docker
    assert reg is not None and client is not None
    url = _manifest_url(sandbox, hello.get("v1"))
    with reg.session() as session:
        reg.faults.manifest_500(2)
        got, head = session.get(url, timeout=10), session.head(url, timeout=10)
        assert (got.status_code, head.status_code) == (500, 500)
        assert got.json()["errors"][0]["code"] == "UNKNOWN"
        assert session.get(url, timeout=10).status_code == 200

    # docker's own push meets it when it writes the manifest.
    ref = f"{reg.address}/fault-{uuid.uuid4().hex[:8]}:m500"
    client.images.get(hello.get("v1")).tag(ref)
    reg.faults.manifest_500(5)
    mark = len(reg.faults.applied)
    out = client.images.push(ref, auth_config=reg.auth_config)
    assert '"errorDetail"' in out and ("500" in out or "unknown error" in out), out
    assert "PUT" in [a.method for a in reg.faults.applied_since(mark)]
    reg.faults.clear()
    again = client.images.push(ref, auth_config=reg.auth_config)
    assert '"errorDetail"' not in again and '"Digest":"sha256:' in again.replace(" ", ""), again


def test_registry_upload_cut_mid_body(sandbox: Sandbox, hello: HelloImages) -> None:
    reg = sandbox.registry
    assert reg is not None
    hello.get("v1")
    name = f"fault-{uuid.uuid4().hex[:8]}"
    blob = os.urandom(100_000)

    def start_upload(session: requests.Session) -> str:
        r = session.post(f"{reg.url}/v2/{name}/blobs/uploads/", timeout=10)
        assert r.status_code == 202, r.text
        return str(r.headers["Location"])

    with reg.session() as session:
        reg.faults.cut_upload(2)  # the second upload request from now
        first = session.patch(start_upload(session), data=blob[:10], timeout=10)
        assert first.status_code == 202  # the first one passes
        with pytest.raises(requests.ConnectionError):
            session.patch(start_upload(session), data=blob, timeout=10)
        assert [a.fault for a in reg.faults.applied_since()][-1] == "cut_upload"
        # One-shot: the next upload goes through whole.
        location = start_upload(session)
        assert session.patch(location, data=blob, timeout=10).status_code == 202


def test_registry_pause_refuses_connections_then_serves_the_same_images(sandbox: Sandbox, hello: HelloImages) -> None:
    reg = sandbox.registry
    assert reg is not None
    url = _manifest_url(sandbox, hello.get("v1"))
    sandbox.pause_registry()
    try:
        with reg.session() as session, pytest.raises(requests.ConnectionError, match=r"[Rr]efused"):
            session.get(url, timeout=5)
    finally:
        sandbox.resume_registry()
    with reg.session() as session:
        assert session.get(url, timeout=10).status_code == 200


# --------------------------------------------------------------------------------------------
# isolation and cleanup
# --------------------------------------------------------------------------------------------
def test_tasks_run_on_host_network_bound_to_loopback(sandbox: Sandbox, make_world: Callable[..., World]) -> None:
    # Only this world's tasks: the sandbox is shared by the session, and another test's
    # task may be starting late, crashing or stopping right now (not listening at all).
    w = make_world()
    c = sandbox.clients()
    task_arns = c["ecs"].list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"]
    assert task_arns
    assert [s for s, _, _ in targets(c["elbv2"], w).values()] == ["healthy"]  # so it listens now
    assert sandbox.docker is not None
    ours = [
        container
        for arn in task_arns
        for container in sandbox.docker.containers.list(filters={"label": f"{LABEL}.task={arn}"})
    ]
    assert ours
    for container in ours:
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    ports = set()
    for container in ours:
        env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
        ports.add(int(env["PORT"]))  # every hello container is told its port
    assert ports == set(targets(c["elbv2"], w))
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    listening += Path("/proc/net/tcp6").read_text().splitlines()[1:]
    local = [line.split()[1] for line in listening if line.split()[3] == "0A"]  # 0A = LISTEN
    for port in ports:
        bound = [addr for addr in local if int(addr.split(":")[1], 16) == port]
        assert bound and all(addr.startswith("0100007F") for addr in bound), (port, bound)


def test_up_and_down_leave_nothing_behind(tmp_path: Path) -> None:
    """`python -m tests.sandbox up` in its own process (moto's state is per process), then `down`."""
    env = {**os.environ, "ECS_SHIP_SANDBOX_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.sandbox", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        envfile = tmp_path / "env.sh"
        deadline = time.monotonic() + 180
        while not envfile.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
        assert envfile.exists(), proc.stderr.read() if proc.poll() is not None else "no env.sh in 180s"
        values = dict(shlex.split(line)[1].split("=", 1) for line in envfile.read_text().splitlines())
        for key in (
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "REGISTRY",
            "REGISTRY_USER",
            "SERVICE_URL",
            "ECS_CLUSTER",
            "ECS_SERVICE",
        ):
            assert values.get(key), key
        assert requests.get(values["SERVICE_URL"] + "/", timeout=5).text.strip() == "hello v1"
        ecs = clients(values["AWS_ENDPOINT_URL"])["ecs"]
        svc = ecs.describe_services(cluster=values["ECS_CLUSTER"], services=[values["ECS_SERVICE"]])["services"][0]
        assert completed(svc)
        label = values["ECS_SHIP_SANDBOX_RUN"]
        registry = values["REGISTRY"]
        down = subprocess.run(
            [sys.executable, "-m", "tests.sandbox", "down"], env=env, capture_output=True, text=True, timeout=120
        )
        assert down.returncode == 0, down.stderr
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    client = docker.from_env()
    assert client.containers.list(all=True, filters={"label": f"{LABEL}.run={label}"}) == []
    assert f"{MARKER} {label}" not in Path("/etc/hosts").read_text()
    assert not (tmp_path / "env.sh").exists() and not (tmp_path / "sandbox.pid").exists()
    for url in (values["SERVICE_URL"], values["AWS_ENDPOINT_URL"], f"http://{registry}/v2/"):
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)


# --------------------------------------------------------------------------------------------
# peers complete against the sandbox unchanged
# --------------------------------------------------------------------------------------------
def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed (pip install -e '.[test]')"
    return found


def test_awscli_wait_services_stable(sandbox: Sandbox, make_world: Callable[..., World], hello: HelloImages) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    td2 = register_revision(ecs, w, hello.get("v2"))
    ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=td2)
    env = {**sandbox.env(), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [_tool("aws"), "ecs", "wait", "services-stable", "--cluster", w.cluster, "--services", w.service],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    svc = describe(ecs, w)
    assert len(svc["deployments"]) == 1 and svc["runningCount"] == 1
    assert served(w) == "hello v2"


def test_fabfuel_ecs_deploy(sandbox: Sandbox, make_world: Callable[..., World], hello: HelloImages) -> None:
    w = make_world()
    env = {**sandbox.env(), "PATH": "/usr/bin:/bin"}
    image = hello.get("v2")
    proc = subprocess.run(
        [_tool("ecs"), "deploy", w.cluster, w.service, "--image", CONTAINER, image, "--timeout", "120"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ecs = clients(sandbox.endpoint)["ecs"]
    svc = describe(ecs, w)
    assert svc["taskDefinition"].endswith(":2")
    assert served(w) == "hello v2"
