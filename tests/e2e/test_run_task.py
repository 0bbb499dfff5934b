"""One-off tasks through plain boto3 RunTask, as a user's migration job would start them: they run as real
containers with the call's overrides, stop when their essential container exits (its exit code and logs kept),
are found by their startedBy, and StopTask stops one that runs on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions
import pytest

from tests.e2e.conftest import poll
from tests.sandbox.bootstrap import CONTAINER, World
from tests.sandbox.sandbox import Sandbox


def _run(ecs: Any, w: World, started_by: str, command: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    overrides: dict[str, Any] = {"containerOverrides": [{"name": CONTAINER, "command": command}]} if command else {}
    [task] = ecs.run_task(
        cluster=w.cluster,
        taskDefinition=w.task_definition_arn,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": w.subnets, "securityGroups": [w.security_group]}},
        startedBy=started_by,
        overrides=overrides,
        **extra,
    )["tasks"]
    return dict(task)


def _stopped(ecs: Any, w: World, arn: str) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        return dict(ecs.describe_tasks(cluster=w.cluster, tasks=[arn])["tasks"][0])

    return dict(poll(read, lambda t: t["lastStatus"] == "STOPPED", 60, "the task to stop"))


def test_a_one_off_task_runs_its_command_and_stops_with_its_exit_code_and_logs(
    sandbox: Sandbox, make_world: Callable[..., World]
) -> None:
    w = make_world()
    c = sandbox.clients()
    ecs, logs = c["ecs"], c["logs"]
    task = _run(ecs, w, "migrate-1", ["sh", "-c", "echo migrating to v7; exit 3"])
    assert task["startedBy"] == "migrate-1" and task["group"] == f"family:{w.family}"
    assert task["overrides"]["containerOverrides"][0]["command"][0] == "sh"
    assert ecs.list_tasks(cluster=w.cluster, startedBy="migrate-1")["taskArns"] == [task["taskArn"]]

    done = _stopped(ecs, w, task["taskArn"])
    [container] = done["containers"]
    assert container["exitCode"] == 3
    assert done["stopCode"] == "EssentialContainerExited" and done["desiredStatus"] == "STOPPED"
    stream = f"ecs/{CONTAINER}/{task['taskArn'].rsplit('/', 1)[-1]}"
    events = poll(
        lambda: logs.get_log_events(logGroupName=w.log_group, logStreamName=stream)["events"],
        lambda e: any("migrating to v7" in x["message"] for x in e),
        30,
        "the task's log line",
    )
    assert events
    # The service was not touched: its one task still runs, nothing replaced the one-off task.
    svc = ecs.describe_services(cluster=w.cluster, services=[w.service])["services"][0]
    assert svc["runningCount"] == 1 and len(svc["deployments"]) == 1
    assert ecs.list_tasks(cluster=w.cluster, desiredStatus="RUNNING", family=w.family)["taskArns"] == [
        t for t in ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"]
    ]


def test_a_one_off_task_that_exits_zero_and_one_stopped_by_the_user(
    sandbox: Sandbox, make_world: Callable[..., World]
) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    ok = _run(ecs, w, "job-ok", ["true"])
    hang = _run(ecs, w, "job-hang", ["sleep", "600"])
    assert _stopped(ecs, w, ok["taskArn"])["containers"][0]["exitCode"] == 0

    poll(
        lambda: ecs.describe_tasks(cluster=w.cluster, tasks=[hang["taskArn"]])["tasks"][0]["lastStatus"],
        lambda s: s == "RUNNING",
        30,
        "the hanging task to run",
    )
    ecs.stop_task(cluster=w.cluster, task=hang["taskArn"], reason="migration timed out")
    stopped = _stopped(ecs, w, hang["taskArn"])
    assert stopped["stoppedReason"] == "migration timed out" and stopped["stopCode"] == "UserInitiated"


def test_an_override_for_a_container_the_task_lacks_and_a_missing_network_are_refused(
    sandbox: Sandbox, make_world: Callable[..., World]
) -> None:
    w = make_world(wait=False)
    ecs = sandbox.clients()["ecs"]
    network = {"awsvpcConfiguration": {"subnets": w.subnets, "securityGroups": [w.security_group]}}
    refusals = [
        (
            {"networkConfiguration": network, "overrides": {"containerOverrides": [{"name": "db", "command": ["x"]}]}},
            "'db'",
        ),
        # An awsvpc task needs its subnets, as the API reference says.
        ({}, "Network Configuration must be provided when networkMode 'awsvpc' is specified."),
    ]
    for call, message in refusals:
        with pytest.raises(botocore.exceptions.ClientError) as err:
            ecs.run_task(cluster=w.cluster, taskDefinition=w.task_definition_arn, **call)
        assert err.value.response["Error"]["Code"] == "InvalidParameterException"
        assert message in err.value.response["Error"]["Message"]
    assert ecs.list_tasks(cluster=w.cluster, family=w.family, desiredStatus="STOPPED")["taskArns"] == []
