"""`ecs-ship continue [--rollback]`: a service deployment held at a PAUSE lifecycle hook goes on (or, with
--rollback, ECS rolls it back), and the rest of it is watched as a deploy's would be."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from .. import aws, deploy, watch
from ..context import Context, rev
from ..errors import DeploymentFailed, InputError
from ..rollout import decide_rollback, roll_back, watch_deployment
from ..spec import ServiceSpec, Spec
from ..summary import end, summarise


@dataclass(frozen=True)
class Prepared:
    svc: ServiceSpec
    clients: aws.Clients
    service: dict[str, Any]
    held: watch.ServiceDeploymentState
    hook_id: str
    deployment_id: str  # the service's PRIMARY deployment: the one the service deployment rolls out
    task_definition: str
    source: str | None  # the task definition the service ran before: what a rollback returns to


def prepare(ctx: Context, spec: Spec, svc: ServiceSpec) -> Prepared:
    clients = aws.make_clients(svc.region)
    service = deploy.describe_service(clients, svc.cluster, svc.service)
    current = service.get("currentServiceDeployment")
    record = deploy.describe_service_deployment(clients, str(current)) if current else None
    if record is None:
        raise InputError(
            f"failed to continue {svc.service}: ECS reports no current service deployment for it",
            fix="`ecs-ship status` shows its deployments; continue applies to one held at a PAUSE lifecycle hook",
        )
    held = watch.parse_service_deployment(record)
    hook = held.paused_at
    if hook is None:
        where = f" at {held.lifecycle_stage}" if held.lifecycle_stage else ""
        raise InputError(
            f"failed to continue {svc.service}: service deployment {held.id} is {held.status}{where}, and no PAUSE "
            "hook awaits action",
            fix="continue applies only while a deployment waits at a PAUSE lifecycle hook; `ecs-ship status` "
            "shows where it is",
        )
    primary = next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None)
    if primary is None:
        raise InputError(f"failed to continue {svc.service}: it has no PRIMARY deployment to watch")
    sources = record.get("sourceServiceRevisions") or []
    source = deploy.revision_task_definition(clients, str(sources[0]["arn"])) if sources else None
    return Prepared(
        svc, clients, service, held, hook.hook_id, str(primary["id"]), str(primary.get("taskDefinition", "")), source
    )


def execute(ctx: Context, p: Prepared) -> None:
    svc, label = p.svc, p.svc.name
    say = ctx.sayer(label)
    rollback = bool(ctx.args.rollback)
    result = ctx.result(label)
    result["deployment-id"] = p.deployment_id
    result["task-definition-arn"] = p.task_definition
    started = ctx.clock()
    ctx.stage(label, "continuing the deployment")
    deploy.continue_service_deployment(p.clients, p.held.arn, p.hook_id, rollback)
    say(
        f"{'rolling back' if rollback else 'continuing'} service deployment {p.held.id} from "
        f"{p.held.lifecycle_stage} (hook {p.hook_id})"
    )
    timeout = ctx.args.timeout if ctx.args.timeout is not None else svc.wait.timeout
    td = p.clients.ecs.describe_task_definition(taskDefinition=p.task_definition)["taskDefinition"]
    outcome = watch_deployment(
        ctx,
        svc,
        p.clients,
        p.service,
        p.deployment_id,
        td,
        timeout,
        started,
        service_deployment_arn=p.held.arn,
        ecs_rollback=rollback,
    )
    result["milestones"] = outcome.milestones
    if outcome.verdict.kind == "paused":
        say(f"{outcome.verdict.reason}; `ecs-ship continue` again goes on")
        result["outcome"] = "paused"
    elif outcome.ok:
        result["outcome"] = "rolled back" if rollback else "deployed"
        say(f"{result['outcome']}: {rev(p.source if rollback else p.task_definition)} serves")
    else:
        failed(ctx, p, outcome, timeout, rollback)
    summarise(ctx, svc, result)


def failed(ctx: Context, p: Prepared, outcome: watch.Outcome, timeout: float, rollback: bool) -> NoReturn:
    """The deployment went on and failed (or ECS's rollback did): roll back as a deploy would, then raise."""
    svc = p.svc
    say = ctx.sayer(svc.name)
    for line in outcome.diagnosis:
        say(f"  {line}")
    result = ctx.result(svc.name)
    result["diagnosis"] = outcome.diagnosis
    decision = decide_rollback(
        on_failure=svc.on_failure,
        no_rollback=rollback or ctx.args.no_rollback,  # a failed rollback is not rolled back again
        verdict=outcome.verdict,
        previous_arn=p.source,
    )
    rolled = False
    if decision.roll_back:
        assert p.source is not None
        rolled = roll_back(ctx, svc, p.clients, p.source, timeout, (), p.held.arn, p.deployment_id)
    end(
        ctx,
        svc,
        "failed, rolled back" if rolled else f"failed, {decision.why or 'rollback unhealthy'}",
        DeploymentFailed(
            f"failed to {'roll back' if rollback else 'continue'} {svc.service}: {outcome.verdict.reason}",
            diagnosis=outcome.diagnosis,
            rolled_back=rolled,
        ),
    )
