"""`ecs-ship doctor`'s table and its JSON (pure)."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Any

from .model import BREAKS, SLOW, Estimate, History, Row, Settings, seconds_text


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *body]
    ]


def _start(h: History, s: Settings) -> str:
    if h.start is None:
        return f"no task to measure: a {s.launch_type} task's start assumed"
    return f"tasks start in {h.start:.1f} s (median of {h.start_samples}, placement to running)"


def text(s: Settings, h: History, found: list[Row], now: Estimate, after: Estimate) -> list[str]:
    strategy = "rolling update" if s.strategy == "ROLLING" else s.strategy.lower().replace("_", "/")
    lines = [f"doctor: {s.service} in cluster {s.cluster}: {s.desired} task(s), {strategy}, {s.launch_type}"]
    body = [
        [
            r.setting,
            r.value,
            r.cost,
            r.suggested or "-",
            f"{r.saves:.0f} s" if r.saves else ("fix" if r.level == BREAKS else "-"),
        ]
        for r in found
    ]
    lines += _table(["setting", "value", "costs each deploy", "suggested", "saves"], body)
    changes = [r for r in found if r.change is not None and r.level in (SLOW, BREAKS)]
    if changes:
        lines.append("changes:")
        for n, r in enumerate(changes, 1):
            assert r.change is not None
            lines.append(f"  {n}. {r.setting}: {r.change.cli}")
            lines.append(f"     API: {r.change.api}; Terraform: {r.change.terraform}")
    measured = _start(h, s)
    if h.completed:
        measured += (
            f"; the last {len(h.completed)} deploy(s) took {statistics.median(h.completed):.0f} s to complete "
            f"(median, from {h.completed_from})"
        )
    lines.append(f"measured: {measured}")
    lines.append(
        f"expected: serving {seconds_text(now.serving)} now, {seconds_text(after.serving)} with the changes; "
        f"stable {seconds_text(now.stable)} now, {seconds_text(after.stable)} with the changes"
    )
    if now.failure_noticed is not None:
        lines.append(f"a broken health check is noticed after {seconds_text(now.failure_noticed)}")
    broken = [r for r in found if r.level == BREAKS]
    for r in broken:
        lines.append(f"breaks deploys: {r.setting} {r.value}: {r.why}")
    return lines


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def document(s: Settings, h: History, found: list[Row], now: Estimate, after: Estimate) -> dict[str, Any]:
    """The same, for a team to track: every figure in seconds (to a tenth), None where it never ends or was not
    measured."""
    return {
        "cluster": s.cluster,
        "service": s.service,
        "settings": [asdict(r) for r in found],
        "measured": {
            "task_start": _round(h.start),
            "task_start_samples": h.start_samples,
            "completed": [_round(c) for c in h.completed],
            "completed_from": h.completed_from,
            "stopped_by_ecs": h.stops,
            "killed_at_stop": list(h.killed),
        },
        "expected": {
            "now": {
                "serving": _round(now.serving),
                "stable": _round(now.stable),
                "failure_noticed": _round(now.failure_noticed),
            },
            "with_changes": {"serving": _round(after.serving), "stable": _round(after.stable)},
        },
        "breaks": [r.setting for r in found if r.level == BREAKS],
    }
