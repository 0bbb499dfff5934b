"""Where the awslogs driver puts a container's output: the one place that knows the stream naming.

ECS names a container's stream ``<awslogs-stream-prefix>/<container name>/<task id>``. Without a prefix (allowed
on EC2 only: Fargate requires one) the driver falls back to Docker's default, the container's id, which ECS
reports as the container's ``runtimeId``; a caller that does not know it gets the task id, the closest guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

AWSLOGS = "awslogs"


def awslogs_options(container_definition: Mapping[str, Any]) -> Mapping[str, str] | None:
    """The container's awslogs options, or None when it logs elsewhere (or nowhere)."""
    conf = container_definition.get("logConfiguration") or {}
    if conf.get("logDriver") != AWSLOGS:
        return None
    options: Mapping[str, str] = conf.get("options") or {}
    return options


def awslogs_containers(task_definition: Mapping[str, Any]) -> dict[str, Mapping[str, str]]:
    """Container name -> awslogs options, for each container of the task definition that logs to CloudWatch."""
    found: dict[str, Mapping[str, str]] = {}
    for c in task_definition.get("containerDefinitions") or []:
        options = awslogs_options(c)
        if options is not None:
            found[str(c.get("name"))] = options
    return found


def stream_name(options: Mapping[str, str], container: str, task_id: str, runtime_id: str | None = None) -> str:
    """The log stream one container of one task writes to."""
    prefix = options.get("awslogs-stream-prefix")
    if prefix:
        return f"{prefix}/{container}/{task_id}"
    return runtime_id or task_id
