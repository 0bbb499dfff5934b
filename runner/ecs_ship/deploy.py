"""Side effects: read the service's state (read-only calls) and apply a plan (the deploy's writes).

Deregistering old task-definition revisions (`keep_revisions`, `ecs-ship prune`) is revisions.py's, after a
deploy has succeeded, never part of applying its plan.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from . import url
from .aws import Clients, error_code, unsupported
from .errors import DeployError, InputError
from .plan import ApiCall, CurrentState, Plan, TargetGroupInfo
from .watch.board import ServiceBoard

# How old an answer of the run's board may be for a deploy's preparation: the services of a spec are prepared
# together, and one DescribeServices reads ten of them.
PREPARE_MAX_AGE = 5.0


def describe_service(clients: Clients, cluster: str, service: str, board: ServiceBoard | None = None) -> dict[str, Any]:
    try:
        if board is not None:
            answer = board.describe(clients.ecs, clients.region, cluster, service, PREPARE_MAX_AGE)
            resp = {"services": [answer] if answer is not None else []}
        else:
            resp = clients.ecs.describe_services(cluster=cluster, services=[service])
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ClusterNotFoundException":
            raise InputError(
                f"failed to find cluster {cluster!r} in {clients.region}",
                fix="check `cluster:` in the spec (and the region)",
            ) from exc
        raise
    found = [s for s in resp.get("services", []) if s.get("status") != "INACTIVE"]
    if not found:
        raise InputError(
            f"failed to find service {service!r} in cluster {cluster!r} ({clients.region})",
            fix="check `service:` in the spec; ecs-ship deploys to an existing service",
        )
    return dict(found[0])


def service_url(clients: Clients, target_group_arn: str, load_balancer_arns: tuple[str, ...]) -> str | None:
    """The URL users reach the service at: the best listener route to its target group (see url.py)."""
    for lb_arn in load_balancer_arns:
        # Services of a spec often share a load balancer: its listeners and rules are read once per run.
        dns, listeners, rules = clients.once(
            ("load balancer routes", lb_arn), functools.partial(_routes, clients, lb_arn)
        )
        found = url.service_url(dns, listeners, rules, target_group_arn)
        if found:
            return found
    return None


def _routes(clients: Clients, lb_arn: str) -> tuple[str, list[Any], dict[str, list[Any]]]:
    lb = clients.elbv2.describe_load_balancers(LoadBalancerArns=[lb_arn])["LoadBalancers"][0]
    listeners = [
        lst
        for page in clients.elbv2.get_paginator("describe_listeners").paginate(LoadBalancerArn=lb_arn)
        for lst in page.get("Listeners", [])
    ]
    rules = {
        lst["ListenerArn"]: [
            rule
            for page in clients.elbv2.get_paginator("describe_rules").paginate(ListenerArn=lst["ListenerArn"])
            for rule in page.get("Rules", [])
        ]
        for lst in listeners
    }
    return str(lb["DNSName"]), listeners, rules


def target_group_arns(service: Mapping[str, Any]) -> list[str]:
    return [str(lb["targetGroupArn"]) for lb in service.get("loadBalancers") or [] if lb.get("targetGroupArn")]


def deregistration_delay(clients: Clients, arn: str) -> int:
    """A target group's deregistration delay (ELBv2's default 300 s when unset), read once per group and run."""
    read = functools.partial(clients.elbv2.describe_target_group_attributes, TargetGroupArn=arn)
    attrs: Mapping[str, Any] = clients.once(("target group attributes", arn), read)
    values = {a["Key"]: a["Value"] for a in attrs.get("Attributes", [])}
    return int(values.get("deregistration_delay.timeout_seconds", "300"))


# Target groups per DescribeTargetGroups call when the services of a run are read together.
TARGET_GROUP_BATCH = 20


def describe_target_groups(clients: Clients, arns: Sequence[str], others: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The target groups `arns`, in one call with those of the run's other services (`others`): a spec of twenty
    services prepares them with one DescribeTargetGroups instead of twenty. What was read is kept for the run,
    so the other services' preparations find theirs. A group of another service that is gone fails the whole
    call: then ours are read alone, and that service's own preparation reports its group."""
    if not arns:
        return []
    lock, cache = clients.once(("target groups",), _group_cache)
    with lock:  # parallel preparations wait for the one read that answers for them all
        _read_target_groups(clients, cache, arns, others)
    return [cache[a] for a in dict.fromkeys(arns) if a in cache]


def _group_cache() -> tuple[threading.Lock, dict[str, dict[str, Any]]]:
    return threading.Lock(), {}


