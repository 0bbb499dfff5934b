"""The last lines a task's containers wrote to CloudWatch Logs, for the diagnosis."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import logstreams
from ..aws import Clients
from .model import TaskState


def log_tail_reader(
    clients: Clients, task_definition: Mapping[str, Any], lines: int = 20
) -> Callable[[TaskState], list[str]]:
    """Fetch the last lines a failed task's containers wrote to CloudWatch Logs (awslogs driver)."""
    configs = logstreams.awslogs_containers(task_definition)

    def tail(task: TaskState) -> list[str]:
        out: list[str] = []
        names: Sequence[str] = [c.name for c in task.containers] or list(configs)
        for name in names:
            opts = configs.get(name)
            if not opts or not opts.get("awslogs-group"):
                continue
            stream = logstreams.stream_name(opts, name, task.id)
            try:
                events = clients.logs.get_log_events(
                    logGroupName=opts["awslogs-group"], logStreamName=stream, limit=lines, startFromHead=False
                ).get("events", [])
            except Exception as exc:  # a missing stream must not hide the rest of the diagnosis
                out.append(f"[{name}] (no logs: {exc})")
                continue
            out += [f"[{name}] {e.get('message', '').rstrip()}" for e in events]
        return out

    return tail
