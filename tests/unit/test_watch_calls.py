"""The API calls each poll makes: only what can have changed is read (botocore Stubbers: every call must be
expected, in order, and an unexpected one fails the test)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ecs_ship import deploy
from ecs_ship.aws import Clients
from ecs_ship.watch import DeploymentState, Goal, LoadBalancerBinding, Reader, assess, cadence
from ecs_ship.watch.board import ServiceBoard

TG = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-tg/abc"
NEW, OLD = "ecs-svc/new", "ecs-svc/old"
SD = "arn:aws:ecs:us-east-1:1:service-deployment/c/web/abc"
GOAL = Goal(NEW, "serving", (LoadBalancerBinding(TG, "web", 8080),), service_deployment_arn=SD)
AT = datetime(2026, 1, 1, tzinfo=UTC)
TASK = "arn:aws:ecs:us-east-1:1:task/c/t1"


class Clock:
    def __init__(self) -> None:
        self.now = AT.timestamp() + 60

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world() -> Iterator[tuple[Clients, Stubber, Stubber, Clock]]:
    kw: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
    ecs, elbv2 = boto3.client("ecs", **kw), boto3.client("elbv2", **kw)
    with Stubber(ecs) as s_ecs, Stubber(elbv2) as s_elb:
        yield Clients("us-east-1", ecs, elbv2), s_ecs, s_elb, Clock()
        s_ecs.assert_no_pending_responses()
        s_elb.assert_no_pending_responses()


def deployment(id_: str, status: str, running: int, pending: int = 0, failed: int = 0) -> dict[str, Any]:
    return {
        "id": id_,
        "status": status,
        "taskDefinition": "td:2" if id_ == NEW else "td:1",
        "desiredCount": 1,
        "runningCount": running,
        "pendingCount": pending,
        "failedTasks": failed,
        "rolloutState": "IN_PROGRESS" if id_ == NEW else "COMPLETED",
        "createdAt": AT,
    }


def service(new: dict[str, Any], old_running: int = 1, events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    deps = [new] + ([deployment(OLD, "ACTIVE", old_running)] if old_running >= 0 else [])
    return {"services": [{"serviceName": "web", "deployments": deps, "events": events or []}], "failures": []}


def started_event(*ids: str) -> dict[str, Any]:
    """ECS's service event for a placement, after our deployment was created."""
    named = " ".join(f"(task {i})" for i in ids)
    return {
        "id": f"e-{'-'.join(ids)}",
        "createdAt": AT,
        "message": f"(service web) has started {len(ids)} tasks: {named}.",
    }


def sd(status: str = "IN_PROGRESS") -> dict[str, Any]:
    return {"serviceDeployments": [{"serviceDeploymentArn": SD, "status": status}], "failures": []}


def tasks(last: str = "RUNNING", desired: str = "RUNNING") -> dict[str, Any]:
    return {
        "tasks": [
            {
                "taskArn": TASK,
                "lastStatus": last,
                "desiredStatus": desired,
                "startedBy": NEW,
                "startedAt": AT,
                "containers": [
                    {"name": "web", "lastStatus": last, "networkBindings": [{"containerPort": 8080, "hostPort": 8080}]}
                ],
                "attachments": [{"details": [{"name": "privateIPv4Address", "value": "10.0.0.1"}]}],
            }
        ],
        "failures": [],
    }


def health(state: str) -> dict[str, Any]:
    th: dict[str, Any] = {"State": state}
    if state == "initial":
        th["Reason"] = "Elb.InitialHealthChecking"
    return {"TargetHealthDescriptions": [{"Target": {"Id": "10.0.0.1", "Port": 8080}, "TargetHealth": th}]}


def expect_first_task_read(s_ecs: Stubber, s_elb: Stubber) -> None:
    """The poll in which our task is first seen running: the service, our tasks (ECS's events name no task we
    do not see, so no stopped ones), and the new task's target group."""
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 1), events=[started_event("t1")]))
    s_ecs.add_response("list_tasks", {"taskArns": [TASK]}, {"cluster": "c", "startedBy": NEW})
    s_ecs.add_response("describe_tasks", tasks())
    s_elb.add_response("describe_target_health", health("initial"), {"TargetGroupArn": TG})


