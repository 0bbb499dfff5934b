"""Tasks RunTask starts (one-off tasks: migrations, batch jobs): the container definitions they run with.

A RunTask call may override, per container, its command and add or replace environment variables
(``overrides.containerOverrides``); the simulator runs the result as it runs a service's task, and
DescribeTasks shows the overrides as given.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any


def overridden(definitions: Sequence[Mapping[str, Any]], overrides: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The container definitions with RunTask's container overrides applied (command replaced, environment
    merged by name); an override naming no container of the task definition is refused, as ECS does."""
    out = [copy.deepcopy(dict(d)) for d in definitions]
    by_name = {d["name"]: d for d in out}
    for o in overrides.get("containerOverrides") or []:
        name = o.get("name")
        if name not in by_name:
            raise ValueError(f"Container name {name!r} in containerOverrides is not in the task definition.")
        d = by_name[name]
        if o.get("command") is not None:
            d["command"] = list(o["command"])
        if o.get("environment"):
            env = {e["name"]: e.get("value", "") for e in d.get("environment") or []}
            env.update({e["name"]: e.get("value", "") for e in o["environment"]})
            d["environment"] = [{"name": k, "value": v} for k, v in env.items()]
    return out
