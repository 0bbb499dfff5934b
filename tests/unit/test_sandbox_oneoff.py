"""RunTask's container overrides on the task definition's containers, as the sandbox runs them, and the subnet
its tasks' network interfaces are in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.motoworld import ServiceKey, SimTask
from tests.sandbox.oneoff import overridden

DEFS = [
    {"name": "web", "image": "app", "command": ["serve"], "environment": [{"name": "A", "value": "1"}]},
    {"name": "log", "image": "fluent"},
]


def test_command_is_replaced_and_environment_merged_by_name_for_the_named_container_only() -> None:
    overrides = {
        "containerOverrides": [
            {"name": "web", "command": ["migrate", "up"], "environment": [{"name": "A", "value": "2"}, {"name": "B"}]}
        ]
    }
    web, log = overridden(DEFS, overrides)
    assert web["command"] == ["migrate", "up"]
    assert web["environment"] == [{"name": "A", "value": "2"}, {"name": "B", "value": ""}]
    assert log == DEFS[1]
    assert DEFS[0]["command"] == ["serve"]  # the task definition itself is untouched


def test_no_overrides_runs_the_definitions_as_they_are() -> None:
    assert overridden(DEFS, {}) == DEFS


def test_an_override_of_a_container_the_task_definition_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="'db'"):
        overridden(DEFS, {"containerOverrides": [{"name": "db", "command": ["x"]}]})


def _task(network_mode: str, network: dict[str, Any] | None) -> SimTask:
    return SimTask(
        key=ServiceKey("123456789012", "us-east-1", "c", ""),
        cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/c",
        task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/app:1",
        started_by="ecs-ship/migrate",
        containers=[("web", "app", True)],
        group="family:app",
        launch_type="FARGATE",
        network_mode=network_mode,
        network_configuration=network,
    )


def test_an_awsvpc_task_s_network_interface_is_in_one_of_the_subnets_it_was_given() -> None:
    network = {"awsvpcConfiguration": {"subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-1"]}}
    for _ in range(10):
        [eni] = _task("awsvpc", network).attachments
        details = {d["name"]: d["value"] for d in eni["details"]}
        assert details["privateIPv4Address"] == "127.0.0.1" and details["subnetId"] in ("subnet-a", "subnet-b")
    assert _task("bridge", network).attachments == []
    [eni] = _task("awsvpc", None).attachments
    assert "subnetId" not in {d["name"] for d in eni["details"]}