def start_running(clients: Clients, s_ecs: Stubber, s_elb: Stubber, clock: Clock) -> Reader:
    """A reader that has seen the deployment start, its task run, and its target `initial`."""
    reader = Reader(clients, "c", "web", clock)
    # First poll: nothing of ours placed yet: the service and ECS's service deployment, no tasks, no targets.
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 0)))
    s_ecs.add_response("describe_service_deployments", sd("PENDING"))
    assert assess(reader.snapshot(GOAL), GOAL).kind == "waiting"
    # The task runs: a counter moved, so the tasks are read, the stopped ones too this first time (a task placed
    # and stopped before ours were ever read), and its target group. ECS's record of a rolling update has no
    # news for it.
    clock.now += 1
    expect_first_task_read(s_ecs, s_elb)
    assert assess(reader.snapshot(GOAL), GOAL).kind == "waiting"
    return reader


def test_a_placed_deployment_waiting_on_health_reads_the_target_group_alone(world: Any) -> None:
    clients, s_ecs, s_elb, clock = world
    reader = start_running(clients, s_ecs, s_elb, clock)
    # Health phase: one call a poll, the service every HEALTH_PHASE_SERVICE_EVERY seconds.
    for _ in range(int(cadence.HEALTH_PHASE_SERVICE_EVERY) - 1):
        clock.now += 1
        s_elb.add_response("describe_target_health", health("initial"))
        reader.snapshot(GOAL)
    clock.now += 1
    s_elb.add_response("describe_target_health", health("initial"))
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 1)))
    reader.snapshot(GOAL)
    # Healthy: the service is read at once to confirm the counts, and the verdict is given in the same poll.
    clock.now += 1
    s_elb.add_response("describe_target_health", health("healthy"))
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 1)))
    assert assess(reader.snapshot(GOAL), GOAL).kind == "serving"


def test_an_unhealthy_target_is_news_read_with_the_service_in_the_same_poll(world: Any) -> None:
    clients, s_ecs, s_elb, clock = world
    reader = start_running(clients, s_ecs, s_elb, clock)
    clock.now += 1
    s_elb.add_response(
        "describe_target_health",
        {
            "TargetHealthDescriptions": [
                {
                    "Target": {"Id": "10.0.0.1", "Port": 8080},
                    "TargetHealth": {"State": "unhealthy", "Reason": "Target.ResponseCodeMismatch"},
                }
            ]
        },
    )
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 1)))
    verdict = assess(reader.snapshot(GOAL), GOAL)
    assert verdict.kind == "failed" and "Target.ResponseCodeMismatch" in verdict.reason


def test_a_task_that_stops_is_read_with_the_stopped_tasks(world: Any) -> None:
    clients, s_ecs, s_elb, clock = world
    reader = start_running(clients, s_ecs, s_elb, clock)
    # ECS stops the crashed task: it deregisters its target (gone from the group), a news that reads the
    # service; its counters moved and a task was lost, so both task lists are read.
    clock.now += 1
    s_elb.add_response("describe_target_health", {"TargetHealthDescriptions": []})
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 0, failed=1)))
    s_ecs.add_response("describe_service_deployments", sd())  # the failed count moved: the breaker may count it
    s_ecs.add_response("list_tasks", {"taskArns": []}, {"cluster": "c", "startedBy": NEW})
    s_ecs.add_response(
        "list_tasks", {"taskArns": [TASK]}, {"cluster": "c", "serviceName": "web", "desiredStatus": "STOPPED"}
    )
    stopped = tasks("STOPPED", "STOPPED")
    stopped["tasks"][0]["stoppedReason"] = "Essential container in task exited"
    s_ecs.add_response("describe_tasks", stopped)
    verdict = assess(reader.snapshot(GOAL), GOAL)
    assert verdict.kind == "failed" and "Essential container in task exited" in verdict.reason


def test_a_quiet_service_costs_one_call_a_poll_and_tasks_are_read_again_at_the_refresh(world: Any) -> None:
    """Nothing of ours is placed for a while (capacity on its way): the service alone, every poll."""
    clients, s_ecs, _, clock = world
    reader = Reader(clients, "c", "web", clock)
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 0)))
    s_ecs.add_response("describe_service_deployments", sd("PENDING"))
    reader.snapshot(GOAL)
    for _ in range(int(cadence.SERVICE_DEPLOYMENT_REFRESH) - 1):
        clock.now += 1
        s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 0)))
        reader.snapshot(GOAL)
    clock.now += 1  # ECS's own record is read again now and then, in case it moved with no counter
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 0)))
    s_ecs.add_response("describe_service_deployments", sd("PENDING"))
    reader.snapshot(GOAL)


