"""What one tool run measured, and what the runs of one scenario and tool add up to: plain data, JSON as is."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class ServiceOutcome:
    """One service of a run. Times are seconds since the tool's start; `lag` is in the scenario's unit (AWS
    seconds under a scaled simulator clock)."""

    name: str
    truth: float | None  # when the thing the tool waits for happened
    noticed: float | None  # when the tool said so: its line for this service, or its exit
    lag: float | None  # noticed - truth, scaled; None: never noticed (or nothing happened)


@dataclass
class RunRecord:
    scenario: str
    tool: str
    run: int
    code: int | None  # None: a process still running at the cap (the worst of a run's processes)
    seconds: float  # tool start -> last process exit (the cap when one was still running)
    services: list[ServiceOutcome]
    calls: int  # AWS API calls the sandbox answered between start and exit
    calls_per_second: float
    throttled_calls: int  # of those, answered with ThrottlingException
    throttling_surfaced: bool  # the tool's own output mentions throttling / "Rate exceeded"
    failure_noticed: float | None = None  # first "deployment failed" line (failure scenarios)
    first_write: float | None = None  # first RegisterTaskDefinition / UpdateService / … call
    overhead: float | None = None  # seconds - (last truth - first write): the runner's own time, not AWS's
    scale: float = 1.0  # AWS seconds per real second of this scenario's lags
    processes: int = 1
    cap: float = 0.0  # real seconds a process of this run was given
    by_action: dict[str, int] = field(default_factory=dict)
    throttled_by_action: dict[str, int] = field(default_factory=dict)  # which buckets ran dry
    output_tail: list[str] = field(default_factory=list)  # last lines, to see why a run ended as it did
    watch_calls_per_second: float | None = None  # from the first UpdateService to the end
    last_switch: float | None = None  # the last UpdateService (several services: when the last one started)


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def maximum(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


@dataclass
class Summary:
    scenario: str
    tool: str
    runs: int
    exits: list[int | None]
    seconds_median: float
    lag_median: float | None
    lag_max: float | None
    never_noticed: int  # service-runs with no lag
    lag_count: int  # service-runs in all
    calls_median: float
    calls_per_second_median: float
    throttled_calls: int  # summed over the runs
    surfaced_runs: int  # runs whose output mentioned throttling
    failure_noticed_median: float | None
    first_write_median: float | None
    overhead_median: float | None
    services: int
    per_service: dict[str, dict[str, float | None]]
    lag_unit: str
    scale: float = 1.0  # AWS seconds per real second of the scenario's clock
    cap: float = 0.0
    wall_ratio_vs_one: float | None = None  # multi-service: this wall time / the 1-service run's
    watch_calls_per_second_median: float | None = None
    last_switch_median: float | None = None
    # When the last service's truth came (since the start), and that against the 1-service run's: how much
    # longer the world itself took, whatever the tool.
    last_truth_median: float | None = None
    truth_ratio_vs_one: float | None = None


def summarize(records: Sequence[RunRecord]) -> Summary:
    """The runs of one scenario and tool: medians of each figure, the worst lag, and each service's lags."""
    if not records:
        raise ValueError("no runs to summarize")
    first = records[0]
    lags = [s.lag for r in records for s in r.services]
    names = [s.name for s in first.services]
    per_service = {
        name: {
            "lag_median": median([s.lag for r in records for s in r.services if s.name == name]),
            "lag_max": maximum([s.lag for r in records for s in r.services if s.name == name]),
        }
        for name in names
    }
    return Summary(
        scenario=first.scenario,
        tool=first.tool,
        runs=len(records),
        exits=[r.code for r in records],
        seconds_median=statistics.median(r.seconds for r in records),
        lag_median=median(lags),
        lag_max=maximum(lags),
        never_noticed=sum(1 for lag in lags if lag is None),
        lag_count=len(lags),
        calls_median=statistics.median(r.calls for r in records),
        calls_per_second_median=statistics.median(r.calls_per_second for r in records),
        throttled_calls=sum(r.throttled_calls for r in records),
        surfaced_runs=sum(1 for r in records if r.throttling_surfaced),
        failure_noticed_median=median([r.failure_noticed for r in records]),
        first_write_median=median([r.first_write for r in records]),
        overhead_median=median([r.overhead for r in records]),
        services=len(names),
        per_service=per_service,
        lag_unit="AWS s" if first.scale != 1.0 else "s",
        scale=first.scale,
        cap=first.cap,
        watch_calls_per_second_median=median([r.watch_calls_per_second for r in records]),
        last_switch_median=median([r.last_switch for r in records]),
        last_truth_median=median([last_truth(r) for r in records]),
    )


def last_truth(record: RunRecord) -> float | None:
    truths = [s.truth for s in record.services]
    return None if not truths or any(t is None for t in truths) else max(t for t in truths if t is not None)


def summarize_all(records: Sequence[RunRecord], single_of: dict[str, str] | None = None) -> list[Summary]:
    """One summary per (scenario, tool), in the order the runs came. `single_of` maps a multi-service scenario to
    its 1-service counterpart, whose median wall time the ratio is taken against (same tool)."""
    keys: list[tuple[str, str]] = []
    for r in records:
        if (r.scenario, r.tool) not in keys:
            keys.append((r.scenario, r.tool))
    out = [summarize([r for r in records if (r.scenario, r.tool) == key]) for key in keys]
    by_key = {(s.scenario, s.tool): s for s in out}
    for s in out:
        base = by_key.get(((single_of or {}).get(s.scenario, ""), s.tool))
        if base is not None and base.seconds_median > 0:
            s.wall_ratio_vs_one = s.seconds_median / base.seconds_median
        if base is not None and base.last_truth_median and s.last_truth_median is not None:
            s.truth_ratio_vs_one = s.last_truth_median / base.last_truth_median
    return out
