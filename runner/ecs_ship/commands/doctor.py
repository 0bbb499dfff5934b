"""`ecs-ship doctor`: reads (only) the service, its target groups and its recent deployments, and says what each
setting costs every deploy, the change that would save it, and what would break deploys (exit 1)."""

from __future__ import annotations

import json

from .. import aws
from ..context import Context
from ..doctor import BREAKS, model, read, report
from ..errors import DeployError
from ..spec import ServiceSpec, Spec


class DeploysWouldBreak(DeployError):
    """A setting makes deploys fail or never end: exit 1."""


def prepare(ctx: Context, spec: Spec, svc: ServiceSpec) -> ServiceSpec:
    return svc


def execute(ctx: Context, svc: ServiceSpec) -> None:
    clients = aws.make_clients(svc.region)
    settings, history = read.read(clients, svc.cluster, svc.service)
    found = model.rows(settings, history)
    now, after = model.summary(settings, history)
    if getattr(ctx.args, "json", False):
        ctx.out.raw(json.dumps(report.document(settings, history, found, now, after), sort_keys=True))
    else:
        # One write: the services of a spec are read in parallel, and each table must stay in one piece.
        ctx.out.raw("\n".join(report.text(settings, history, found, now, after)))
    broken = [r for r in found if r.level == BREAKS]
    if broken:
        more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
        raise DeploysWouldBreak(
            f"{svc.service}: {broken[0].setting} {broken[0].value} would break deploys{more}",
            fix=broken[0].change.cli if broken[0].change else None,
        )