def test_the_old_deployment_draining_reads_no_tasks_once_ours_all_run(world: Any) -> None:
    """Until `stable`: the old tasks leaving move only the old deployment's counters, which ours no longer
    waits on; the target group is read every few seconds, to see a target of ours turn unhealthy."""
    clients, s_ecs, s_elb, clock = world
    goal = replace(GOAL, until="stable")
    reader = start_running(clients, s_ecs, s_elb, clock)
    clock.now += 1
    s_elb.add_response("describe_target_health", health("healthy"))
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 1)))
    assert assess(reader.snapshot(goal), goal).kind == "serving"
    polls = int(cadence.TARGETS_REFRESH)
    for n in range(1, polls + 1):
        clock.now += 1
        s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 1), old_running=0))
        if n == polls:
            s_elb.add_response("describe_target_health", health("healthy"))
        reader.snapshot(goal)


def test_the_board_reads_ten_services_of_a_cluster_in_one_call() -> None:
    class Ecs:
        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
            self.calls.append(services)
            return {"services": [{"serviceName": s, "deployments": [], "events": []} for s in services]}

    clock = Clock()
    board = ServiceBoard(clock)
    names = [f"svc{n:02}" for n in range(12)]
    for name in names:
        board.watch("us-east-1", "c", name)
    ecs = Ecs()
    for name in names:
        found = board.describe(ecs, "us-east-1", "c", name, max_age=0.5)
        assert found is not None and found["serviceName"] == name
    assert [len(c) for c in ecs.calls] == [10, 10]  # svc10 reads svc11 and the eight read longest ago
    assert ecs.calls[0][0] == "svc00"
    # Half a poll later every answer is still fresh: no call; a poll later each is read again, ten at a time.
    clock.now += 0.4
    for name in names:
        board.describe(ecs, "us-east-1", "c", name, max_age=0.5)
    before = len(ecs.calls)
    clock.now += 1
    for name in names:
        board.describe(ecs, "us-east-1", "c", name, max_age=0.5)
    assert len(ecs.calls) - before == 2
    # A service that is not watched any more is not read along.
    board.unwatch("us-east-1", "c", "svc11")
    clock.now += 1
    board.describe(ecs, "us-east-1", "c", "svc00", max_age=0.5)
    assert "svc11" not in ecs.calls[-1]


def test_a_watch_never_takes_the_boards_answer_from_before_its_deployment() -> None:
    """The preparation read the service through the board a moment before UpdateService: that answer has no
    deployment of ours, and taking it would read as 'our deployment is gone'."""
    calls: list[str] = []

    class Ecs:
        def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
            calls.append("DescribeServices")
            deps = [deployment(NEW, "PRIMARY", 0)] if len(calls) > 1 else [deployment(OLD, "PRIMARY", 1)]
            return {"services": [{"serviceName": s, "deployments": deps, "events": []} for s in services]}

    clock = Clock()
    board = ServiceBoard(clock)
    board.describe(Ecs(), "us-east-1", "c", "web", max_age=5.0)  # the preparation's read
    clock.now += 0.1
    reader = Reader(Clients("us-east-1", Ecs()), "c", "web", clock, board, max_age=1.0)
    goal = replace(GOAL, service_deployment_arn=None, load_balancers=())
    assert [d.id for d in reader.snapshot(goal).deployments] == [NEW]
    assert calls == ["DescribeServices", "DescribeServices"]


def test_services_prepared_in_parallel_read_a_shared_load_balancer_once() -> None:
    import threading
    import time

    reads: list[int] = []
    clients = Clients("us-east-1")

    def read() -> str:
        reads.append(1)
        time.sleep(0.05)  # a real read takes a while: the others arrive meanwhile
        return "routes"

    threads = [threading.Thread(target=lambda: clients.once(("lb", "arn"), read)) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(reads) == 1 and clients.once(("lb", "arn"), read) == "routes"


def test_a_task_replaced_between_two_polls_is_still_seen_stopped(world: Any) -> None:
    """A Spot interruption: ECS stops our task and its replacement runs before the next poll, so every counter
    reads as before. The target that went away says so, and the task no longer listed is looked for among the
    stopped ones."""
    clients, s_ecs, s_elb, clock = world
    reader = start_running(clients, s_ecs, s_elb, clock)
    clock.now += 1
    s_elb.add_response("describe_target_health", {"TargetHealthDescriptions": []})
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 1)))
    s_ecs.add_response("list_tasks", {"taskArns": [TASK + "b"]}, {"cluster": "c", "startedBy": NEW})
    s_ecs.add_response(
        "list_tasks", {"taskArns": [TASK]}, {"cluster": "c", "serviceName": "web", "desiredStatus": "STOPPED"}
    )
    interrupted = tasks("STOPPED", "STOPPED")["tasks"][0]
    interrupted.update(stopCode="SpotInterruption", stoppedReason="Your Spot Task was interrupted.")
    replacement = {**tasks()["tasks"][0], "taskArn": TASK + "b"}
    s_ecs.add_response("describe_tasks", {"tasks": [replacement, interrupted], "failures": []})
    snap = reader.snapshot(GOAL)
    assert {t.arn: t.stop_code for t in snap.tasks} == {TASK + "b": None, TASK: "SpotInterruption"}
    assert assess(snap, GOAL).kind == "waiting"


