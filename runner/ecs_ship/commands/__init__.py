"""One module per command (deploy's ending, from the watch on, is deploy_end.py). Each has two steps:
``prepare`` (reads only; every bad input surfaces here) and ``execute`` (the work). A run prepares every
selected service before it executes any, so bad input in one service of a spec (exit 2) never follows a write
made for another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..context import Context
from ..spec import ServiceSpec, Spec
from . import continue_deployment, deploy, logs, plan, prune, rollback, run_local, status, validate


@dataclass(frozen=True)
class Command:
    prepare: Callable[[Context, Spec, ServiceSpec], Any]
    execute: Callable[[Context, Any], None]
    parallel: bool = True  # several services run at once (run-local and logs run one service only)


COMMANDS: dict[str, Command] = {
    "validate": Command(validate.prepare, validate.execute),
    "plan": Command(plan.prepare, plan.execute),
    "render": Command(plan.prepare, plan.render),
    "deploy": Command(deploy.prepare, deploy.execute),
    "rollback": Command(rollback.prepare, rollback.execute),
    "status": Command(status.prepare, status.execute),
    "continue": Command(continue_deployment.prepare, continue_deployment.execute),
    "prune": Command(prune.prepare, prune.execute),
    "run-local": Command(run_local.prepare, run_local.execute, parallel=False),
    # One service at a time, as kubectl logs reads one pod: a follow ends with exit 0 on Ctrl-C, which only a
    # command run outside the parallel fan-out (where an interruption is exit 130) can do.
    "logs": Command(logs.prepare, logs.execute, parallel=False),
}


def command_for(args: Any) -> Command:
    if args.command == "deploy" and getattr(args, "dry_run", False):
        return COMMANDS["plan"]
    return COMMANDS[str(args.command)]
