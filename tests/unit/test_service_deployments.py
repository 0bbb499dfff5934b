"""ECS's service deployments in the runner: the verdicts they settle, and how a rollback is made."""

from __future__ import annotations

import argparse
import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ecs_ship import deploy, rollout
from ecs_ship.aws import Clients
from ecs_ship.context import Context
from ecs_ship.gha import Reporter
from ecs_ship.watch import Reader, ServiceDeploymentState, assess, digests_of, parse_service_deployment
from tests.unit.test_pipeline import svc
from tests.unit.test_watch import GOAL, NEW, OLD, dep, snap, target, task
from tests.unit.test_watch_health import FakeEcs

SD = "arn:aws:ecs:us-east-1:1:service-deployment/c/s/abc"
WATCHED = replace(GOAL, service_deployment_arn=SD)
RUNNING_FINE = snap(deployments=(dep(running=1), dep(OLD, "ACTIVE", 1, "COMPLETED")), tasks=(task(),))


def with_sd(status: str, base: Any = RUNNING_FINE, **kw: Any) -> Any:
    return replace(base, service_deployment=ServiceDeploymentState(SD, status, **kw))


@pytest.mark.parametrize("status", ["ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL"])
def test_ecs_rolling_back_is_a_failure_whatever_the_counts(status: str) -> None:
    healthy = with_sd(status, replace(RUNNING_FINE, targets=(target("healthy"),)), rollback_reason="circuit breaker")
    verdict = assess(healthy, WATCHED)
    assert verdict.kind == "failed" and verdict.ecs_rolling_back
    assert "circuit breaker" in verdict.reason and status in verdict.reason
    assert assess(replace(healthy, service_deployment=None), WATCHED).kind == "serving"


def test_a_stopped_service_deployment_names_the_deployment_that_took_over() -> None:
    newer = replace(dep("ecs-svc/newer"), task_definition="td:9")
    taken = snap(deployments=(newer, replace(dep(running=1), status="ACTIVE")), tasks=(task(),))
    verdict = assess(with_sd("STOPPED", taken, status_reason="a newer deployment started"), WATCHED)
    assert verdict.kind == "failed" and verdict.superseded_by == "td:9" and not verdict.ecs_rolling_back


def test_a_stopped_service_deployment_is_never_rolled_back_over() -> None:
    """Stopped with ABORT by someone (no newer deployment): the deploy fails, and rolling back would override
    that person; replaced by a newer deployment: rolling back would undo it."""
    aborted = assess(with_sd("STOPPED", status_reason="stopped by a user"), WATCHED)
    assert aborted.kind == "failed" and aborted.stopped and aborted.superseded_by is None
    decision = rollout.decide_rollback(on_failure="rollback", no_rollback=False, verdict=aborted, previous_arn="td:1")
    assert not decision.roll_back and "stopped in ECS" in decision.why
    newer = replace(dep("ecs-svc/newer"), task_definition="td:9")
    taken = snap(deployments=(newer, replace(dep(running=1), status="ACTIVE")), tasks=(task(),))
    replaced = assess(with_sd("STOPPED", taken), WATCHED)
    assert "replaced by deployment ecs-svc/newer (td:9)" in replaced.reason
    decision = rollout.decide_rollback(on_failure="rollback", no_rollback=False, verdict=replaced, previous_arn="td:1")
    assert not decision.roll_back and "rolling back would undo it" in decision.why
    # Replaced by our previous revision (someone's rollback): "rolling back" only watches it.
    assert rollout.decide_rollback(
        on_failure="rollback", no_rollback=False, verdict=replaced, previous_arn="td:9"
    ).roll_back


@pytest.mark.parametrize(
    ("status", "kind"),
    [("ROLLBACK_IN_PROGRESS", "waiting"), ("ROLLBACK_SUCCESSFUL", "stable"), ("ROLLBACK_FAILED", "failed")],
)
def test_watching_ecs_s_own_rollback(status: str, kind: str) -> None:
    starting = snap(deployments=(dep(),), tasks=(task(last="PENDING"),))
    assert assess(with_sd(status, starting), replace(WATCHED, ecs_rollback=True)).kind == kind