def test_a_watch_seeded_with_the_update_service_answer_reads_nothing_until_a_counter_moves(world: Any) -> None:
    """UpdateService answered with the service and its new deployment, and created ECS's service deployment
    PENDING: the first poll is that answer, and neither DescribeServices nor DescribeServiceDeployments is called
    until our deployment's tasks move. A task only placed is no news to a rolling update: the tasks are read
    when it runs, and ECS's record of a rolling update is not read for either."""
    clients, s_ecs, s_elb, clock = world
    reader = Reader(clients, "c", "web", clock)
    reader.seed(service(deployment(NEW, "PRIMARY", 0))["services"][0])
    assert assess(reader.snapshot(GOAL), GOAL).kind == "waiting"  # no call: the stubs have nothing queued
    clock.now += 1
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 0)))
    assert assess(reader.snapshot(GOAL), GOAL).kind == "waiting"
    clock.now += 1
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 0, pending=1)))
    assert reader.snapshot(GOAL).tasks == ()
    clock.now += 1
    expect_first_task_read(s_ecs, s_elb)
    assert [t.last_status for t in reader.snapshot(GOAL).tasks] == ["RUNNING"]


def test_a_staged_strategy_reads_ecs_record_as_its_green_tasks_are_placed() -> None:
    """Blue/green, linear and canary deployments pass lifecycle stages as the green tasks scale up: a change
    in our placed tasks is a reason to read ECS's record; for a rolling update it is not."""
    placed = (
        DeploymentState(NEW, "PRIMARY", "td:2", 1, 0, 1, 0, "IN_PROGRESS", None),
        DeploymentState(OLD, "ACTIVE", "td:1", 1, 1, 0, 0, "COMPLETED", None),
    )
    none = (replace(placed[0], pending=0), placed[1])
    green = replace(GOAL, strategy="BLUE_GREEN")
    assert cadence.lifecycle(GOAL, placed) == cadence.lifecycle(GOAL, none)
    assert cadence.lifecycle(green, placed) != cadence.lifecycle(green, none)


def test_a_placed_task_that_stops_before_it_runs_is_read() -> None:
    placed = frozenset({(NEW, "PRIMARY", 1, 0, 1, 0)})
    assert not cadence.moved(frozenset({(NEW, "PRIMARY", 1, 0, 0, 0)}), placed)  # placed: not news
    assert cadence.moved(placed, frozenset({(NEW, "PRIMARY", 1, 0, 0, 0)}))  # gone again: it stopped
    assert cadence.moved(placed, frozenset({(NEW, "PRIMARY", 1, 0, 1, 1)}))  # replaced, one failed
    assert cadence.moved(placed, frozenset({(NEW, "PRIMARY", 1, 1, 0, 0)}))  # runs
    assert cadence.moved(placed, placed | {(OLD, "ACTIVE", 1, 1, 0, 0)})  # another deployment appeared
    assert cadence.moved(None, placed)


