"""Pure: one tool run's processes, output lines, calls and the ledger's facts -> a RunRecord.

How "noticed" is read, per tool and scenario:
* a process that exits is a tool telling its user, for the aws CLI and `ecs deploy` the only way they tell: their
  exit is noticed when its code says what really happened (0 for a healthy rollout, non-zero for a failure) — an
  exit 0 on a broken rollout noticed nothing;
* ecs-ship also says it in a line: on a failure the first "deployment failed" line counts (its exit comes later,
  after the rollback), and with several services in one run each service's "[name] serving:" line counts, since
  the process exits only after the last one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tests.sandbox.ledger import Call, Fact

from .records import RunRecord, ServiceOutcome
from .truth import (
    FAILED_LINE,
    SERVING_LINE,
    THROTTLING_LINE,
    Line,
    ServiceRef,
    calls_between,
    first_line,
    first_write_at,
    rate,
    truth_at,
    watch_rate,
)


@dataclass(frozen=True)
class ProcessResult:
    """One process of a run. `service` names the service it deploys when a run has one process per service."""

    label: str
    started: float
    ended: float  # its exit, or the cap
    code: int | None  # None: still running at the cap
    lines: tuple[Line, ...]
    service: str | None = None


@dataclass(frozen=True)
class RunInput:
    scenario: str
    tool: str
    run: int
    truth: str  # one of truth.TRUTHS
    failure: bool  # the rollout is meant to fail
    services: tuple[ServiceRef, ...]
    per_service_lines: bool  # ecs-ship deploying several services: each has its own "[name] …" lines
    scale: float = 1.0


def worst_code(codes: Sequence[int | None]) -> int | None:
    """A run's code: None when any process was still running at the cap, else the highest (0 only if all were)."""
    if any(c is None for c in codes):
        return None
    return max((c for c in codes if c is not None), default=0)


def _noticed(
    run: RunInput, svc: ServiceRef, procs: Sequence[ProcessResult], lines: Sequence[Line]
) -> tuple[float | None, float | None]:
    """(noticed, failure line) as epoch moments for one service."""
    own = [p for p in procs if p.service == svc.name] or list(procs)
    label = svc.name if run.per_service_lines else None
    said_failed = first_line(lines, FAILED_LINE, label) if run.tool == "ecs-ship" else None
    if run.failure and said_failed is not None:
        return said_failed, said_failed
    if not run.failure and run.per_service_lines and run.tool == "ecs-ship":
        serving = first_line(lines, SERVING_LINE, label)
        if serving is not None:
            return serving, said_failed
    codes = [p.code for p in own]
    code = worst_code(codes)
    if code is None or (code == 0) == run.failure:
        return None, said_failed
    return max(p.ended for p in own), said_failed


def judge(
    run: RunInput,
    procs: Sequence[ProcessResult],
    calls: Sequence[Call],
    facts: Sequence[Fact],
    deployment_ids: Mapping[str, Sequence[str]],
) -> RunRecord:
    start = min(p.started for p in procs)
    end = max(p.ended for p in procs)
    lines = sorted((line for p in procs for line in p.lines), key=lambda x: x.at)
    window = calls_between(calls, start, end)
    outcomes: list[ServiceOutcome] = []
    truths: list[float] = []
    failure_lines: list[float] = []
    for svc in run.services:
        truth = truth_at(facts, run.truth, svc, start, deployment_ids.get(svc.name, ()))
        noticed, failed_line = _noticed(run, svc, procs, lines)
        if failed_line is not None:
            failure_lines.append(failed_line)
        lag = (noticed - truth) * run.scale if truth is not None and noticed is not None else None
        outcomes.append(
            ServiceOutcome(
                name=svc.name,
                truth=None if truth is None else truth - start,
                noticed=None if noticed is None else noticed - start,
                lag=lag,
            )
        )
        if truth is not None:
            truths.append(truth)
    seconds = end - start
    first_write = first_write_at(window)
    switches = [c.at for c in window if c.action == "UpdateService"]
    overhead = None
    # The rollout's own time runs from the first write to the last truth; the rest of the wall time is the tool's.
    if first_write is not None and truths and len(truths) == len(run.services) and not run.failure:
        overhead = seconds - (max(truths) - first_write)
    return RunRecord(
        scenario=run.scenario,
        tool=run.tool,
        run=run.run,
        code=worst_code([p.code for p in procs]),
        seconds=seconds,
        services=outcomes,
        calls=len(window),
        calls_per_second=rate(len(window), seconds),
        watch_calls_per_second=watch_rate(window, end),
        throttled_calls=sum(1 for c in window if c.throttled),
        throttling_surfaced=any(THROTTLING_LINE.search(line.text) for line in lines),
        failure_noticed=min(failure_lines) - start if failure_lines and run.failure else None,
        first_write=None if first_write is None else first_write - start,
        overhead=overhead,
        scale=run.scale,
        processes=len(procs),
        by_action=dict(Counter(c.action for c in window).most_common()),
        throttled_by_action=dict(Counter(c.action for c in window if c.throttled).most_common()),
        output_tail=[f"{line.source} {line.text}".strip() for line in lines[-12:]],
        last_switch=max(switches) - start if switches else None,
    )
