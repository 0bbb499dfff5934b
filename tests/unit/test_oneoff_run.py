"""Running a one-off task against a stubbed ECS and CloudWatch Logs: exit 0 passes, another exit code fails
with its logs, a timeout and an interruption stop the task, a task ECS could not start fails at once, and the
messages name the list the task came from."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ecs_ship import oneoff_run
from ecs_ship.aws import Clients
from ecs_ship.errors import DeploymentFailed, Interrupted
from ecs_ship.plan import ApiCall
from ecs_ship.spec import OneOffSpec

ARN = "arn:aws:ecs:us-east-1:1:task/prod/abc123"
TD = "arn:aws:ecs:us-east-1:1:task-definition/app:8"
PARAMS = {
    "cluster": "prod",
    "taskDefinition": "<new revision>",
    "count": 1,
    "startedBy": "ecs-ship/migrate",
    "overrides": {"containerOverrides": [{"name": "web", "command": ["migrate"]}]},
}
DOCUMENT = {
    "containerDefinitions": [
        {
            "name": "web",
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": "/ecs/app", "awslogs-stream-prefix": "ecs"},
            },
        }
    ]
}


class World:
    def __init__(self) -> None:
        kw: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
        self.ecs, self.logs = boto3.client("ecs", **kw), boto3.client("logs", **kw)
        self.ecs_stub, self.logs_stub = Stubber(self.ecs), Stubber(self.logs)
        self.now = 0.0
        self.said: list[str] = []
        self.cancelled = False

    def env(self) -> oneoff_run.Env:
        def check() -> None:
            if self.cancelled:
                raise Interrupted("interrupted")

        def sleep(s: float) -> None:
            self.now += s

        clients = Clients("us-east-1", self.ecs, None, self.logs, None)  # type: ignore[arg-type]
        return oneoff_run.Env(clients, self.said.append, check, lambda: self.now, sleep, 1.0)

    def started(self) -> None:
        self.ecs_stub.add_response(
            "run_task",
            {"tasks": [{"taskArn": ARN, "lastStatus": "PROVISIONING"}], "failures": []},
            {**PARAMS, "taskDefinition": TD},
        )

    def poll(self, status: str, lines: list[str], **task: Any) -> None:
        """One poll: DescribeTasks answers `status`, the log stream has `lines` more."""
        self.ecs_stub.add_response(
            "describe_tasks",
            {"tasks": [{"taskArn": ARN, "lastStatus": status, **task}]},
            {"cluster": "prod", "tasks": [ARN]},
        )
        self.log_lines(lines)

    def log_lines(self, lines: list[str]) -> None:
        events = [{"timestamp": 1, "message": m, "ingestionTime": 1} for m in lines]
        self.logs_stub.add_response("get_log_events", {"events": events, "nextForwardToken": "f/1"}, None)


JOB = oneoff_run.job_of(
    ApiCall("ecs", "run_task", PARAMS, "pre_deploy migrate"),
    (OneOffSpec("migrate", None, ("migrate",), 5.0),),
    DOCUMENT,
)


def test_exit_zero_passes_and_its_log_lines_are_shown_as_they_come() -> None:
    w = World()
    w.started()
    w.poll("RUNNING", ["migrating 1/2"])
    w.poll("STOPPED", ["migrating 2/2"], containers=[{"name": "web", "exitCode": 0}])
    w.log_lines([])  # read once more at the stop: nothing more
    with w.ecs_stub, w.logs_stub:
        oneoff_run.run(w.env(), JOB, TD)
    assert "  [migrate] migrating 1/2" in w.said and "  [migrate] migrating 2/2" in w.said
    assert w.said[-1] == "pre_deploy migrate: container web exited 0"


def test_another_exit_code_fails_with_the_stop_reason_and_the_last_log_lines() -> None:
    w = World()
    w.started()
    w.poll(
        "STOPPED",
        ["error: relation users exists"],
        containers=[{"name": "web", "exitCode": 1}],
        stoppedReason="Essential container in task exited",
        stopCode="EssentialContainerExited",
    )
    w.log_lines([])
    with w.ecs_stub, w.logs_stub, pytest.raises(DeploymentFailed) as err:
        oneoff_run.run(w.env(), JOB, TD)
    assert str(err.value) == "pre_deploy task migrate failed: container web exited 1"
    assert err.value.diagnosis == [
        "task abc123 stopped: Essential container in task exited (EssentialContainerExited)",
        "last log lines:",
        "  [web] error: relation users exists",
    ]


def test_a_task_past_its_timeout_is_stopped_and_waited_for() -> None:
    w = World()
    w.started()
    for _ in range(6):  # t = 0..5: the timeout is 5 s, polled every second
        w.poll("RUNNING", [])
    w.ecs_stub.add_response(
        "stop_task",
        {"task": {"taskArn": ARN}},
        {"cluster": "prod", "task": ARN, "reason": "ecs-ship: pre_deploy migrate timed out after 5s"},
    )
    w.ecs_stub.add_response("describe_tasks", {"tasks": [{"taskArn": ARN, "lastStatus": "STOPPED"}]}, None)
    with w.ecs_stub, w.logs_stub, pytest.raises(DeploymentFailed) as err:
        oneoff_run.run(w.env(), JOB, TD)
    assert "ran longer than its timeout (5s) and was stopped" in str(err.value)
    w.ecs_stub.assert_no_pending_responses()


def test_an_interruption_stops_the_task_without_waiting_and_goes_on() -> None:
    w = World()
    w.started()
    w.poll("RUNNING", [])
    w.ecs_stub.add_response("stop_task", {"task": {"taskArn": ARN}}, None)
    env = w.env()
    sleep = env.sleep

    def cancel_on_sleep(s: float) -> None:
        sleep(s)
        w.cancelled = True

    env.sleep = cancel_on_sleep
    with w.ecs_stub, w.logs_stub, pytest.raises(Interrupted):
        oneoff_run.run(env, JOB, TD)
    w.ecs_stub.assert_no_pending_responses()
    assert w.said[-1].startswith("pre_deploy migrate: stopping task abc123 (ecs-ship: interrupted")


def test_a_task_ecs_could_not_start_fails_at_once_with_its_reason() -> None:
    w = World()
    w.ecs_stub.add_response("run_task", {"tasks": [], "failures": [{"reason": "RESOURCE:MEMORY", "arn": "ci-1"}]}, None)
    with w.ecs_stub, pytest.raises(DeploymentFailed) as err:
        oneoff_run.run(w.env(), JOB, TD)
    assert "ECS started no task (RESOURCE:MEMORY: ci-1)" in str(err.value)


def test_a_post_deploy_task_is_named_as_one_and_its_failure_leaves_the_service_to_the_caller() -> None:
    w = World()
    w.started()
    w.poll("STOPPED", ["cache warm-up: 3 of 9 keys missing"], containers=[{"name": "web", "exitCode": 2}])
    w.log_lines([])
    job = oneoff_run.job_of(
        ApiCall("ecs", "run_task", PARAMS, "post_deploy migrate"),
        (OneOffSpec("migrate", None, ("migrate",), 5.0, phase="post_deploy"),),
        DOCUMENT,
    )
    with w.ecs_stub, w.logs_stub, pytest.raises(DeploymentFailed) as err:
        oneoff_run.run(w.env(), job, TD)
    assert w.said[0] == "post_deploy migrate: started task abc123: migrate"
    assert str(err.value) == "post_deploy task migrate failed: container web exited 2"
    assert err.value.diagnosis[-1] == "  [web] cache warm-up: 3 of 9 keys missing"
    # Whether the service is rolled back is decided by the deploy, not here.
    assert err.value.fix is None and not err.value.rolled_back
