"""What the service's recent deploys measured, from what ECS keeps of them (pure)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from ..aws import timestamp
from .model import History


def task_starts(tasks: Iterable[Mapping[str, Any]]) -> list[float]:
    """Seconds from each task's creation (ECS placed it) to its start (every container running): provisioning,
    the image pull and the containers' own start."""
    found: list[float] = []
    for t in tasks:
        created, started = timestamp(t.get("createdAt")), timestamp(t.get("startedAt"))
        if created is not None and started is not None and started >= created:
            found.append(started - created)
    return found


def completed(deployments: Iterable[Mapping[str, Any]]) -> list[float]:
    """Start to finish of each successful service deployment (DescribeServiceDeployments), newest first."""
    found: list[tuple[float, float]] = []
    for d in deployments:
        if d.get("status") != "SUCCESSFUL":
            continue
        began, ended = timestamp(d.get("startedAt") or d.get("createdAt")), timestamp(d.get("finishedAt"))
        if began is not None and ended is not None and ended >= began:
            found.append((began, ended - began))
    return [took for _, took in sorted(found, reverse=True)]


def history(tasks: Iterable[Mapping[str, Any]], deployments: Iterable[Mapping[str, Any]]) -> History:
    starts = task_starts(tasks)
    return History(
        start=statistics.median(starts) if starts else None,
        start_samples=len(starts),
        completed=tuple(completed(deployments)),
    )
