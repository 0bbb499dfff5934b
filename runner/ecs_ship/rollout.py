"""Follow a deployment until it is healthy or fails, and roll a service back: shared by `deploy` (its failure
path) and `rollback` (the command). ``decide_rollback`` is the pure rule for whether a failed or interrupted
deploy may roll back at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import aws, deploy, ratelimit, watch
from .context import Context, rev
from .errors import DeployError
from .plan import ApiCall
from .spec import ServiceSpec


class NewerDeployment(DeployError):
    """A rollback refused because another deployment replaced the one it would undo."""


@dataclass(frozen=True)
class RollbackDecision:
    roll_back: bool
    why: str  # why not, when it does not; empty when it does


def decide_rollback(
    *, on_failure: str, no_rollback: bool, verdict: watch.Verdict | None, previous_arn: str | None
) -> RollbackDecision:
    """Whether a deploy that failed (or was interrupted: ``verdict`` None) returns to ``previous_arn``.

    A deployment that another one replaced, or that was stopped in ECS, is never rolled back over: the newer
    one may be another run's deploy of a newer commit, and returning to our previous revision would silently
    undo it; a stop (ABORT) is someone's decision to leave the service as it is. When the
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
    if verdict is not None and verdict.stopped and not verdict.superseded_by:
        return RollbackDecision(
            False, "the service deployment was stopped in ECS; rolling back would override whoever stopped it"
        )
    return RollbackDecision(True, "")


def health_schedule(clients: aws.Clients, service: Mapping[str, Any]) -> tuple[tuple[str, int, int], ...]:
    """Each target group's health-check interval and healthy threshold, for the watch's ETA: the run's own read
    of the groups (kept for the run), so a deploy makes no call for it. An ETA is a courtesy: a read that fails
    leaves the watch without one, never fails it."""
    try:
        groups = deploy.describe_target_groups(clients, deploy.target_group_arns(service))
    except Exception:
        return ()
    return tuple(
        (
            str(g["TargetGroupArn"]),
            int(g.get("HealthCheckIntervalSeconds") or 30),
            int(g.get("HealthyThresholdCount") or 5),
        )
        for g in groups
    )