def test_the_target_groups_of_a_runs_services_are_read_in_one_call(world: Any) -> None:
    """Twenty services of a spec, one DescribeTargetGroups: the first preparation reads the groups of every
    service the board knows, the others find theirs kept. A group of another service that is gone does not
    fail this one's preparation: ours are read alone."""
    clients, _, s_elb, clock = world
    board = ServiceBoard(clock)

    class Ecs:
        def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
            return {
                "services": [{"serviceName": s, "loadBalancers": [{"targetGroupArn": f"{TG}-{s}"}]} for s in services]
            }

    for name in ("a", "b", "c"):
        board.watch("us-east-1", "c", name)
    board.describe(Ecs(), "us-east-1", "c", "a", max_age=5.0)

    def group(name: str) -> dict[str, Any]:
        return {"TargetGroupArn": f"{TG}-{name}", "TargetGroupName": name}

    others = [f"{TG}-{s}" for s in ("a", "b", "c")]
    s_elb.add_response(
        "describe_target_groups", {"TargetGroups": [group(s) for s in "abc"]}, {"TargetGroupArns": others}
    )
    assert deploy.describe_target_groups(clients, [f"{TG}-a"], others) == [group("a")]
    assert deploy.describe_target_groups(clients, [f"{TG}-c"], others) == [group("c")]  # no call
    clients.forget()  # the next run reads again; this time another service's group is gone
    s_elb.add_client_error("describe_target_groups", "TargetGroupNotFound", http_status_code=400)
    s_elb.add_response("describe_target_groups", {"TargetGroups": [group("b")]}, {"TargetGroupArns": [f"{TG}-b"]})
    assert deploy.describe_target_groups(clients, [f"{TG}-b"], others) == [group("b")]
    s_elb.add_client_error("describe_target_groups", "TargetGroupNotFound", http_status_code=400)
    with pytest.raises(ClientError):  # our own group gone: the preparation's error, as before
        deploy.describe_target_groups(clients, [f"{TG}-x"])


def test_a_new_run_in_the_same_process_reads_what_the_last_one_kept() -> None:
    clients = Clients("us-east-1")
    assert clients.once("k", lambda: 1) == 1 and clients.once("k", lambda: 2) == 1
    clients.forget()
    assert clients.once("k", lambda: 3) == 3


def test_a_task_placed_and_interrupted_before_ours_were_ever_read_is_found_at_the_first_read(world: Any) -> None:
    """A Spot task stopped before the watch read any task of ours, its replacement placed at once: no counter
    says so, but ECS's events name both tasks it started. The one not running is looked for among the stopped."""
    clients, s_ecs, s_elb, clock = world
    reader = Reader(clients, "c", "web", clock)
    reader.seed(service(deployment(NEW, "PRIMARY", 0))["services"][0])
    reader.snapshot(GOAL)
    clock.now += 1
    events = [started_event("t1b"), started_event("t1")]
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 1), events=events))
    s_ecs.add_response("list_tasks", {"taskArns": [TASK + "b"]}, {"cluster": "c", "startedBy": NEW})
    s_ecs.add_response(
        "list_tasks", {"taskArns": [TASK]}, {"cluster": "c", "serviceName": "web", "desiredStatus": "STOPPED"}
    )
    interrupted = tasks("STOPPED", "STOPPED")["tasks"][0]
    interrupted.update(stopCode="SpotInterruption")
    s_ecs.add_response(
        "describe_tasks", {"tasks": [{**tasks()["tasks"][0], "taskArn": TASK + "b"}, interrupted], "failures": []}
    )
    s_elb.add_response("describe_target_health", health("initial"), {"TargetGroupArn": TG})
    assert {t.arn: t.stop_code for t in reader.snapshot(GOAL).tasks} == {TASK + "b": None, TASK: "SpotInterruption"}


def test_only_tasks_ecs_started_since_our_deployment_began_are_looked_for() -> None:
    from ecs_ship.watch.model import Event, Snapshot
    from ecs_ship.watch.reader import parse_deployment

    began = AT.timestamp()
    snap = Snapshot(
        at=began + 10,
        deployments=(parse_deployment(deployment(NEW, "PRIMARY", 1)),),
        tasks=(),
        targets=(),
        events=(
            Event("2", began + 5, "(service web) has started 2 tasks: (task 0af3) (task 9c1e)."),
            Event("1", began - 60, "(service web) has started 1 tasks: (task 77aa)."),  # the old deployment's
            Event("0", began + 6, "(service web) has reached a steady state."),
        ),
        grace_period=0,
    )
    assert cadence.started_tasks(snap, GOAL) == {"0af3", "9c1e"}