@pytest.mark.parametrize("status", ["PENDING", "IN_PROGRESS", "SUCCESSFUL"])
def test_in_progress_or_successful_leaves_the_verdict_to_the_tasks(status: str) -> None:
    assert assess(with_sd(status), WATCHED) == assess(RUNNING_FINE, WATCHED)


def test_parse_service_deployment() -> None:
    parsed = parse_service_deployment(
        {
            "serviceDeploymentArn": SD,
            "status": "ROLLBACK_IN_PROGRESS",
            "lifecycleStage": "SCALE_UP",
            "rollback": {"reason": "circuit breaker", "serviceRevisionArn": "rev/1"},
            "deploymentCircuitBreaker": {"status": "TRIGGERED", "failureCount": 3, "threshold": 3},
        }
    )
    assert (parsed.id, parsed.rolling_back, parsed.rollback_revision, parsed.breaker_failures) == (
        "abc",
        True,
        "rev/1",
        3,
    )


# ---------------------------------------------------------------------------------------------------------------------
# the rollback: asked of ECS while the service deployment is in progress, never a second one
# ---------------------------------------------------------------------------------------------------------------------
AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def stubbed() -> Any:
    ecs = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    with Stubber(ecs) as stub:
        yield Clients("us-east-1", ecs, None, None, None), stub


def record(status: str) -> dict[str, Any]:
    return {"serviceDeployments": [{"serviceDeploymentArn": SD, "status": status, "createdAt": AT}], "failures": []}


def service(*deployments: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "services": [
            {
                "serviceName": "hello",
                "status": "ACTIVE",
                "deployments": [
                    {"id": i, "status": s, "taskDefinition": td, "rolloutState": "IN_PROGRESS", "createdAt": AT}
                    for i, s, td in deployments
                ],
            }
        ],
        "failures": [],
    }


def context() -> Context:
    return Context(args=argparse.Namespace(), out=Reporter(stream=io.StringIO(), environ={}))


def test_an_in_progress_service_deployment_is_rolled_back_by_ecs(stubbed: Any) -> None:
    clients, stub = stubbed
    stub.add_response("describe_service_deployments", record("IN_PROGRESS"), {"serviceDeploymentArns": [SD]})
    stub.add_response(
        "stop_service_deployment", {"serviceDeploymentArn": SD}, {"serviceDeploymentArn": SD, "stopType": "ROLLBACK"}
    )
    # ECS has not started the rollback's deployment at the first look; the second one finds it.
    stub.add_response("describe_services", service((NEW, "PRIMARY", "td:2"), (OLD, "ACTIVE", "td:1")))
    stub.add_response("describe_services", service(("ecs-svc/back", "PRIMARY", "td:1"), (NEW, "ACTIVE", "td:2")))
    ctx = context()
    ctx.sleep = lambda _s: None
    back = rollout.start_rollback(ctx, svc("hello"), clients, "td:1", (), SD, NEW)
    assert (back.deployment_id, back.task_definition_arn, back.service_deployment_arn) == ("ecs-svc/back", "td:1", SD)
    stub.assert_no_pending_responses()


def test_ecs_already_rolling_back_is_followed_not_fought(stubbed: Any) -> None:
    clients, stub = stubbed
    stub.add_response("describe_service_deployments", record("ROLLBACK_IN_PROGRESS"))
    stub.add_response("describe_services", service(("ecs-svc/back", "PRIMARY", "td:1"), (NEW, "ACTIVE", "td:2")))
    back = rollout.start_rollback(context(), svc("hello"), clients, "td:1", (), SD, NEW)
    assert back.service_deployment_arn == SD and back.deployment_id == "ecs-svc/back"
    stub.assert_no_pending_responses()  # no StopServiceDeployment, no UpdateService