def _read_target_groups(
    clients: Clients, cache: dict[str, dict[str, Any]], arns: Sequence[str], others: Sequence[str]
) -> None:
    missing = [a for a in dict.fromkeys(arns) if a not in cache]
    if missing:
        extra = [a for a in dict.fromkeys(others) if a not in cache and a not in missing]
        batch = (missing + extra)[: max(TARGET_GROUP_BATCH, len(missing))]
        try:
            found = clients.elbv2.describe_target_groups(TargetGroupArns=batch).get("TargetGroups", [])
        except botocore.exceptions.ClientError as exc:
            if len(batch) == len(missing) or error_code(exc) != "TargetGroupNotFound":
                raise
            found = clients.elbv2.describe_target_groups(TargetGroupArns=missing).get("TargetGroups", [])
        for tg in found:
            cache[str(tg["TargetGroupArn"])] = dict(tg)


def read_state(
    clients: Clients,
    cluster: str,
    service: str,
    url_override: str | None = None,
    board: ServiceBoard | None = None,
    find_url: bool = True,
) -> CurrentState:
    """The service, its task definition and target groups; and its URL (``find_url``: the load balancer's
    listeners and rules, which a deploy without a smoke check reads after its writes instead)."""
    svc = describe_service(clients, cluster, service, board)
    td = clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"], include=["TAGS"])
    td.pop("ResponseMetadata", None)
    groups: list[TargetGroupInfo] = []
    arns = target_group_arns(svc)
    others = [arn for other in (board.answers(clients.region) if board else []) for arn in target_group_arns(other)]
    for tg in describe_target_groups(clients, arns, others):
        groups.append(
            TargetGroupInfo(
                arn=tg["TargetGroupArn"],
                name=tg.get("TargetGroupName", ""),
                health_check_path=tg.get("HealthCheckPath"),
                load_balancer_arns=tuple(tg.get("LoadBalancerArns", [])),
                target_type=str(tg.get("TargetType") or "instance"),
            )
        )
    url = url_override if url_override is not None or not find_url else find_service_url(clients, groups)
    return CurrentState(service=svc, task_definition=td, target_groups=tuple(groups), url=url)


def find_service_url(clients: Clients, groups: Sequence[TargetGroupInfo]) -> str | None:
    """The URL of the first target group that a listener routes to."""
    for group in groups:
        url = service_url(clients, group.arn, group.load_balancer_arns)
        if url:
            return url
    return None


@dataclass(frozen=True)
class Applied:
    task_definition_arn: str
    previous_task_definition_arn: str
    rollback_target: str | None  # see plan.rollback_target
    deployment_id: str
    registered: bool
    undo: tuple[ApiCall, ...] = ()  # the plan's undo calls for the changes that were made
    service_deployment_arn: str | None = None  # see Started
    service: Mapping[str, Any] | None = None  # see Started


@dataclass(frozen=True)
class Started:
    deployment_id: str
    # ECS's service deployment for it (UpdateService's currentServiceDeployment), where the API has them.
    service_deployment_arn: str | None
    # The service as UpdateService answered: the watch's first poll, with no DescribeServices of its own.
    service: Mapping[str, Any] | None = None


def start_deployment(
    clients: Clients,
    cluster: str,
    service: str,
    task_definition_arn: str,
    before: str | None = None,
    configuration: Mapping[str, Any] | None = None,
) -> Started:
    """update_service with forceNewDeployment (and the deployment configuration, when the spec sets one); the
    deployment it created. `before` is the service's currentServiceDeployment as read before the call: still
    that one afterwards, it is not ours."""
    extra = {"deploymentConfiguration": dict(configuration)} if configuration is not None else {}
    resp = clients.ecs.update_service(
        cluster=cluster, service=service, taskDefinition=task_definition_arn, forceNewDeployment=True, **extra
    )
    deployments = resp["service"].get("deployments", [])
    primary = [d for d in deployments if d.get("status") == "PRIMARY"]
    if not primary:
        raise DeployError(f"failed to start a deployment of {service}: update_service returned no PRIMARY deployment")
    current = resp["service"].get("currentServiceDeployment")
    if current == before:
        current = None
    return Started(str(primary[0]["id"]), str(current) if current else None, dict(resp["service"]))


def stop_service_deployment(clients: Clients, arn: str) -> bool:
    """Ask ECS to roll a service deployment back (StopServiceDeployment, ROLLBACK). False when it cannot:
    the deployment is no longer in progress, or the endpoint has no such action."""
    try:
        clients.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    except botocore.exceptions.ClientError as exc:
        if unsupported(exc) or error_code(exc) in (
            "ConflictException",
            "InvalidParameterException",
            "ServiceDeploymentNotFoundException",
        ):
            return False
        raise
    return True


