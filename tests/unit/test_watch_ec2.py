"""Verdicts for EC2 services (instance targets, dynamic host ports) and for tasks ECS cannot place."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from ecs_ship.watch import (
    DeploymentState,
    Event,
    Goal,
    LoadBalancerBinding,
    Reader,
    Snapshot,
    TargetState,
    assess,
    parse_task,
    targets_of,
)

TG = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-tg/abc"
NEW, OLD = "ecs-svc/new", "ecs-svc/old"
GOAL = Goal(NEW, "serving", (LoadBalancerBinding(TG, "web", 8080),), placement_patience=15.0)
CI = "arn:aws:ecs:us-east-1:1:container-instance/c/ci1"
UNPLACED = (
    "(service web) was unable to place a task because no container instance met all of its requirements. "
    "The closest matching (container-instance ci1) has insufficient memory available."
)


def raw_task(n: int, host_port: int, ci: str = CI, by: str = NEW) -> dict[str, Any]:
    """A bridge-mode task as DescribeTasks returns it: no ENI, a container instance, a dynamic host port."""
    return {
        "taskArn": f"arn:aws:ecs:us-east-1:1:task/c/t{n}",
        "lastStatus": "RUNNING",
        "desiredStatus": "RUNNING",
        "startedBy": by,
        "containerInstanceArn": ci,
        "attachments": [],
        "containers": [
            {
                "name": "web",
                "lastStatus": "RUNNING",
                "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 8080, "hostPort": host_port}],
            }
        ],
    }


def dep(id_: str = NEW, status: str = "PRIMARY", running: int = 0, desired: int = 2, created: float = 100.0) -> Any:
    return DeploymentState(id_, status, "td:2", desired, running, 0, 0, "IN_PROGRESS", None, created)


def instance_target(port: int, state: str = "healthy", instance: str = "i-0abc") -> TargetState:
    return TargetState(TG, instance, port, state, None, None)


def test_parse_task_reads_container_instance_and_host_ports() -> None:
    t = parse_task(raw_task(1, 49160), {"web"}, {CI: "i-0abc"})
    assert t.ip is None
    assert t.container_instance == CI and t.instance_id == "i-0abc"
    assert t.host_ports == frozenset({49160})


def test_two_bridge_tasks_on_one_instance_are_told_apart_by_host_port() -> None:
    a = parse_task(raw_task(1, 49160), {"web"}, {CI: "i-0abc"})
    b = parse_task(raw_task(2, 49161), {"web"}, {CI: "i-0abc"})
    targets = (instance_target(49160), instance_target(49161, "initial"), instance_target(49160, instance="i-other"))
    assert targets_of(a, GOAL, targets) == [targets[0]]
    assert targets_of(b, GOAL, targets) == [targets[1]]
    s = Snapshot(200.0, (dep(running=2),), (a, b), targets, (), 0)
    assert assess(s, GOAL).kind == "waiting"
    healthy = replace(s, targets=(instance_target(49160), instance_target(49161)))
    assert assess(healthy, GOAL).kind == "serving"


def test_an_unhealthy_instance_target_fails_the_deploy() -> None:
    a = parse_task(raw_task(1, 49160), {"web"}, {CI: "i-0abc"})
    bad = replace(instance_target(49160, "unhealthy"), reason="Target.Timeout", description="Request timed out")
    v = assess(Snapshot(200.0, (dep(running=1, desired=1),), (a,), (bad,), (), 0), GOAL)
    assert v.kind == "failed" and "i-0abc:49160" in v.reason and "Target.Timeout" in v.reason


def placement_snap(at: float, event_at: float = 110.0, **kw: Any) -> Snapshot:
    events = (Event("e1", event_at, UNPLACED), Event("e0", 90.0, "(service web) has reached a steady state."))
    deployments = kw.get("deployments", (dep(), dep(OLD, "ACTIVE", 2, 2)))
    return Snapshot(at, deployments, kw.get("tasks", ()), (), events, 0, kw.get("stopping", ()))


def test_unplaceable_tasks_fail_once_the_event_has_stood_for_the_patience() -> None:
    assert assess(placement_snap(at=120.0), GOAL).kind == "waiting"
    v = assess(placement_snap(at=126.0), GOAL)
    assert v.kind == "failed"
    assert UNPLACED in v.reason and NEW in v.reason


def test_an_unplaceable_event_stands_until_ecs_is_steady_or_starts_a_task_for_us() -> None:
    # ECS omits duplicates: the event of the previous, equally stuck deployment is still the current word,
    # and our patience runs from our deployment's start (100).
    early = placement_snap(at=110.0, event_at=50.0)
    assert assess(early, GOAL).kind == "waiting"
    v = assess(replace(early, at=116.0), GOAL)
    assert v.kind == "failed" and UNPLACED in v.reason
    steady = (Event("e2", 60.0, "(service web) has reached a steady state."), *early.events)
    assert assess(replace(early, at=200.0, events=steady), GOAL).kind == "waiting"
    started = (Event("e2", 105.0, "(service web) has started 2 tasks: (task a) (task b)."), *early.events)
    assert assess(replace(early, at=200.0, events=started), GOAL).kind == "waiting"


def test_a_task_started_before_our_deployment_leaves_the_event_standing() -> None:
    # Two tasks want one fixed host port on the one instance: ECS started one and says why the other waits.
    # That start predates our deployment, whose tasks meet the same taken port.
    taken = (
        "(service web) was unable to place a task because no container instance met all of its requirements. "
        "The closest matching (container-instance ci1) is already using a port required by your task."
    )
    events = (
        Event("e2", 51.0, "(service web) has started 1 tasks: (task a)."),
        Event("e1", 50.0, taken),
        Event("e0", 40.0, "(service web) has reached a steady state."),
    )
    snap = replace(placement_snap(at=110.0), events=events)
    assert assess(snap, GOAL).kind == "waiting"
    v = assess(replace(snap, at=116.0), GOAL)
    assert v.kind == "failed" and taken in v.reason


@pytest.mark.parametrize(
    "message",
    [
        # The developer guide's form, and the older one without parentheses that consoles still show.
        "(service web) was unable to place a task. Reason: Capacity is unavailable at this time. Please try again "
        "later or in a different availability zone.",
        "service web was unable to place a task. Reason: Capacity is unavailable at this time. Please try again "
        "later or in a different availability zone.",
    ],
)
def test_fargate_without_capacity_fails_once_the_event_has_stood_for_the_patience(message: str) -> None:
    # Fargate creates no task when it has no capacity for it; only the service event says so.
    events = (Event("e1", 110.0, message), Event("e0", 90.0, "(service web) has reached a steady state."))
    snap = replace(placement_snap(at=120.0), events=events)
    assert assess(snap, GOAL).kind == "waiting"
    v = assess(replace(snap, at=126.0), GOAL)
    assert v.kind == "failed" and message in v.reason and NEW in v.reason


def test_no_placement_verdict_once_a_task_of_ours_exists() -> None:
    placed = parse_task(raw_task(1, 49160), {"web"}, {CI: "i-0abc"})
    assert assess(placement_snap(at=200.0, tasks=(placed,)), GOAL).kind == "waiting"


def test_waits_while_another_deployment_is_stopping_tasks() -> None:
    # An old task on its way to STOPPED (draining, DEACTIVATING): its resources come back, placement may succeed.
    draining = {**raw_task(9, 49170, by=OLD), "lastStatus": "DEACTIVATING", "desiredStatus": "STOPPED"}
    stopping = (parse_task(draining, {"web"}, {CI: "i-0abc"}),)
    shrinking = (dep(), dep(OLD, "ACTIVE", running=1, desired=1))
    assert assess(placement_snap(at=200.0, deployments=shrinking, stopping=stopping), GOAL).kind == "waiting"


def test_a_stall_behind_old_tasks_the_scheduler_keeps_fails() -> None:
    # minimumHealthyPercent 100 on a full instance: ECS keeps every old task and stops none, so nothing will
    # ever make room; whatever the old deployment's counts say, the deploy fails after the patience.
    for old in (dep(OLD, "ACTIVE", running=2, desired=2), dep(OLD, "ACTIVE", running=2, desired=0)):
        v = assess(placement_snap(at=126.0, deployments=(dep(), old)), GOAL)
        assert v.kind == "failed" and UNPLACED in v.reason


def test_a_task_ecs_stopped_restarts_the_patience() -> None:
    stopped = Event("e2", 120.0, "(service web) has stopped 1 running tasks: (task t9).")
    snap = placement_snap(at=130.0)
    snap = replace(snap, events=(stopped, *snap.events))
    assert assess(snap, GOAL).kind == "waiting"
    assert assess(replace(snap, at=136.0), GOAL).kind == "failed"


def test_reader_keeps_other_deployments_tasks_while_they_stop() -> None:
    """While ECS cannot place our task, the other deployments' stopping tasks are followed on every poll: their
    stop frees what ours needs, and moves no counter (a draining task leaves runningCount as it deactivates)."""
    clients = _Clients()
    clients.ecs.service = {
        "deployments": [{"id": NEW, "status": "PRIMARY", "desiredCount": 1, "createdAt": 100.0}],
        "events": [{"id": "e1", "createdAt": 101.0, "message": UNPLACED}],
    }
    clients.ecs.started = []
    draining = {**raw_task(3, 49170, by=OLD), "lastStatus": "DEACTIVATING", "desiredStatus": "STOPPED"}
    clients.ecs.stopped = [draining]
    reader = Reader(clients, "c", "web", lambda: 0.0)  # type: ignore[arg-type]
    assert [t.id for t in reader.snapshot(GOAL).stopping] == ["t3"]
    clients.ecs.stopped = [{**draining, "lastStatus": "STOPPED"}]
    assert reader.snapshot(GOAL).stopping == ()
    clients.ecs.stopped = [draining]  # once STOPPED, never read again
    assert reader.snapshot(GOAL).stopping == ()


class _Ecs:
    def __init__(self) -> None:
        self.instance_calls: list[list[str]] = []
        self.stopped: list[dict[str, Any]] = []  # the service's tasks with desired status STOPPED
        self.service: dict[str, Any] = {"deployments": [], "events": []}
        self.started = ["t1", "t2"]  # ours

    def describe_services(self, **_: Any) -> dict[str, Any]:
        return {"services": [self.service]}

    def get_paginator(self, name: str) -> _Ecs:
        assert name == "list_tasks"
        return self

    def paginate(self, **filters: str) -> Iterator[dict[str, Any]]:
        if "startedBy" in filters:
            yield {"taskArns": self.started}
        else:
            yield {"taskArns": [t["taskArn"] for t in self.stopped]}

    def describe_tasks(self, *, tasks: list[str], **_: Any) -> dict[str, Any]:
        known = [raw_task(1, 49160), raw_task(2, 49161), *self.stopped]
        return {"tasks": [t for t in known if t["taskArn"] in tasks or t["taskArn"].rsplit("/", 1)[-1] in tasks]}

    def describe_container_instances(self, *, containerInstances: list[str], **_: Any) -> dict[str, Any]:
        self.instance_calls.append(containerInstances)
        return {"containerInstances": [{"containerInstanceArn": CI, "ec2InstanceId": "i-0abc"}]}


class _Elbv2:
    def describe_target_health(self, **_: Any) -> dict[str, Any]:
        return {"TargetHealthDescriptions": []}


class _Clients:
    def __init__(self) -> None:
        self.ecs = _Ecs()
        self.elbv2 = _Elbv2()


def test_reader_resolves_container_instances_once_per_watch() -> None:
    clients = _Clients()
    reader = Reader(clients, "c", "web", lambda: 0.0)  # type: ignore[arg-type]
    for _ in range(3):
        snap = reader.snapshot(GOAL)
        assert {t.instance_id for t in snap.tasks} == {"i-0abc"}
    assert clients.ecs.instance_calls == [[CI]]


ROLE_EVENT = (
    "(service web) failed to launch a task with (error ECS was unable to assume the role "
    "'arn:aws:iam::1:role/web-exec' that was provided for this task. Please verify that the role being passed has "
    "the proper trust relationship and permissions and that your IAM user has permissions to pass this role.)."
)


def test_a_role_ecs_cannot_assume_fails_once_the_event_has_stood_for_the_patience() -> None:
    """ECS creates no task when it cannot take on the task's role, and retries: only the event says so. Old
    tasks stopping free nothing that would help, and the patience covers an IAM change still propagating."""
    draining = {**raw_task(9, 49170, by=OLD), "lastStatus": "DEACTIVATING", "desiredStatus": "STOPPED"}
    stopping = (parse_task(draining, {"web"}, {CI: "i-0abc"}),)
    events = (Event("e1", 105.0, ROLE_EVENT), Event("e0", 90.0, "(service web) has reached a steady state."))
    snap = replace(placement_snap(at=115.0, stopping=stopping), events=events)
    assert assess(snap, GOAL).kind == "waiting"
    v = assess(replace(snap, at=121.0), GOAL)
    assert v.kind == "failed" and v.reason.startswith(f"ECS cannot launch any task of deployment {NEW}")
    assert "unable to assume the role 'arn:aws:iam::1:role/web-exec'" in v.reason
    started = (Event("e2", 118.0, "(service web) has started 1 tasks: (task a)."), *events)
    assert assess(replace(snap, at=200.0, events=started), GOAL).kind == "waiting"  # the role works now