@pytest.mark.parametrize("refusal", ["ConflictException", "UnknownOperationException"])
def test_when_ecs_cannot_roll_back_the_service_is_pointed_at_the_target(stubbed: Any, refusal: str) -> None:
    clients, stub = stubbed
    stub.add_response("describe_service_deployments", record("IN_PROGRESS"))
    stub.add_client_error("stop_service_deployment", service_error_code=refusal)
    stub.add_response("describe_services", service((NEW, "PRIMARY", "td:2"), (OLD, "ACTIVE", "td:1")))
    stub.add_response(
        "update_service",
        {"service": service(("ecs-svc/back", "PRIMARY", "td:1"))["services"][0]},
        {"cluster": "prod", "service": "hello", "taskDefinition": "td:1", "forceNewDeployment": True},
    )
    back = rollout.start_rollback(context(), svc("hello"), clients, "td:1", (), SD, NEW)
    assert (back.deployment_id, back.service_deployment_arn) == ("ecs-svc/back", None)
    stub.assert_no_pending_responses()


def test_a_service_deployment_already_there_before_the_update_is_not_ours(stubbed: Any) -> None:
    clients, stub = stubbed
    body = service((NEW, "PRIMARY", "td:2"))["services"][0]
    stub.add_response("update_service", {"service": {**body, "currentServiceDeployment": SD}})
    assert deploy.start_deployment(clients, "goals", "hello", "td:2", before=SD).service_deployment_arn is None
    stub.add_response("update_service", {"service": {**body, "currentServiceDeployment": SD}})
    assert deploy.start_deployment(clients, "goals", "hello", "td:2", before="other").service_deployment_arn == SD


# ---------------------------------------------------------------------------------------------------------------------
# the image ECS runs against the digest the task definition pins
# ---------------------------------------------------------------------------------------------------------------------
PINNED = "sha256:" + "a" * 64


def test_digests_come_from_images_pinned_by_digest_only() -> None:
    td = {
        "containerDefinitions": [
            {"name": "web", "image": f"127.0.0.1:5000/web@{PINNED}"},
            {"name": "sidecar", "image": "public.ecr.aws/envoy:v1"},
        ]
    }
    assert digests_of(td) == (("web", PINNED),)


@pytest.mark.parametrize(("ran", "kind"), [(PINNED, "serving"), ("sha256:" + "b" * 64, "failed"), (None, "serving")])
def test_a_task_running_another_image_than_the_pinned_digest_fails(ran: str | None, kind: str) -> None:
    t = task()
    t = replace(t, containers=(replace(t.containers[0], image_digest=ran),))
    s = snap(deployments=(dep(running=1), dep(OLD, "ACTIVE", 1, "COMPLETED")), tasks=(t,), targets=(target("healthy"),))
    verdict = assess(s, replace(GOAL, digests=(("web", PINNED),)))
    assert verdict.kind == kind
    if kind == "failed":
        assert f"not {PINNED} that the task definition pins" in verdict.reason


def test_a_stop_seen_after_the_service_was_read_reads_the_service_again() -> None:
    """The service deployment is read after the service (only when the service's deployments moved), so what
    stopped it, a newer deployment above all, may be newer than the service read: the service is read again,
    and the verdict names the replacement rather than taking the replaced deploy for one stopped by hand."""
    calls: list[str] = []
    answers = [
        [{"id": NEW, "status": "PRIMARY", "taskDefinition": "td:2"}],
        [{"id": "ecs-svc/theirs", "status": "PRIMARY", "taskDefinition": "td:3"}, {"id": NEW, "status": "ACTIVE"}],
    ]

    class Recording(FakeEcs):
        def describe_services(self, **kw: Any) -> dict[str, Any]:
            calls.append("DescribeServices")
            return {"services": [{"deployments": answers.pop(0), "events": []}]}

        def describe_service_deployments(self, **_: Any) -> dict[str, Any]:
            calls.append("DescribeServiceDeployments")
            return {"serviceDeployments": [{"serviceDeploymentArn": SD, "status": "STOPPED"}]}

    reader = Reader(Clients("us-east-1", Recording([]), None, None, None), "c", "svc", lambda: 0.0)  # type: ignore[arg-type]
    seen = reader.snapshot(replace(WATCHED, load_balancers=()))
    assert calls[:3] == ["DescribeServices", "DescribeServiceDeployments", "DescribeServices"]
    verdict = assess(seen, replace(WATCHED, load_balancers=()))
    assert verdict.kind == "failed" and verdict.superseded_by == "td:3"


