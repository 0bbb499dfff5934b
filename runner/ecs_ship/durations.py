"""Durations as users write them (30s, 10m, 2h, 1d, 1h30m or plain seconds), for `logs --since`.

Apart from commands/logs.py because the argument parser needs them for every command line, and importing the
command itself would load what only `ecs-ship logs` uses.
"""

from __future__ import annotations

import argparse
import math
import re

DEFAULT_SINCE = "10m"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NUMBER = r"\d+(?:\.\d+)?"


def since(text: str) -> float:
    """Seconds from a --since value: 30s, 10m, 2h, 1d, combinations such as 1h30m, or plain seconds."""
    value = text.strip()
    if re.fullmatch(_NUMBER, value):
        seconds = float(value)
    elif re.fullmatch(rf"(?:{_NUMBER}[smhd])+", value):
        seconds = sum(float(n) * _UNITS[u] for n, u in re.findall(rf"({_NUMBER})([smhd])", value))
    else:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: use 30s, 10m, 2h, 1d or a number of seconds")
    # A long enough run of digits is inf as a float: it would put the window before any log.
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive, finite duration")
    return seconds


def duration(seconds: float) -> str:
    """A --since value as a user would write it, for messages."""
    for unit in "dhm":
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{seconds / _UNITS[unit]:g}{unit}"
    return f"{seconds:g}s"
