"""Watch decisions on scripted poll sequences: no AWS, no waiting (clock and sleep are injected)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from ecs_ship.watch import (
    ContainerState,
    DeploymentState,
    Event,
    Goal,
    LoadBalancerBinding,
    Snapshot,
    TargetState,
    TaskState,
    Watcher,
    assess,
    parse_task,
)

TG = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-tg/abc"
TG2 = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/admin-tg/def"
NEW, OLD = "ecs-svc/new", "ecs-svc/old"
GOAL = Goal(NEW, "serving", (LoadBalancerBinding(TG, "web", 8080),))


def dep(
    id_: str = NEW,
    status: str = "PRIMARY",
    running: int = 0,
    rollout: str = "IN_PROGRESS",
    reason: str | None = None,
    desired: int = 1,
) -> DeploymentState:
    return DeploymentState(id_, status, "td:2" if id_ == NEW else "td:1", desired, running, 0, 0, rollout, reason)


def task(
    n: int = 1,
    *,
    last: str = "RUNNING",
    desired: str = "RUNNING",
    by: str = NEW,
    started: float = 0.0,
    reason: str | None = None,
    exit_code: int | None = None,
    ip: str = "10.0.0.1",
) -> TaskState:
    return TaskState(
        arn=f"arn:aws:ecs:us-east-1:1:task/c/t{n}",
        last_status=last,
        desired_status=desired,
        started_by=by,
        task_definition="td:2",
        stopped_reason=reason,
        stop_code=None,
        started_at=started,
        ip=ip,
        ports=frozenset({8080}),
        containers=(ContainerState("web", last, exit_code, None),),
    )


def target(
    state: str, ip: str = "10.0.0.1", tg: str = TG, reason: str | None = None, desc: str | None = None
) -> TargetState:
    return TargetState(tg, ip, 8080, state, reason, desc)


def snap(
    at: float = 10.0,
    deployments: tuple[DeploymentState, ...] = (),
    tasks: tuple[TaskState, ...] = (),
    targets: tuple[TargetState, ...] = (),
    grace: int = 0,
) -> Snapshot:
    return Snapshot(at, deployments, tasks, targets, (), grace)


def test_waiting_until_the_new_target_is_healthy() -> None:
    s = snap(
        deployments=(dep(running=1), dep(OLD, "ACTIVE", 1, "COMPLETED")),
        tasks=(task(),),
        targets=(target("initial", reason="Elb.RegistrationInProgress"), target("healthy", ip="10.0.0.9")),
    )
    assert assess(s, GOAL).kind == "waiting"
    healthy = replace(s, targets=(target("healthy"), target("healthy", ip="10.0.0.9")))
    assert assess(healthy, GOAL).kind == "serving"
    # The old task's healthy target is not ours: it must never make us look healthy.
    only_old = replace(s, targets=(target("healthy", ip="10.0.0.9"),))
    assert assess(only_old, GOAL).kind == "waiting"


def test_stable_once_the_old_deployment_is_gone() -> None:
    s = snap(deployments=(dep(running=1, rollout="COMPLETED"),), tasks=(task(),), targets=(target("healthy"),))
    assert assess(s, GOAL).kind == "stable"


def test_every_target_group_must_be_healthy() -> None:
    goal = replace(GOAL, load_balancers=(*GOAL.load_balancers, LoadBalancerBinding(TG2, "web", 8080)))
    s = snap(deployments=(dep(running=1),), tasks=(task(),), targets=(target("healthy"), target("initial", tg=TG2)))
    assert assess(s, goal).kind == "waiting"
    assert assess(replace(s, targets=(target("healthy"), target("healthy", tg=TG2))), goal).kind in (
        "serving",
        "stable",
    )


def test_unhealthy_target_fails_only_after_the_grace_period() -> None:
    bad = target("unhealthy", reason="Target.ResponseCodeMismatch", desc="Health checks failed with these codes: [500]")
    s = snap(at=20.0, deployments=(dep(running=1),), tasks=(task(started=15.0),), targets=(bad,), grace=30)
    assert assess(s, GOAL).kind == "waiting"
    later = replace(s, at=46.0)
    v = assess(later, GOAL)
    assert v.kind == "failed"
    assert "Target.ResponseCodeMismatch" in v.reason and "[500]" in v.reason


def test_a_stopped_new_task_fails_at_once_with_its_reason() -> None:
    crashed = task(last="STOPPED", desired="STOPPED", reason="Essential container in task exited", exit_code=3)
    v = assess(snap(deployments=(dep(),), tasks=(crashed,)), GOAL)
    assert v.kind == "failed"
    assert "Essential container in task exited" in v.reason and "exit code 3" in v.reason


def test_scale_in_of_our_task_is_not_a_failure() -> None:
    scaled = task(2, last="STOPPED", desired="STOPPED", reason="Scaling activity initiated by (deployment x)")
    s = snap(deployments=(dep(running=1, rollout="COMPLETED"),), tasks=(task(), scaled), targets=(target("healthy"),))
    assert assess(s, GOAL).kind == "stable"


def test_rollout_failed_and_replaced_deployments() -> None:
    failed = dep(rollout="FAILED", reason="ECS deployment circuit breaker: tasks failed to start.")
    v = assess(snap(deployments=(failed,)), GOAL)
    assert v.kind == "failed" and "circuit breaker" in v.reason
    other = DeploymentState("ecs-svc/other", "PRIMARY", "td:3", 1, 0, 0, 0, "IN_PROGRESS", None)
    v = assess(snap(deployments=(other, replace(dep(), status="ACTIVE"))), GOAL)
    assert v.kind == "failed" and "replaced by deployment ecs-svc/other" in v.reason
    assert v.superseded_by == "td:3"
    v = assess(snap(deployments=(other,)), GOAL)
    assert v.kind == "failed" and "is gone" in v.reason and v.superseded_by == "td:3"
    # ECS's circuit breaker marks ours FAILED and rolls back itself: failed, not superseded.
    v = assess(snap(deployments=(other, replace(failed, status="ACTIVE"))), GOAL)
    assert v.superseded_by is None


def test_tasks_of_other_deployments_are_ignored() -> None:
    crashed_old = task(5, last="STOPPED", desired="STOPPED", reason="Essential container in task exited", by=OLD)
    s = snap(deployments=(dep(),), tasks=(crashed_old,))
    assert assess(s, GOAL).kind == "waiting"


def test_parse_task_reads_address_and_bound_ports() -> None:
    raw = {
        "taskArn": "arn:aws:ecs:us-east-1:1:task/c/abc",
        "lastStatus": "RUNNING",
        "desiredStatus": "RUNNING",
        "startedBy": NEW,
        "attachments": [{"details": [{"name": "privateIPv4Address", "value": "10.1.2.3"}]}],
        "containers": [
            {"name": "web", "lastStatus": "RUNNING", "networkBindings": [{"containerPort": 8080, "hostPort": 8080}]},
            {
                "name": "sidecar",
                "lastStatus": "RUNNING",
                "networkBindings": [{"containerPort": 9000, "hostPort": 9000}],
            },
        ],
    }
    t = parse_task(raw, {"web"})
    assert t.ip == "10.1.2.3" and t.ports == frozenset({8080}) and t.id == "abc"


class Script:
    """A reader that replays snapshots and a clock that only moves when the watcher sleeps."""

    def __init__(self, snaps: list[Snapshot]) -> None:
        self.snaps: Iterator[Snapshot] = iter(snaps)
        self.now = 0.0
        self.calls = 0
        self.last = snaps[-1]

    def snapshot(self, goal: Goal) -> Snapshot:
        self.calls += 1
        s = next(self.snaps, self.last)
        return replace(s, at=self.now)

    def close(self) -> None:
        pass

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert 0 <= seconds <= 2.4  # interval 2 s, jitter at most +20 %
        self.now += seconds


def run(snaps: list[Snapshot], timeout: float = 60.0) -> tuple[object, list[str], Script]:
    script = Script(snaps)
    lines: list[str] = []
    w = Watcher(
        reader=script,
        goal=GOAL,
        timeout=timeout,
        interval=2.0,
        say=lines.append,  # type: ignore[arg-type]
        clock=script.clock,
        sleep=script.sleep,
        jitter=lambda: 0.5,
    )
    return w.run(), lines, script


def test_watcher_reports_changes_once_and_stops_at_serving() -> None:
    waiting = snap(deployments=(dep(running=0), dep(OLD, "ACTIVE", 1)), tasks=(task(last="PENDING"),))
    started = snap(deployments=(dep(running=1), dep(OLD, "ACTIVE", 1)), tasks=(task(),), targets=(target("initial"),))
    serving = replace(started, targets=(target("healthy"),))
    outcome, lines, script = run([waiting, waiting, started, started, serving])
    assert outcome.ok and outcome.verdict.kind == "serving"  # type: ignore[attr-defined]
    assert lines.count("task t1: PENDING") == 1
    assert "task t1: PENDING -> RUNNING" in lines
    assert "target 10.0.0.1:8080 in web-tg: initial" in lines
    assert any(line.startswith("serving:") for line in lines)
    assert script.calls == 5
    assert outcome.milestones["serving"] == pytest.approx(8.0)  # type: ignore[attr-defined]


def test_watcher_fails_fast_and_times_out() -> None:
    crashed = snap(deployments=(dep(),), tasks=(task(last="STOPPED", desired="STOPPED", reason="boom"),))
    outcome, _, script = run([snap(deployments=(dep(),)), crashed])
    assert not outcome.ok and "boom" in outcome.verdict.reason  # type: ignore[attr-defined]
    assert script.now == pytest.approx(2.0)  # reported on the first poll that showed it

    outcome, _, script = run([snap(deployments=(dep(),))], timeout=10)
    assert not outcome.ok and "timed out after 10s" in outcome.verdict.reason  # type: ignore[attr-defined]
    assert script.now == pytest.approx(10.0)


def test_events_are_printed_once_and_only_new_ones() -> None:
    old = Event("e0", -100.0, "(service s) has reached a steady state.")
    new = Event("e1", 1.0, "(service s) has started 1 tasks: (task t1).")
    s1 = replace(snap(deployments=(dep(),)), events=(old,))
    s2 = replace(s1, events=(new, old))
    s3 = replace(s2, deployments=(dep(running=1, rollout="COMPLETED"),), tasks=(task(),), targets=(target("healthy"),))
    _, lines, _ = run([s1, s2, s2, s3])
    events = [line for line in lines if line.startswith("event:")]
    assert events == ["event: (service s) has started 1 tasks: (task t1)."]


def test_live_status_line_is_drawn_and_cleared() -> None:
    script = Script(
        [snap(deployments=(dep(running=1, rollout="COMPLETED"),), tasks=(task(),), targets=(target("healthy"),))]
    )
    shown: list[str] = []
    w = Watcher(
        reader=script,
        goal=GOAL,
        timeout=10,
        interval=2.0,
        say=lambda _: None,  # type: ignore[arg-type]
        clock=script.clock,
        sleep=script.sleep,
        jitter=lambda: 0.5,
        progress=shown.append,
    )
    assert w.run().ok
    assert "targets healthy 1/1" in shown[0] and "tasks running 1/1" in shown[0]
    assert shown[-1] == ""
