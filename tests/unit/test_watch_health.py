"""Verdicts on services judged by container health checks, on stop codes, and on listing many tasks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from ecs_ship.aws import Clients
from ecs_ship.watch import (
    ContainerCheck,
    Goal,
    Reader,
    Snapshot,
    TaskState,
    Watcher,
    assess,
    checks_of,
    parse_task,
)
from tests.unit.test_watch import GOAL, NEW, OLD, Script, dep, snap, target, task

WORKER_CHECK = ContainerCheck("web", "CMD-SHELL wget -q -O- http://127.0.0.1:8080/health || exit 1", True)
WORKER = Goal(NEW, "serving", (), (WORKER_CHECK,))
BARE_WORKER = Goal(NEW, "serving", ())


def checked(t: TaskState, health: str, container_health: str | None = None) -> TaskState:
    containers = tuple(replace(c, health_status=container_health or health) for c in t.containers)
    return replace(t, health_status=health, containers=containers)


def stopped(n: int, reason: str, code: str, *, exit_code: int | None = None, by: str = NEW) -> TaskState:
    t = task(n, last="STOPPED", desired="STOPPED", reason=reason, exit_code=exit_code, by=by)
    return replace(t, stop_code=code)


# --------------------------------------------------------------------------------------------
# services without a load balancer: the container health check decides
# --------------------------------------------------------------------------------------------
def test_worker_serves_only_once_its_container_check_is_healthy() -> None:
    s = snap(deployments=(dep(running=1),), tasks=(checked(task(), "UNKNOWN"),))
    assert assess(s, WORKER).kind == "waiting"  # RUNNING is not enough while the check is evaluated
    assert assess(replace(s, tasks=(checked(task(), "HEALTHY"),)), WORKER).kind == "serving"


def test_worker_without_any_check_serves_when_running() -> None:
    s = snap(deployments=(dep(running=1),), tasks=(task(),))
    assert assess(s, BARE_WORKER).kind == "serving"
    assert assess(replace(s, tasks=(task(last="PENDING"),)), BARE_WORKER).kind == "waiting"


def test_unhealthy_container_fails_after_the_grace_period_naming_the_check() -> None:
    sick = checked(task(started=15.0), "UNHEALTHY")
    s = snap(at=20.0, deployments=(dep(running=1),), tasks=(sick,), grace=30)
    assert assess(s, WORKER).kind == "waiting"
    v = assess(replace(s, at=46.0), WORKER)
    assert v.kind == "failed"
    assert "UNHEALTHY" in v.reason and "container web failed its health check" in v.reason
    assert WORKER_CHECK.command in v.reason


def test_non_essential_check_does_not_decide() -> None:
    goal = Goal(NEW, "serving", (), (replace(WORKER_CHECK, essential=False),))
    s = snap(deployments=(dep(running=1),), tasks=(checked(task(), "UNKNOWN", "UNHEALTHY"),))
    assert assess(s, goal).kind == "serving"


def test_task_stopped_by_failed_container_checks_names_the_check() -> None:
    gone = checked(stopped(1, "Task failed container health checks", "ServiceSchedulerInitiated"), "UNHEALTHY")
    v = assess(snap(deployments=(dep(),), tasks=(gone,)), WORKER)
    assert v.kind == "failed"
    assert "Task failed container health checks" in v.reason and WORKER_CHECK.command in v.reason


def test_load_balanced_task_with_checks_needs_both() -> None:
    goal = replace(GOAL, health_checks=(WORKER_CHECK,))
    s = snap(deployments=(dep(running=1),), tasks=(checked(task(), "UNKNOWN"),), targets=(target("healthy"),))
    assert assess(s, goal).kind == "waiting"
    assert assess(replace(s, tasks=(checked(task(), "HEALTHY"),)), goal).kind == "serving"


def test_checks_of_reads_the_task_definition() -> None:
    td = {
        "containerDefinitions": [
            {"name": "app", "healthCheck": {"command": ["CMD-SHELL", "test -f /ready"], "interval": 5}},
            {"name": "log-router", "essential": False, "healthCheck": {"command": ["CMD", "true"]}},
            {"name": "plain"},
        ]
    }
    assert checks_of(td) == (
        ContainerCheck("app", "CMD-SHELL test -f /ready", True),
        ContainerCheck("log-router", "CMD true", False),
    )


def test_parse_task_reads_health_status() -> None:
    raw = {
        "taskArn": "arn:aws:ecs:us-east-1:1:task/c/abc",
        "healthStatus": "UNHEALTHY",
        "containers": [{"name": "web", "healthStatus": "UNHEALTHY"}, {"name": "side"}],
    }
    t = parse_task(raw, set())
    assert t.health_status == "UNHEALTHY"
    assert [c.health_status for c in t.containers] == ["UNHEALTHY", "UNKNOWN"]


# --------------------------------------------------------------------------------------------
# stop codes
# --------------------------------------------------------------------------------------------
def test_interrupted_tasks_are_replaced_not_failed() -> None:
    for code, reason in (
        ("SpotInterruption", "Your Spot Task was interrupted."),
        ("TerminationNotice", "Your task was stopped because its host is being terminated."),
    ):
        gone = stopped(1, reason, code)
        s = snap(deployments=(dep(running=0),), tasks=(gone,), targets=())
        assert assess(s, GOAL).kind == "waiting", code
        replaced = replace(s, deployments=(dep(running=1),), tasks=(gone, task(2)), targets=(target("healthy"),))
        assert assess(replaced, GOAL).kind == "serving", code


def test_failures_to_start_and_exits_fail_the_revision() -> None:
    for gone in (
        stopped(1, "CannotPullContainerError: pull access denied", "TaskFailedToStart"),
        stopped(1, "ResourceInitializationError: unable to pull secrets", "TaskFailedToStart"),
        stopped(1, "Essential container in task exited", "EssentialContainerExited", exit_code=3),
    ):
        v = assess(snap(deployments=(dep(),), tasks=(gone,)), GOAL)
        assert v.kind == "failed" and gone.stopped_reason is not None and gone.stopped_reason in v.reason
        assert gone.stop_code is not None and gone.stop_code in v.reason


def test_scale_in_after_our_deployment_took_over_is_not_a_failure() -> None:
    scaled = stopped(2, f"Scaling activity initiated by (deployment {NEW})", "ServiceSchedulerInitiated")
    s = snap(deployments=(dep(running=1, rollout="COMPLETED"),), tasks=(task(), scaled), targets=(target("healthy"),))
    assert assess(s, GOAL).kind == "stable"


# --------------------------------------------------------------------------------------------
# the watcher's words and diagnosis
# --------------------------------------------------------------------------------------------
def watch(goal: Goal, snaps: list[Snapshot], timeout: float = 60.0) -> tuple[Any, list[str]]:
    script = Script(snaps)
    lines: list[str] = []
    w = Watcher(
        reader=script,  # type: ignore[arg-type]
        goal=goal,
        timeout=timeout,
        interval=2.0,
        say=lines.append,
        clock=script.clock,
        sleep=script.sleep,
        jitter=lambda: 0.5,
        log_tail=lambda t: [f"[web] {t.id}: listening on port 3000"],
    )
    return w.run(), lines


def test_watcher_says_once_that_running_is_enough_without_checks() -> None:
    s = snap(deployments=(dep(running=1),), tasks=(task(),))
    outcome, lines = watch(BARE_WORKER, [snap(deployments=(dep(),)), s])
    assert outcome.ok
    told = [line for line in lines if "a RUNNING task counts as serving" in line]
    assert len(told) == 1
    _, lines = watch(WORKER, [replace(s, tasks=(checked(task(), "HEALTHY"),))])
    assert not any("counts as serving" in line for line in lines)
    assert any(line.startswith("serving: every new task is HEALTHY by its container health checks") for line in lines)


def test_watcher_tells_an_interruption_apart() -> None:
    gone = stopped(1, "Your Spot Task was interrupted.", "SpotInterruption")
    first = snap(deployments=(dep(running=1),), tasks=(task(),), targets=(target("initial"),))
    hit = snap(deployments=(dep(running=0),), tasks=(gone,))
    back = snap(deployments=(dep(running=1),), tasks=(gone, task(2)), targets=(target("healthy"),))
    outcome, lines = watch(GOAL, [first, hit, hit, back])
    assert outcome.ok
    told = [line for line in lines if "not a failure of the new revision" in line]
    assert told == [
        "task t1 stopped, interrupted (SpotInterruption): its Spot capacity was reclaimed: "
        "not a failure of the new revision; ECS replaces it"
    ]


def test_diagnosis_has_the_log_tail_of_running_but_unhealthy_tasks() -> None:
    s = snap(deployments=(dep(running=1),), tasks=(task(),), targets=(target("initial"),))
    outcome, _ = watch(GOAL, [s], timeout=6)
    assert not outcome.ok
    assert "last log lines of task t1:" in outcome.diagnosis
    assert "  [web] t1: listening on port 3000" in outcome.diagnosis
    sick = snap(deployments=(dep(running=1),), tasks=(checked(task(), "UNHEALTHY"),))
    outcome, _ = watch(WORKER, [sick])
    assert "container web failed its health check" in outcome.verdict.reason
    assert "  [web] t1: listening on port 3000" in outcome.diagnosis


# --------------------------------------------------------------------------------------------
# the reader: ListTasks pages, startedBy alone
# --------------------------------------------------------------------------------------------
class FakeEcs:
    """ListTasks as the API reference has it: pages of at most 100, startedBy only on its own."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = tasks
        self.listed: list[dict[str, str]] = []
        self.described: list[str] = []

    def describe_services(self, **_: Any) -> dict[str, Any]:
        deployment = {"id": NEW, "status": "PRIMARY", "desiredCount": 150, "runningCount": 150}
        return {"services": [{"deployments": [deployment], "events": []}]}

    def get_paginator(self, name: str) -> FakeEcs:
        assert name == "list_tasks"
        return self

    def paginate(self, cluster: str, **filters: str) -> Iterator[dict[str, Any]]:
        self.listed.append(filters)
        if "startedBy" in filters:
            assert list(filters) == ["startedBy"], "startedBy must be the only filter"
        want = filters.get("desiredStatus", "RUNNING")
        arns = [
            t["taskArn"]
            for t in self.tasks
            if t["desiredStatus"] == want and filters.get("startedBy", t["startedBy"]) == t["startedBy"]
        ]
        for i in range(0, len(arns), 100):
            yield {"taskArns": arns[i : i + 100]}

    def describe_tasks(self, cluster: str, tasks: list[str]) -> dict[str, Any]:
        assert len(tasks) <= 100
        self.described += tasks
        return {"tasks": [t for t in self.tasks if t["taskArn"] in tasks]}


def raw_task(n: int, by: str, desired: str = "RUNNING") -> dict[str, Any]:
    return {"taskArn": f"arn:aws:ecs:us-east-1:1:task/c/t{n}", "startedBy": by, "desiredStatus": desired}


def test_reader_pages_through_more_than_100_tasks_with_started_by_alone() -> None:
    fake = FakeEcs(
        [raw_task(n, NEW) for n in range(150)]
        + [raw_task(200, NEW, "STOPPED")]
        + [{**raw_task(300 + n, OLD, "STOPPED"), "lastStatus": "STOPPED"} for n in range(3)]
    )
    reader = Reader(Clients("us-east-1", fake, None, None, None), "c", "svc", lambda: 0.0)
    s = reader.snapshot(replace(WORKER, load_balancers=()))
    ours = {t.id for t in s.tasks}
    assert len(ours) == 151 and "t200" in ours and not ours & {"t300", "t301", "t302"}
    assert {"startedBy": NEW} in fake.listed
    # Another deployment's stopped tasks are described once they are STOPPED, not on every poll.
    fake.described.clear()
    reader.snapshot(WORKER)
    assert not {a for a in fake.described if a.rsplit("/", 1)[-1] in ("t300", "t301", "t302")}