def continue_service_deployment(clients: Clients, arn: str, hook_id: str, rollback: bool) -> None:
    """ContinueServiceDeployment: the deployment held at PAUSE hook `hook_id` goes on, or rolls back."""
    action = "ROLLBACK" if rollback else "CONTINUE"
    clients.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook_id, action=action)


def _record(describe: Callable[[], Mapping[str, Any]], key: str) -> dict[str, Any] | None:
    """The one record a describe call returns under ``key``; None where the endpoint has no such action (an older
    API, a stand-in) or the role may not read it, as ECS's record is optional to every caller."""
    try:
        found = describe().get(key)
    except botocore.exceptions.ClientError as exc:
        if unsupported(exc) or error_code(exc) in ("AccessDeniedException", "AccessDenied"):
            return None
        raise
    return dict(found[0]) if found else None


def describe_service_revision(clients: Clients, revision_arn: str) -> dict[str, Any] | None:
    """A service revision as ECS records it; None where the endpoint has no such action or record."""
    arns = [revision_arn]
    return _record(lambda: clients.ecs.describe_service_revisions(serviceRevisionArns=arns), "serviceRevisions")


def revision_task_definition(clients: Clients, revision_arn: str) -> str | None:
    """The task definition of a service revision; None when ECS has no record."""
    found = describe_service_revision(clients, revision_arn) or {}
    return str(found["taskDefinition"]) if found.get("taskDefinition") else None


def revision_images(clients: Clients, revision_arn: str) -> list[dict[str, Any]]:
    """The images of a service revision with the digests ECS resolved (``containerImages``)."""
    found = describe_service_revision(clients, revision_arn) or {}
    return [dict(i) for i in found.get("containerImages") or []]


def describe_service_deployment(clients: Clients, arn: str) -> dict[str, Any] | None:
    """The service deployment as ECS records it; None where the endpoint has no such action or record."""
    return _record(lambda: clients.ecs.describe_service_deployments(serviceDeploymentArns=[arn]), "serviceDeployments")


def _no_one_off(call: ApiCall, task_definition_arn: str) -> None:
    raise DeployError(f"failed to run {call.why}: no runner for one-off tasks was given")


def apply(
    plan: Plan,
    clients: Clients,
    before_write: Callable[[], None] = lambda: None,
    one_off: Callable[[ApiCall, str], None] = _no_one_off,
) -> Applied:
    """Make the plan's writes in order. If a write fails after a target group was changed, the change is put
    back before the error propagates: the service keeps running as it was, with the settings it had.

    ``before_write`` runs before each write and may raise (a cancel): a run interrupted between writes stops
    there, and a registered revision that no service uses is harmless. ``one_off`` runs a planned run_task
    call (a `pre_deploy` task) with the revision registered and waits for it; it raises when the task fails,
    which stops the plan before update_service.
    """
    arn = plan.previous_task_definition_arn
    undo_of = {str(c.params["TargetGroupArn"]): c for c in plan.undo}
    made: list[ApiCall] = []
    try:
        for call in plan.calls:
            before_write()
            if call.operation == "modify_target_group":
                clients.elbv2.modify_target_group(**call.params)
                if str(call.params["TargetGroupArn"]) in undo_of:
                    made.append(undo_of[str(call.params["TargetGroupArn"])])
            elif call.operation == "register_task_definition":
                arn = clients.ecs.register_task_definition(**plan.document)["taskDefinition"]["taskDefinitionArn"]
            elif call.operation == "run_task":
                one_off(call, arn)
            elif call.operation == "update_service":
                started = start_deployment(
                    clients,
                    plan.spec.cluster,
                    plan.spec.service,
                    arn,
                    plan.service_deployment_before,
                    call.params.get("deploymentConfiguration"),
                )
                return Applied(
                    arn,
                    plan.previous_task_definition_arn,
                    plan.rollback_target,
                    started.deployment_id,
                    plan.register,
                    tuple(made),
                    started.service_deployment_arn,
                    started.service,
                )
    except BaseException as exc:
        try:
            undo(tuple(made), clients)
        except Exception as undo_exc:
            # The first failure is the one to report; the message still says what was left changed.
            raise DeployError(
                f"failed to apply the plan for {plan.spec.service}: {exc}; and failed to put back "
                f"{', '.join(c.why for c in made)}: {undo_exc}",
                fix="set the target group's health check path back by hand",
            ) from exc
        raise
    raise DeployError(f"failed to apply the plan for {plan.spec.service}: it has no update_service call")


def undo(calls: tuple[ApiCall, ...], clients: Clients) -> None:
    """Put back what a plan changed besides the service (today: target-group health-check paths)."""
    for call in calls:
        if call.operation == "modify_target_group":
            clients.elbv2.modify_target_group(**call.params)
