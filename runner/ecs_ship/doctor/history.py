"""What the service's recent deploys measured, from what ECS keeps of them (pure)."""

from __future__ import annotations

import re
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


_COMPLETED = re.compile(r"\(deployment (\S+)\) deployment completed")
_STARTED = re.compile(r"\) has started \d+ tasks")


def completed_from_events(events: Iterable[Mapping[str, Any]], deployments: Iterable[Mapping[str, Any]]) -> list[float]:
    """Start to finish of each deploy the service's events tell (DescribeServices keeps the last 100), newest
    first: where ECS lists no service deployments (an account or Region without them, or a role not allowed
    ecs:ListServiceDeployments). A deploy ends at its "(deployment D) deployment completed." event; it began at
    D's createdAt while the service still lists D, else at the first "has started N tasks" event after the deploy
    before it ended (ECS starts a deployment's first tasks within seconds of it)."""
    created = {str(d.get("id")): timestamp(d.get("createdAt")) for d in deployments}
    timed = sorted((at, str(e.get("message", ""))) for e in events if (at := timestamp(e.get("createdAt"))) is not None)
    found: list[float] = []
    began: float | None = None
    for at, message in timed:
        done = _COMPLETED.search(message)
        if done:
            start = created.get(done.group(1)) or began
            if start is not None and at >= start:
                found.append(at - start)
            began = None
        elif _STARTED.search(message) and began is None:
            began = at
    return found[::-1]


# The stoppedReason ECS gives a task it replaced because its target failed the load balancer's health checks.
FAILED_ELB_CHECKS = "failed ELB health checks"


def _images(task: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(str(c.get("imageDigest") or c.get("image") or "") for c in task.get("containers") or []))


def stopped_before_ready(stopped: Iterable[Mapping[str, Any]], running: Iterable[Mapping[str, Any]]) -> list[float]:
    """How long each task lived (startedAt to stoppingAt) that ECS stopped for failing ELB health checks while a
    task of the same images runs now: that image can serve, so it was not broken but not given the time to
    start. Shortest first. ECS lists a stopped task for about an hour: older evidence is gone."""
    serving = {_images(t) for t in running if t.get("lastStatus") == "RUNNING"}
    lived: list[float] = []
    for t in stopped:
        if FAILED_ELB_CHECKS not in str(t.get("stoppedReason") or "") or _images(t) not in serving:
            continue
        started, stopping = timestamp(t.get("startedAt")), timestamp(t.get("stoppingAt") or t.get("stoppedAt"))
        if started is not None and stopping is not None and stopping >= started:
            lived.append(stopping - started)
    return sorted(lived)


# ECS's stopCode for a task its service scheduler stopped: a deploy replacing it, a scale-in, a failed check.
SCHEDULER = "ServiceSchedulerInitiated"
SIGKILL_EXIT = 137  # 128 + 9: killed, here by ECS once stopTimeout ran out after SIGTERM


def killed_at_stop(stopped: Iterable[Mapping[str, Any]]) -> tuple[int, list[str]]:
    """Of the tasks ECS's scheduler stopped with their containers' exit codes known: how many, and the containers
    (one per task, by name) that did not exit on SIGTERM and were killed. An out-of-memory kill exits 137 too;
    ECS says so in the container's reason, and it is not counted."""
    stops, killed = 0, []
    for t in stopped:
        if t.get("stopCode") != SCHEDULER or t.get("lastStatus") != "STOPPED":
            continue
        containers = [c for c in t.get("containers") or [] if c.get("exitCode") is not None]
        if not containers:
            continue
        stops += 1
        for c in containers:
            if c.get("exitCode") == SIGKILL_EXIT and "OutOfMemory" not in str(c.get("reason") or ""):
                killed.append(str(c.get("name", "")))
                break
    return stops, killed


def history(
    tasks: Iterable[Mapping[str, Any]],
    deployments: Iterable[Mapping[str, Any]] | None,
    service: Mapping[str, Any] | None = None,
    stopped: Iterable[Mapping[str, Any]] = (),
) -> History:
    """What was measured: task starts, and the recent deploys from ECS's service deployments or, where they are
    not to be had (``deployments`` None), from the service's events."""
    tasks, stopped = list(tasks), list(stopped)
    starts = task_starts(tasks)
    stops, killed = killed_at_stop(stopped)
    if deployments is not None:
        took, source = completed(deployments), "its service deployments"
    else:
        service = service or {}
        took, source = (
            completed_from_events(service.get("events") or [], service.get("deployments") or []),
            "its events",
        )
    return History(
        start=statistics.median(starts) if starts else None,
        start_samples=len(starts),
        completed=tuple(took),
        completed_from=source if took else None,
        stopped_before_ready=tuple(stopped_before_ready(stopped, tasks)),
        stops=stops,
        killed=tuple(killed),
    )
