"""`ecs-ship rollback`: point the service back at a previous revision (--to-revision N, or the one before the
running one) and watch it until it serves."""

from __future__ import annotations

from dataclasses import dataclass

from .. import aws, deploy, plan, revisions
from ..context import Context, rev
from ..errors import DeploymentFailed
from ..rollout import roll_back
from ..spec import ServiceSpec, Spec


@dataclass(frozen=True)
class Prepared:
    svc: ServiceSpec
    clients: aws.Clients
    target: str


def prepare(ctx: Context, spec: Spec, svc: ServiceSpec) -> Prepared:
    clients = aws.make_clients(svc.region)
    service = deploy.describe_service(clients, svc.cluster, svc.service)
    plan.require_ecs_controller(service, svc.service, "roll back")
    return Prepared(svc, clients, revisions.previous_revision(clients, svc.cluster, service, ctx.args.to_revision))


def execute(ctx: Context, p: Prepared) -> None:
    timeout = ctx.args.timeout if ctx.args.timeout is not None else p.svc.wait.timeout
    ctx.stage(p.svc.name, "rolling back")
    if not roll_back(ctx, p.svc, p.clients, p.target, timeout):
        raise DeploymentFailed(f"failed to roll back {p.svc.service} to {rev(p.target)}")
