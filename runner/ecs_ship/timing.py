"""How long ELBv2 takes to call a new target healthy, as AWS documents it (pure): shared by the watch's ETA and
`ecs-ship doctor`'s model."""

from __future__ import annotations


def health_seconds(interval: int, healthy_threshold: int) -> float:
    """Average time from a target's registration to `healthy`: ``healthy_threshold`` consecutive passing checks,
    one every ``interval`` seconds, the first within an interval of the registration (so at least (threshold - 1)
    and at most threshold intervals)."""
    return (healthy_threshold - 0.5) * interval
