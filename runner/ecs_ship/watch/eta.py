"""When the next milestone is expected (pure): a new target is healthy about (threshold - 1/2) x interval after ELBv2
first checks it, as AWS documents (timing.py), and an old one is drained its group's deregistration delay after it
began draining; `ecs-ship doctor` prices the same settings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..timing import health_seconds
from .model import Goal, TargetState


def schedule_of(goal: Goal, target_group: str) -> tuple[int, int] | None:
    return next(((i, n) for arn, i, n in goal.health_schedule if arn == target_group), None)


def serving_in(
    goal: Goal, initial_since: Mapping[tuple[str, str, int], float], targets: Iterable[TargetState], now: float
) -> float | None:
    """Seconds until every target of ours still `initial` is expected healthy (None: none is, or no schedule is
    known for its group). A target past its expected time counts as due now."""
    due: list[float] = []
    for t in targets:
        key = (t.target_group, t.id, t.port)
        schedule = schedule_of(goal, t.target_group)
        if t.state != "initial" or schedule is None or key not in initial_since:
            continue
        due.append(initial_since[key] + health_seconds(*schedule) - now)
    return max(0.0, max(due)) if due else None


def stable_in(
    goal: Goal, draining_since: Mapping[tuple[str, str, int], float], targets: Iterable[TargetState], now: float
) -> float | None:
    """Seconds until every target still `draining` is expected gone (None: none is, or no delay is known)."""
    delays = dict(goal.drain_delays)
    due = [
        draining_since[key] + delays[t.target_group] - now
        for t in targets
        if t.state == "draining"
        and t.target_group in delays
        and (key := (t.target_group, t.id, t.port)) in draining_since
    ]
    return max(0.0, max(due)) if due else None
