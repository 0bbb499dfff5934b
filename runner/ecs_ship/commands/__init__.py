"""One module per command (deploy's ending, from the watch on, is deploy_end.py). Each has two steps:
``prepare`` (reads only; every bad input surfaces here) and ``execute`` (the work). A run prepares every
selected service before it executes any, so bad input in one service of a spec (exit 2) never follows a write
made for another.

A command's module is imported when that command runs, not before: what `deploy` needs (botocore, the registry
client) and what only a build or `run-local` needs (docker-py, the builder) would otherwise be loaded by every
command line, and start-up time is what a redeploy waits for before its first write.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..context import Context
    from ..spec import ServiceSpec, Spec


@dataclass(frozen=True)
class Command:
    prepare: Callable[[Context, Spec, ServiceSpec], Any]
    execute: Callable[[Context, Any], None]
    parallel: bool = True  # several services run at once (run-local and logs run one service only)
    watches: bool = False  # follows deployments: says at the end what it spent of the account's API rate


@dataclass(frozen=True)
class _Where:
    module: str  # under commands/
    prepare: str
    execute: str
    parallel: bool = True
    watches: bool = False


_WHERE: dict[str, _Where] = {
    "validate": _Where("validate", "prepare", "execute"),
    "plan": _Where("plan", "prepare", "execute"),
    "render": _Where("plan", "prepare", "render"),
    "deploy": _Where("deploy", "prepare", "execute", watches=True),
    "verify": _Where("verify", "prepare", "execute"),
    "rollback": _Where("rollback", "prepare", "execute", watches=True),
    "status": _Where("status", "prepare", "execute"),
    "doctor": _Where("doctor", "prepare", "execute"),
    "continue": _Where("continue_deployment", "prepare", "execute", watches=True),
    "prune": _Where("prune", "prepare", "execute"),
    "run-local": _Where("run_local", "prepare", "execute", parallel=False),
    # One service at a time, as kubectl logs reads one pod: a follow ends with exit 0 on Ctrl-C, which only a
    # command run outside the parallel fan-out (where an interruption is exit 130) can do.
    "logs": _Where("logs", "prepare", "execute", parallel=False),
}

# The commands loaded so far (an entry put here first, e.g. by a test, is used as it is).
COMMANDS: dict[str, Command] = {}


def command_for(args: Any) -> Command:
    name = "plan" if args.command == "deploy" and getattr(args, "dry_run", False) else str(args.command)
    if name not in COMMANDS:
        where = _WHERE[name]
        module = importlib.import_module(f"{__name__}.{where.module}")
        COMMANDS[name] = Command(
            getattr(module, where.prepare), getattr(module, where.execute), where.parallel, where.watches
        )
    return COMMANDS[name]
