"""Pure: summaries -> the markdown a README can quote, and the head-to-head figures of the AWS-timings scenario."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .records import Summary


@dataclass(frozen=True)
class Skipped:
    scenario: str
    why: str


def _s(value: float | None, unit: str = "s") -> str:
    return "-" if value is None else f"{value:.1f} {unit}"


def exit_cell(s: Summary, cap: float) -> str:
    names = []
    for code in s.exits:
        name = str(code) if code is not None else f"still waiting at cap ({cap:.0f} s)"
        if name not in names:
            names.append(name)
    return ", ".join(sorted(names))


def time_cell(s: Summary) -> str:
    """Real seconds; under a scaled clock also what they are in AWS seconds."""
    if s.scale == 1.0:
        return _s(s.seconds_median)
    return f"{_s(s.seconds_median)} ({s.seconds_median * s.scale:.0f} AWS s)"


def lag_cell(s: Summary) -> str:
    if s.lag_median is None:
        return "never noticed"
    cell = f"{s.lag_median:.1f} / {_s(s.lag_max, s.lag_unit)}"
    if s.never_noticed:
        cell += f" ({s.never_noticed} of {s.lag_count} never)"
    return cell


def throttled_cell(s: Summary) -> str:
    return f"{s.throttled_calls} / {s.surfaced_runs} of {s.runs} runs"


def main_table(summaries: Sequence[Summary], cap: float) -> list[str]:
    rows = [
        "| scenario | tool | exit | median time to exit | lag behind the truth, median / max | API calls/s | "
        "calls | throttled (answered / said so) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        rows.append(
            f"| {s.scenario} | {s.tool} | {exit_cell(s, s.cap or cap)} | {time_cell(s)} | {lag_cell(s)} | "
            f"{s.calls_per_second_median:.1f} | {s.calls_median:.0f} | {throttled_cell(s)} |"
        )
    return rows


def ecs_ship_table(summaries: Sequence[Summary]) -> list[str]:
    rows = [
        "| scenario | failure noticed | exit | first write | runner overhead | API calls/s from the switch |",
        "|---|---|---|---|---|---|",
    ]
    mine = [s for s in summaries if s.tool == "ecs-ship"]
    for s in mine:
        rows.append(
            f"| {s.scenario} | {_s(s.failure_noticed_median)} | {_s(s.seconds_median)} | "
            f"{_s(s.first_write_median)} | {_s(s.overhead_median)} | "
            f"{'-' if s.watch_calls_per_second_median is None else f'{s.watch_calls_per_second_median:.1f}'} |"
        )
    return rows if mine else []


def multi_table(summaries: Sequence[Summary]) -> list[str]:
    multi = [s for s in summaries if s.wall_ratio_vs_one is not None or s.services > 1]
    if not multi:
        return []
    rows = [
        "| scenario | tool | services | wall time | vs 1 service | last UpdateService | last truth | "
        "last truth vs 1 service | API calls/s | throttled (answered / said so) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in multi:
        rows.append(
            f"| {s.scenario} | {s.tool} | {s.services} | {_s(s.seconds_median)} | {_x(s.wall_ratio_vs_one)} | "
            f"{_s(s.last_switch_median)} | {_s(s.last_truth_median)} | {_x(s.truth_ratio_vs_one)} | "
            f"{s.calls_per_second_median:.1f} | {throttled_cell(s)} |"
        )
    return rows


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


@dataclass(frozen=True)
class HeadToHead:
    """How much sooner ecs-ship reports than a peer in the same scenario, in the scenario's unit."""

    scenario: str
    peer: str
    ecs_ship: float | None  # ecs-ship's median time to report (success: exit; failure: the failure line)
    peer_time: float | None  # the peer's median time to exit (None: still waiting at the cap)
    sooner_by: float | None
    unit: str
    peer_cap: float = 0.0  # how long the peer was given, in the scenario's unit


def head_to_head(summaries: Sequence[Summary], scenario: str, scale: float) -> list[HeadToHead]:
    mine = next((s for s in summaries if s.scenario == scenario and s.tool == "ecs-ship"), None)
    if mine is None:
        return []
    ours = mine.failure_noticed_median if mine.failure_noticed_median is not None else mine.seconds_median
    out = []
    for s in summaries:
        if s.scenario != scenario or s.tool == "ecs-ship":
            continue
        waited = None if any(code is None for code in s.exits) else s.seconds_median
        out.append(
            HeadToHead(
                scenario=scenario,
                peer=s.tool,
                ecs_ship=ours * scale,
                peer_time=None if waited is None else waited * scale,
                sooner_by=None if waited is None else (waited - ours) * scale,
                unit="AWS s" if scale != 1.0 else "s",
                peer_cap=s.cap * scale,
            )
        )
    return out


def head_to_head_lines(rows: Sequence[HeadToHead]) -> list[str]:
    lines = []
    for h in rows:
        if h.sooner_by is None:
            lines.append(
                f"{h.scenario}: ecs-ship reports at {_s(h.ecs_ship, h.unit)}; {h.peer} was still waiting at the cap "
                f"({h.peer_cap:.0f} {h.unit})"
            )
        else:
            lines.append(
                f"{h.scenario}: ecs-ship reports at {_s(h.ecs_ship, h.unit)}, {_s(h.sooner_by, h.unit)} sooner "
                f"than {h.peer} ({_s(h.peer_time, h.unit)})"
            )
    return lines


def markdown(
    summaries: Sequence[Summary],
    *,
    cap: float,
    runs: int,
    skipped: Sequence[Skipped],
    notes: Sequence[str],
    machine_line: str,
) -> str:
    out = [
        f"Medians of {runs} run(s) per scenario and tool, {cap:.0f} s cap per run; {machine_line}.",
        "Lag = when the tool said it (its exit, or ecs-ship's own line) minus when it really happened (sandbox "
        "ground truth); AWS s = real seconds x the simulator's time scale.",
        "",
        *main_table(summaries, cap),
    ]
    mine = ecs_ship_table(summaries)
    if mine:
        out += [
            "",
            "ecs-ship (first write: process start to its first write call; overhead: time to exit minus the "
            "rollout's own time from that write to the truth):",
            "",
            *mine,
        ]
    multi = multi_table(summaries)
    if multi:
        out += ["", *multi]
    if notes:
        out += ["", *[f"- {n}" for n in notes]]
    if skipped:
        out += ["", *[f"- skipped {s.scenario}: {s.why}" for s in skipped]]
    return "\n".join(out) + "\n"