def test_the_old_deployment_draining_as_ours_starts_lists_no_stopped_tasks(world: Any) -> None:
    """Ours runs as the old task stops in the same poll: only our tasks are listed, not the service's stopped
    ones (the old deployment's tasks leaving are what a rolling update does, not news)."""
    clients, s_ecs, s_elb, clock = world
    reader = Reader(clients, "c", "web", clock)
    reader.seed(service(deployment(NEW, "PRIMARY", 0))["services"][0])
    reader.snapshot(GOAL)
    clock.now += 1
    s_ecs.add_response(
        "describe_services", service(deployment(NEW, "PRIMARY", 1), old_running=0, events=[started_event("t1")])
    )
    s_ecs.add_response("list_tasks", {"taskArns": [TASK]}, {"cluster": "c", "startedBy": NEW})
    s_ecs.add_response("describe_tasks", tasks())
    s_elb.add_response("describe_target_health", health("initial"), {"TargetGroupArn": TG})
    assert assess(reader.snapshot(GOAL), GOAL).kind == "waiting"


def test_a_rolling_update_reads_ecs_record_only_when_ours_fails_or_another_takes_over() -> None:
    new = DeploymentState(NEW, "PRIMARY", "td:2", 1, 1, 0, 0, "IN_PROGRESS", None)
    old = DeploymentState(OLD, "ACTIVE", "td:1", 1, 1, 0, 0, "COMPLETED", None)
    key = cadence.lifecycle(GOAL, (new, old))
    assert cadence.lifecycle(GOAL, (replace(new, rollout_state="COMPLETED"),)) == key  # done, old drained away
    assert cadence.lifecycle(GOAL, (replace(new, rollout_state="FAILED"), old)) != key
    assert cadence.lifecycle(GOAL, (replace(new, failed=1), old)) != key  # the breaker counts it
    rollback = DeploymentState("ecs-svc/back", "PRIMARY", "td:1", 1, 0, 0, 0, "IN_PROGRESS", None)
    assert cadence.lifecycle(GOAL, (replace(new, status="ACTIVE"), old, rollback)) != key
    green = replace(GOAL, strategy="BLUE_GREEN")  # a staged strategy's record moves with every deployment
    assert cadence.lifecycle(green, (new,)) != cadence.lifecycle(green, (new, old))


def test_while_ours_cannot_be_placed_another_deployments_stopping_tasks_are_listed() -> None:
    """The stall verdict waits while tasks of other deployments stop (they free CPU, memory and ports)."""
    from ecs_ship.watch.model import Event, Snapshot

    began = AT.timestamp()
    new = DeploymentState(NEW, "PRIMARY", "td:2", 1, 0, 0, 0, "IN_PROGRESS", began)
    old = DeploymentState(OLD, "ACTIVE", "td:1", 2, 2, 0, 0, "COMPLETED", began - 600)
    drained = replace(old, running=1)
    stuck = Event("e1", began + 5, "(service web) was unable to place a task because no container instance met all")

    def snap(*deps: DeploymentState, events: tuple[Event, ...] = ()) -> Snapshot:
        return Snapshot(at=began + 10, deployments=deps, tasks=(), targets=(), events=events, grace_period=0)

    assert not cadence.lost_tasks(GOAL, (new, old), snap(new, drained))
    assert cadence.lost_tasks(GOAL, (new, old), snap(new, drained, events=(stuck,)))
    assert cadence.lost_tasks(GOAL, (new, old), snap(replace(new, failed=1), old))


def test_while_only_target_health_is_awaited_tasks_and_ecs_record_are_refreshed_once_a_minute(world: Any) -> None:
    """AWS's defaults hold a new target `initial` for up to 150 s: a task of ours that stops in that time moves
    its target and the service's counters, so the tasks and ECS's record are only refreshed, rarely."""
    clients, s_ecs, s_elb, clock = world
    reader = start_running(clients, s_ecs, s_elb, clock)
    every = int(cadence.HEALTH_PHASE_SERVICE_EVERY)
    for n in range(1, int(cadence.HEALTH_PHASE_REFRESH)):
        clock.now += 1
        s_elb.add_response("describe_target_health", health("initial"))
        if n % every == 0:
            s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 1)))
        reader.snapshot(GOAL)
    clock.now += 1  # a minute since they were read: the service's poll refreshes them
    s_elb.add_response("describe_target_health", health("initial"))
    s_ecs.add_response("describe_services", service(deployment(NEW, "PRIMARY", 1)))
    s_ecs.add_response("describe_service_deployments", sd())
    s_ecs.add_response("list_tasks", {"taskArns": [TASK]}, {"cluster": "c", "startedBy": NEW})
    s_ecs.add_response("describe_tasks", tasks())
    assert assess(reader.snapshot(GOAL), GOAL).kind == "waiting"
