"""Follow a deployment until it is healthy or fails, and roll a service back: shared by `deploy` (its failure
path) and `rollback` (the command). ``decide_rollback`` is the pure rule for whether a failed or interrupted
deploy may roll back at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import aws, deploy, watch
from .context import Context, rev
from .plan import ApiCall
from .spec import ServiceSpec


@dataclass(frozen=True)
class RollbackDecision:
    roll_back: bool
    why: str  # why not, when it does not; empty when it does


def decide_rollback(
    *, on_failure: str, no_rollback: bool, verdict: watch.Verdict | None, previous_arn: str | None
) -> RollbackDecision:
    """Whether a deploy that failed (or was interrupted: ``verdict`` None) returns to ``previous_arn``.

    A deployment that another one replaced is never rolled back over: the newer one may be another run's
    deploy of a newer commit, and returning to our previous revision would silently undo it. When the
    replacement runs our previous revision already (ECS's circuit breaker, or someone's rollback), rolling
    back only means watching it, which is safe. With no completed deployment (``previous_arn`` None) there is
    no revision known to serve, and "rolling back" would only start another untried one.
    """
    if no_rollback:
        return RollbackDecision(False, "--no-rollback was given")
    if on_failure != "rollback":
        return RollbackDecision(False, f"on_failure is {on_failure!r}")
    if previous_arn is None:
        return RollbackDecision(False, "no deployment of the service had completed: no revision is known to serve")
    if verdict is not None and verdict.superseded_by and verdict.superseded_by != previous_arn:
        return RollbackDecision(
            False,
            f"another deployment ({rev(verdict.superseded_by)}) replaced this one; rolling back would undo it",
        )
    return RollbackDecision(True, "")


def watch_deployment(
    ctx: Context,
    svc: ServiceSpec,
    clients: aws.Clients,
    service: Mapping[str, Any],
    deployment_id: str,
    task_definition: Mapping[str, Any],
    timeout: float,
    since: float,
) -> watch.Outcome:
    """Follow one deployment; `service` is a describe_services entry already read (its target groups)."""
    goal = watch.Goal(deployment_id, svc.wait.until, watch.bindings_of(service), watch.checks_of(task_definition))
    watcher = watch.Watcher(
        reader=watch.Reader(clients, svc.cluster, svc.service, ctx.clock),
        goal=goal,
        timeout=timeout,
        interval=svc.wait.poll_interval,
        say=ctx.sayer(svc.name),
        clock=ctx.clock,
        sleep=ctx.sleep,
        log_tail=watch.log_tail_reader(clients, task_definition),
        since=since,
        progress=ctx.out.progress if ctx.out.live else None,
    )
    return watcher.run()


def start_rollback(
    ctx: Context, svc: ServiceSpec, clients: aws.Clients, target_arn: str, undo: tuple[ApiCall, ...] = ()
) -> tuple[str, dict[str, Any]]:
    """Put back what the deploy changed and point the service at `target_arn`; return the deployment id to
    follow and the service as read. Makes no new deployment when ECS is already rolling back to it."""
    say = ctx.sayer(svc.name)
    if undo:
        deploy.undo(undo, clients)
        for call in undo:
            say(call.why)
    service = deploy.describe_service(clients, svc.cluster, svc.service)
    primary = next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None)
    if primary is not None and primary.get("taskDefinition") == target_arn and primary.get("rolloutState") != "FAILED":
        # ECS's circuit breaker already rolled back: watch its deployment rather than start another.
        deployment_id = str(primary["id"])
        say(f"ECS is already rolling back to {rev(target_arn)} (deployment {deployment_id})")
    else:
        deployment_id = deploy.start_deployment(clients, svc.cluster, svc.service, target_arn)
        say(f"rolling back to {rev(target_arn)} (deployment {deployment_id})")
    ctx.result(svc.name)["rollback-deployment-id"] = deployment_id
    return deployment_id, service


def roll_back(
    ctx: Context,
    svc: ServiceSpec,
    clients: aws.Clients,
    target_arn: str,
    timeout: float,
    undo: tuple[ApiCall, ...] = (),
) -> bool:
    """Roll back and watch until the old revision serves again; False when it does not become healthy."""
    say = ctx.sayer(svc.name)
    started = ctx.clock()
    deployment_id, service = start_rollback(ctx, svc, clients, target_arn, undo)
    td = clients.ecs.describe_task_definition(taskDefinition=target_arn)["taskDefinition"]
    outcome = watch_deployment(ctx, svc, clients, service, deployment_id, td, timeout, started)
    if outcome.ok:
        say(f"rolled back: {rev(target_arn)} is serving again")
        ctx.result(svc.name)["rolled-back-to"] = target_arn
        return True
    for line in outcome.diagnosis:
        say(f"rollback: {line}")
    return False
