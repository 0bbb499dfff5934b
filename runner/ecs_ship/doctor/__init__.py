"""`ecs-ship doctor`: what each setting of a service costs every deploy, and the change that makes deploys fast.

model.py holds the formulae (pure), history.py what the service's recent deploys measured (pure), read.py the
read-only calls, report.py the table and the JSON.
"""

from __future__ import annotations

from .model import BREAKS, OK, SLOW, Change, Estimate, History, Row, Settings, TargetGroupSettings, estimate, rows

__all__ = [
    "BREAKS",
    "OK",
    "SLOW",
    "Change",
    "Estimate",
    "History",
    "Row",
    "Settings",
    "TargetGroupSettings",
    "estimate",
    "rows",
]