def drain_delays(clients: aws.Clients, service: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    """Each target group's deregistration delay (one read per group and run), for the ETA of `stable`: read only
    when the deploy waits for it. A courtesy, like the health schedule: a failed read leaves no ETA."""
    try:
        return tuple((arn, deploy.deregistration_delay(clients, arn)) for arn in deploy.target_group_arns(service))
    except Exception:
        return ()


def watch_deployment(
    ctx: Context,
    svc: ServiceSpec,
    clients: aws.Clients,
    service: Mapping[str, Any],
    deployment_id: str,
    task_definition: Mapping[str, Any],
    timeout: float,
    since: float,
    service_deployment_arn: str | None = None,
    ecs_rollback: bool = False,
    seed: Mapping[str, Any] | None = None,
) -> watch.Outcome:
    """Follow one deployment; `service` is a describe_services entry already read (its target groups); `seed`
    the service as the UpdateService that started the deployment answered (the first poll's reading)."""
    ratelimit.SHARED.started(svc.name)
    goal = watch.Goal(
        deployment_id,
        svc.wait.until,
        watch.bindings_of(service),
        watch.checks_of(task_definition),
        service_deployment_arn=service_deployment_arn,
        ecs_rollback=ecs_rollback,
        digests=watch.digests_of(task_definition),
        strategy=watch.strategy_of(service),
        health_schedule=health_schedule(clients, service),
        drain_delays=drain_delays(clients, service) if svc.wait.until == "stable" else (),
    )
    # Another watch's batched read of this service is as good as our own while it is under half a poll old.
    reader = watch.Reader(clients, svc.cluster, svc.service, ctx.clock, ctx.board, svc.wait.poll_interval / 2)
    if seed is not None:
        reader.seed(seed)
    watcher = watch.Watcher(
        reader=reader,
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


@dataclass(frozen=True)
class RollbackStarted:
    deployment_id: str  # the deployment that runs the revision rolled back to
    task_definition_arn: str  # that revision
    service: dict[str, Any]  # the service as read
    # Set when ECS carries the rollback out within this service deployment (StopServiceDeployment, or its
    # circuit breaker): its ROLLBACK_* status is what to watch.
    service_deployment_arn: str | None = None


# ECS moves a service deployment it rolls back through these; no second rollback may be started over them.
ECS_ROLLING_BACK = ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL")


def start_rollback(
    ctx: Context,
    svc: ServiceSpec,
    clients: aws.Clients,
    target_arn: str,
    undo: tuple[ApiCall, ...] = (),
    service_deployment_arn: str | None = None,
    failed_deployment_id: str = "",
    follow: bool = True,
) -> RollbackStarted:
    """Put back what the deploy changed and roll the service back, never starting a second rollback.

    Where ECS records the failed deploy as a service deployment still in progress, ECS is asked to roll it
    back (StopServiceDeployment): it returns to the last successful revision and shifts traffic itself. When
    ECS is rolling it back already (its circuit breaker), that rollback is followed. Otherwise (no such API, or
    the deployment is over) the service is pointed at `target_arn` with a forced deployment, unless ECS's
    circuit breaker already did that. Without `follow` (a cancelled run has seconds left) the deployment ECS
    rolls back in is not waited for: its id is empty then."""
    say = ctx.sayer(svc.name)
    if undo:
        deploy.undo(undo, clients)
        for call in undo:
            say(call.why)
    if service_deployment_arn is not None:
        record = deploy.describe_service_deployment(clients, service_deployment_arn)
        status = str((record or {}).get("status", ""))
        sd_id = service_deployment_arn.rsplit("/", 1)[-1]
        if (
            follow
            and status in ("PENDING", "IN_PROGRESS")
            and breaker_about_to_roll_back(record)
            and _breaker_rolls_back(clients, svc)
        ):
            # The task that failed our watch is one ECS's own circuit breaker counts too, and that count trips it:
            # ECS rolls back in a moment. Stopping the deployment ourselves would race it (and be one more
            # write); a poll later ECS has usually begun. (A cancelled run has no poll to spare: it does not wait.)
            ctx.sleep(svc.wait.poll_interval)
            record = deploy.describe_service_deployment(clients, service_deployment_arn)
            status = str((record or {}).get("status", ""))
        by_ecs = status in ECS_ROLLING_BACK
        if by_ecs:
            say(f"ECS is already rolling back service deployment {sd_id} ({status})")
        elif status in ("PENDING", "IN_PROGRESS") and deploy.stop_service_deployment(clients, service_deployment_arn):
            say(f"asked ECS to roll back service deployment {sd_id} (StopServiceDeployment)")
            by_ecs = True
        if by_ecs and not follow:
            return RollbackStarted("", target_arn, {}, service_deployment_arn)
        if by_ecs:
            deployment_id, service, td = follow_rollback_deployment(
                ctx, svc, clients, service_deployment_arn, failed_deployment_id
            )
            ctx.result(svc.name)["rollback-deployment-id"] = deployment_id
            return RollbackStarted(deployment_id, td, service, service_deployment_arn)
    service = deploy.describe_service(clients, svc.cluster, svc.service)
    primary = next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None)
    if (
        failed_deployment_id
        and primary is not None
        and primary.get("id") != failed_deployment_id
        and primary.get("taskDefinition") != target_arn
    ):
        # Someone's newer deployment replaced ours since the watch last looked (an interrupt gives no verdict
        # to tell): rolling back now would silently undo it.
        raise NewerDeployment(
            f"not rolled back: deployment {primary.get('id')} ({rev(primary.get('taskDefinition'))}) replaced "
            f"{failed_deployment_id}; rolling back to {rev(target_arn)} would undo it",
            fix="`ecs-ship status` shows it",
        )
    if primary is not None and primary.get("taskDefinition") == target_arn and primary.get("rolloutState") != "FAILED":
        # ECS's circuit breaker already rolled back: watch its deployment rather than start another.
        deployment_id = str(primary["id"])
        say(f"ECS is already rolling back to {rev(target_arn)} (deployment {deployment_id})")
    else:
        deployment_id = deploy.start_deployment(clients, svc.cluster, svc.service, target_arn).deployment_id
        say(f"rolling back to {rev(target_arn)} (deployment {deployment_id})")
    ctx.result(svc.name)["rollback-deployment-id"] = deployment_id
    return RollbackStarted(deployment_id, target_arn, service)


def breaker_about_to_roll_back(record: Mapping[str, Any] | None) -> bool:
    """ECS's circuit breaker has tripped on this service deployment, or one more failed task (the one our
    watch just saw, which ECS may not have counted yet) trips it."""
    breaker = (record or {}).get("deploymentCircuitBreaker") or {}
    threshold = int(breaker.get("threshold") or 0)
    if breaker.get("status") == "TRIGGERED":
        return True
    return threshold > 0 and int(breaker.get("failureCount") or 0) + 1 >= threshold


def _breaker_rolls_back(clients: aws.Clients, svc: ServiceSpec) -> bool:
    service = deploy.describe_service(clients, svc.cluster, svc.service)
    breaker = (service.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
    return bool(breaker.get("enable") and breaker.get("rollback"))


def follow_rollback_deployment(
    ctx: Context, svc: ServiceSpec, clients: aws.Clients, service_deployment_arn: str, failed_deployment_id: str
) -> tuple[str, dict[str, Any], str]:
    """The deployment ECS runs its rollback as: the service's PRIMARY once that is no longer the failed one.
    ECS may take a moment after StopServiceDeployment to start it, so this polls at the watch interval, for
    as long as the watch's timeout, before giving up."""
    deadline = ctx.clock() + svc.wait.timeout
    while True:
        service = deploy.describe_service(clients, svc.cluster, svc.service)
        primary = next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None)
        if primary is not None and primary.get("id") != failed_deployment_id:
            return str(primary["id"]), service, str(primary.get("taskDefinition", ""))
        if ctx.clock() >= deadline:
            raise DeployError(
                f"failed to roll back {svc.service}: ECS started no deployment for the rollback of service "
                f"deployment {service_deployment_arn.rsplit('/', 1)[-1]} within {svc.wait.timeout:.0f}s",
                fix="`ecs-ship status` shows where the service is",
            )
        ctx.sleep(svc.wait.poll_interval)


def roll_back(
    ctx: Context,
    svc: ServiceSpec,
    clients: aws.Clients,
    target_arn: str,
    timeout: float,
    undo: tuple[ApiCall, ...] = (),
    service_deployment_arn: str | None = None,
    failed_deployment_id: str = "",
) -> bool:
    """Roll back and watch until the old revision serves again; False when it does not become healthy."""
    say = ctx.sayer(svc.name)
    started = ctx.clock()
    back = start_rollback(ctx, svc, clients, target_arn, undo, service_deployment_arn, failed_deployment_id)
    td = clients.ecs.describe_task_definition(taskDefinition=back.task_definition_arn)["taskDefinition"]
    outcome = watch_deployment(
        ctx,
        svc,
        clients,
        back.service,
        back.deployment_id,
        td,
        timeout,
        started,
        service_deployment_arn=back.service_deployment_arn,
        ecs_rollback=back.service_deployment_arn is not None,
    )
    if outcome.ok:
        say(f"rolled back: {rev(back.task_definition_arn)} is serving again")
        ctx.result(svc.name)["rolled-back-to"] = back.task_definition_arn
        return True
    for line in outcome.diagnosis:
        say(f"rollback: {line}")
    return False
