"""The chart: per scenario and tool, the median lag (log scale; "never noticed" drawn apart) and the API call rate,
side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display here or in CI
import matplotlib.pyplot as plt

from .records import Summary

COLOURS = {"ecs-ship": "#1f77b4", "aws wait services-stable": "#ff7f0e", "ecs deploy": "#2ca02c"}
NEVER = "#d62728"


def draw(summaries: Sequence[Summary], path: Path, cap: float) -> None:
    rows = list(summaries)
    height = max(3.0, 0.38 * len(rows) + 1.5)
    fig, (lag_ax, rate_ax) = plt.subplots(1, 2, figsize=(13, height), sharey=True)
    labels = [f"{s.scenario} · {s.tool}" for s in rows]
    ys = list(range(len(rows)))[::-1]
    # Bars for "never noticed" reach past every measured lag, so they read as "longer than we waited".
    measured = [s.lag_median for s in rows if s.lag_median is not None and s.lag_median > 0]
    never_at = max([cap, *measured]) * 1.5
    floor = 0.05
    for y, s in zip(ys, rows, strict=True):
        colour = COLOURS.get(s.tool, "grey")
        if s.lag_median is None:
            lag_ax.barh(y, never_at, color="white", edgecolor=NEVER, hatch="//", height=0.7)
            lag_ax.text(never_at, y, " never noticed", va="center", fontsize=8, color=NEVER)
        else:
            value = max(s.lag_median, floor)
            lag_ax.barh(y, value, color=colour, height=0.7)
            lag_ax.text(value, y, f" {s.lag_median:.1f} {s.lag_unit}", va="center", fontsize=8)
        rate_ax.barh(y, s.calls_per_second_median, color=colour, height=0.7)
        note = f" {s.calls_per_second_median:.1f}/s"
        if s.throttled_calls:
            note += f" ({s.throttled_calls} throttled)"
        rate_ax.text(s.calls_per_second_median, y, note, va="center", fontsize=8)
    lag_ax.set_xscale("log")
    lag_ax.set_xlim(floor, never_at * 8)
    lag_ax.set_yticks(ys)
    lag_ax.set_yticklabels(labels, fontsize=8)
    lag_ax.set_xlabel("median lag behind the truth (s, log scale; AWS s where the clock is scaled)")
    lag_ax.set_title("How late each tool says it")
    rate_ax.set_xlabel("AWS API calls per second over the tool's run")
    rate_ax.set_title("How hard it polls")
    right = max([s.calls_per_second_median for s in rows] + [1.0])
    rate_ax.set_xlim(0, right * 1.35)
    for ax in (lag_ax, rate_ax):
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
