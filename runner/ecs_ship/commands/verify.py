"""`ecs-ship verify`: the pre-flight checks (verify/) of what a deploy would write, read-only; every check's line.
`deploy` runs the same checks before its first write and `plan` shows them (deploy.py's ``preflight``)."""

from __future__ import annotations

from ..context import Context
from ..spec import ServiceSpec, Spec
from . import deploy


def prepare(ctx: Context, spec: Spec, svc: ServiceSpec) -> deploy.Prepared:
    return deploy.prepare(ctx, spec, svc, verify_first=False)


def execute(ctx: Context, p: deploy.Prepared) -> None:
    deploy.preflight(ctx, p, quiet=False)
