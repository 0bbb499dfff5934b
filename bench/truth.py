"""Pure: what really happened (the sandbox ledger's facts and calls) against what a tool said and when.

Every moment here is wall-clock seconds since the epoch, as the ledger stamps them; the callers turn them into
seconds since the tool's start. Nothing here touches the sandbox, so tests feed it fake facts and calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tests.sandbox.ledger import Call, Fact, is_write

# What a tool waits for, as a fact of the sandbox's ground truth.
NEW_TARGET_HEALTHY = "new target healthy"
NEW_TARGET_UNHEALTHY = "new target unhealthy"
NEW_TASK_STOPPED = "new task stopped"
DEPLOYMENT_COMPLETED = "deployment completed"
TRUTHS = (NEW_TARGET_HEALTHY, NEW_TARGET_UNHEALTHY, NEW_TASK_STOPPED, DEPLOYMENT_COMPLETED)

# ecs-ship's own words (commands/deploy_end.py says it before explaining and rolling back; watch/poller.py says
# "serving: every new task is …" once the new tasks serve). Matched loosely so a reworded line still counts.
FAILED_LINE = re.compile(r"deployment failed", re.IGNORECASE)
SERVING_LINE = re.compile(r"\bserving: ")
# What a user would read as "AWS throttled me": botocore's error code or AWS's message.
# An error or warning about throttling; not ecs-ship's closing count of requests ("throttled 0").
THROTTLING_LINE = re.compile(r"\bthrottling\b|throttlingexception|rate exceeded", re.IGNORECASE)


@dataclass(frozen=True)
class Line:
    """One line a tool printed, stamped when the harness read it."""

    at: float
    stream: str  # stdout | stderr
    text: str
    source: str = ""  # which process printed it, for runs of several


@dataclass(frozen=True)
class ServiceRef:
    """One deployed service as the truth sees it: facts name tasks by ARN (which holds the cluster) and targets by
    "<target group ARN>|<ip>:<port>"."""

    name: str  # the label ecs-ship prints it under ("[name] …") in a spec with several services
    cluster: str
    service: str
    target_group_arn: str


def _task_in(subject: str, cluster: str) -> bool:
    # Task ARNs are arn:aws:ecs:<region>:<account>:task/<cluster>/<id>.
    return f":task/{cluster}/" in subject


def _target_in(subject: str, target_group_arn: str) -> bool:
    return subject.startswith(target_group_arn + "|")


def truth_at(
    facts: Sequence[Fact],
    truth: str,
    svc: ServiceRef,
    start: float,
    deployment_ids: Iterable[str] = (),
) -> float | None:
    """The moment the thing a tool waits for first happened after `start`, or None if it never did.

    "New" targets and tasks are those no fact named before `start`: the service's old task and target are
    excluded even when they change state during the run (an old target draining, say).
    """
    known = {f.subject for f in facts if f.at < start}
    later = [f for f in facts if f.at >= start and f.subject not in known]
    if truth == DEPLOYMENT_COMPLETED:
        ids = set(deployment_ids)
        # The completion of a deployment that existed before the start (the world's first one) cannot be ours,
        # so `known` is applied to it too.
        hits = [f.at for f in later if f.kind == "deployment_completed" and f.subject in ids]
    elif truth in (NEW_TARGET_HEALTHY, NEW_TARGET_UNHEALTHY):
        kind = "target_healthy" if truth == NEW_TARGET_HEALTHY else "target_unhealthy"
        fresh = {f.subject for f in later if _target_in(f.subject, svc.target_group_arn)}
        hits = [f.at for f in facts if f.at >= start and f.kind == kind and f.subject in fresh]
    elif truth == NEW_TASK_STOPPED:
        hits = [f.at for f in later if f.kind == "task_stopped" and _task_in(f.subject, svc.cluster)]
    else:
        raise ValueError(f"unknown truth {truth!r}: one of {', '.join(TRUTHS)}")
    return min(hits) if hits else None


def first_line(lines: Iterable[Line], pattern: re.Pattern[str], label: str | None = None) -> float | None:
    """When the first line matching `pattern` was read; with `label`, only lines ecs-ship printed for that service
    ("[label] …")."""
    tag = f"[{label}] " if label else None
    for line in sorted(lines, key=lambda x: x.at):
        if (tag is None or tag in line.text) and pattern.search(line.text):
            return line.at
    return None


def calls_between(calls: Sequence[Call], start: float, end: float) -> list[Call]:
    """The calls the sandbox answered while the tool ran: by time, since the harness's own calls (building the
    world before, reading the deployment ids after) fall outside the window."""
    return [c for c in calls if start <= c.at <= end]


def first_write_at(calls: Iterable[Call]) -> float | None:
    writes = [c.at for c in calls if is_write(c.action)]
    return min(writes) if writes else None


def watch_rate(calls: Sequence[Call], end: float) -> float | None:
    """Calls a second from the first UpdateService (the switch) to the end: what following the rollout costs,
    without the fixed reads and writes before it."""
    switch = [c.at for c in calls if c.action == "UpdateService"]
    if not switch:
        return None
    after = [c for c in calls if c.at >= min(switch)]
    return rate(len(after), end - min(switch))


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0
