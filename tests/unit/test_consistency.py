"""Version consistency: the digests ECS resolved for the deploy's service revision against those pushed."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ecs_ship import consistency
from ecs_ship.watch import ContainerState, TaskState
from tests.unit.test_service_deployments import stubbed

__all__ = ["stubbed"]  # the fixture, used by name

REVISION = "arn:aws:ecs:us-east-1:1:service-revision/c/s/222"
PUSHED = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def images(*pairs: tuple[str, str | None]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, digest in pairs:
        image: dict[str, Any] = {"containerName": name, "image": f"reg/{name}@{PUSHED}"}
        if digest:
            image["imageDigest"] = digest
        out.append(image)
    return out


def test_only_a_resolved_digest_that_differs_is_a_mismatch() -> None:
    resolved = images(("web", OTHER), ("sidecar", PUSHED), ("log", None), ("not-ours", OTHER))
    lines = consistency.mismatches({"web": PUSHED, "sidecar": PUSHED, "log": PUSHED}, resolved)
    assert lines == [f"container web: ECS resolved reg/web@{PUSHED} to {OTHER}, ecs-ship pushed {PUSHED}"]


def expect_revision(stub: Any, resolved: list[dict[str, Any]]) -> None:
    stub.add_response(
        "describe_service_revisions",
        {"serviceRevisions": [{"serviceRevisionArn": REVISION, "containerImages": resolved}], "failures": []},
        {"serviceRevisionArns": [REVISION]},
    )


def test_a_revision_that_resolved_another_digest_fails_the_deploy_naming_both(stubbed: Any) -> None:
    clients, stub = stubbed
    expect_revision(stub, images(("web", OTHER)))
    said: list[str] = []
    failure = consistency.check(clients, REVISION, {"web": PUSHED}, said.append)
    assert failure is not None and failure.startswith("version consistency: container web") and OTHER in failure
    assert said == []
    stub.assert_no_pending_responses()


def test_agreeing_digests_are_said_once_and_pass(stubbed: Any) -> None:
    clients, stub = stubbed
    expect_revision(stub, images(("web", PUSHED)))
    said: list[str] = []
    assert consistency.check(clients, REVISION, {"web": PUSHED}, said.append) is None
    assert said == ["ECS resolved web to the digests pushed"]


def test_without_service_deployments_or_revisions_nothing_is_read_or_failed(stubbed: Any) -> None:
    clients, stub = stubbed
    assert consistency.check(clients, None, {"web": PUSHED}, print) is None  # no call at all
    stub.add_client_error("describe_service_revisions", "UnknownOperationException", http_status_code=400)
    assert consistency.check(clients, REVISION, {"web": PUSHED}, print) is None
    stub.add_client_error("describe_service_revisions", "ThrottlingException", http_status_code=400)
    try:
        consistency.check(clients, REVISION, {"web": PUSHED}, print)
    except ClientError as exc:  # a real fault is not mistaken for "no record"
        assert exc.response["Error"]["Code"] == "ThrottlingException"
    else:
        raise AssertionError("a throttled read must not pass as consistent")


def task(*containers: tuple[str, str | None], last: str = "RUNNING") -> TaskState:
    return TaskState(
        arn="arn:aws:ecs:us-east-1:1:task/c/t1",
        last_status=last,
        desired_status="RUNNING",
        started_by="ecs-svc/1",
        task_definition="td:2",
        stopped_reason=None,
        stop_code=None,
        started_at=None,
        ip=None,
        ports=frozenset(),
        containers=tuple(ContainerState(name, last, None, None, image_digest=d) for name, d in containers),
    )


def test_the_running_tasks_answer_without_a_call_when_they_name_every_container_pushed(stubbed: Any) -> None:
    clients, _ = stubbed  # no response is queued: any call fails the test
    said: list[str] = []
    tasks = [task(("web", PUSHED), ("sidecar", OTHER))]
    assert consistency.check(clients, REVISION, {"web": PUSHED}, said.append, tasks) is None
    assert said == ["the new tasks run web at the digests pushed"]
    failure = consistency.check(clients, REVISION, {"web": OTHER}, said.append, tasks)
    assert failure == f"version consistency: container web: a task runs {PUSHED}, ecs-ship pushed {OTHER}"


def test_tasks_that_name_no_digest_for_a_container_pushed_leave_it_to_the_revision(stubbed: Any) -> None:
    clients, stub = stubbed
    expect_revision(stub, images(("web", PUSHED), ("worker", OTHER)))
    # web's digest is known from the task, worker's is not (not pulled yet, or an endpoint without the field);
    # a task still PENDING says nothing either.
    tasks = [task(("web", PUSHED), ("worker", None)), task(("worker", PUSHED), last="PENDING")]
    failure = consistency.check(clients, REVISION, {"web": PUSHED, "worker": PUSHED}, print, tasks)
    assert failure is not None and "container worker: ECS resolved" in failure
    stub.assert_no_pending_responses()