def test_a_rollback_never_undoes_a_newer_deployment_that_replaced_ours(stubbed: Any) -> None:
    """An interrupt gives the watch no verdict: the replacement is seen only now, and nothing is written."""
    clients, stub = stubbed
    stub.add_response("describe_services", service(("ecs-svc/theirs", "PRIMARY", "td:3"), (NEW, "ACTIVE", "td:2")))
    with pytest.raises(rollout.NewerDeployment, match="deployment ecs-svc/theirs \\(td:3\\) replaced"):
        rollout.start_rollback(context(), svc("hello"), clients, "td:1", (), None, NEW, follow=False)
    stub.assert_no_pending_responses()  # and the stub would refuse the update_service it must not make


def test_a_rollback_ecs_already_made_over_ours_is_not_a_newer_deployment(stubbed: Any) -> None:
    clients, stub = stubbed
    stub.add_response("describe_services", service(("ecs-svc/back", "PRIMARY", "td:1"), (NEW, "ACTIVE", "td:2")))
    back = rollout.start_rollback(context(), svc("hello"), clients, "td:1", (), None, NEW, follow=False)
    assert back.deployment_id == "ecs-svc/back"


def test_ecs_breaker_about_to_trip_is_given_a_poll_rather_than_raced(stubbed: Any) -> None:
    """The failed task that ended our watch is one ECS's circuit breaker (rollback on) counts as well, and it trips
    the breaker: ECS rolls back itself a moment later. Stopping the deployment first would be a needless write."""
    clients, stub = stubbed
    monitoring = record("IN_PROGRESS")
    monitoring["serviceDeployments"][0]["deploymentCircuitBreaker"] = {
        "status": "MONITORING",
        "failureCount": 0,
        "threshold": 1,
    }
    stub.add_response("describe_service_deployments", monitoring)
    with_breaker = service((NEW, "PRIMARY", "td:2"), (OLD, "ACTIVE", "td:1"))
    with_breaker["services"][0]["deploymentConfiguration"] = {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}
    }
    stub.add_response("describe_services", with_breaker)
    stub.add_response("describe_service_deployments", record("ROLLBACK_IN_PROGRESS"))
    stub.add_response("describe_services", service(("ecs-svc/back", "PRIMARY", "td:1"), (NEW, "ACTIVE", "td:2")))
    ctx = context()
    slept: list[float] = []
    ctx.sleep = slept.append  # type: ignore[method-assign]
    back = rollout.start_rollback(ctx, svc("hello"), clients, "td:1", (), SD, NEW)
    assert back.service_deployment_arn == SD and back.deployment_id == "ecs-svc/back"
    assert len(slept) == 1
    stub.assert_no_pending_responses()  # and no StopServiceDeployment: the stub would refuse it


def test_the_breaker_is_about_to_roll_back_when_tripped_or_one_failure_short() -> None:
    assert rollout.breaker_about_to_roll_back({"deploymentCircuitBreaker": {"status": "TRIGGERED"}})
    assert not rollout.breaker_about_to_roll_back({"deploymentCircuitBreaker": {"failureCount": 1, "threshold": 5}})
    assert not rollout.breaker_about_to_roll_back({"status": "IN_PROGRESS"})
