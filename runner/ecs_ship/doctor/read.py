"""The read-only calls `ecs-ship doctor` makes: the service, its task definition, its target groups and their
attributes, its running and recently stopped tasks, and ECS's record of its recent service deployments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import deploy
from ..aws import Clients, error_code, unsupported
from ..errors import DeployError
from .history import history
from .model import History, Settings, TargetGroupSettings

RECENT = 10  # service deployments looked at: the last ten say how long this service's deploys take


def launch_type(service: Mapping[str, Any]) -> str:
    if service.get("launchType"):
        return str(service["launchType"])
    providers = [str(p.get("capacityProvider", "")) for p in service.get("capacityProviderStrategy") or []]
    return "FARGATE" if providers and all(p.startswith("FARGATE") for p in providers) else "EC2"


def stop_timeouts(task_definition: Mapping[str, Any]) -> tuple[tuple[str, int | None], ...]:
    """Each container's stopTimeout as its definition sets it (None: ECS's default)."""
    return tuple(
        (str(c.get("name", "")), int(c["stopTimeout"]) if c.get("stopTimeout") is not None else None)
        for c in task_definition.get("containerDefinitions") or []
    )


def settings(
    service: Mapping[str, Any],
    groups: list[TargetGroupSettings],
    cluster: str,
    task_definition: Mapping[str, Any] | None = None,
) -> Settings:
    conf = service.get("deploymentConfiguration") or {}
    breaker = conf.get("deploymentCircuitBreaker") or {}
    return Settings(
        cluster=cluster,
        service=str(service.get("serviceName", "")),
        desired=int(service.get("desiredCount") or 0),
        minimum_healthy_percent=int(conf.get("minimumHealthyPercent", 100)),
        maximum_percent=int(conf.get("maximumPercent", 200)),
        grace_period=int(service.get("healthCheckGracePeriodSeconds") or 0),
        circuit_breaker=bool(breaker.get("enable")),
        strategy=str(conf.get("strategy") or "ROLLING"),
        bake_minutes=int(conf.get("bakeTimeInMinutes") or 0),
        launch_type=launch_type(service),
        target_groups=tuple(groups),
        stop_timeouts=stop_timeouts(task_definition or {}),
    )


def target_group(tg: Mapping[str, Any], deregistration_delay: int) -> TargetGroupSettings:
    return TargetGroupSettings(
        arn=str(tg["TargetGroupArn"]),
        name=str(tg.get("TargetGroupName", "")),
        interval=int(tg.get("HealthCheckIntervalSeconds") or 30),
        timeout=int(tg.get("HealthCheckTimeoutSeconds") or 5),
        healthy_threshold=int(tg.get("HealthyThresholdCount") or 5),
        unhealthy_threshold=int(tg.get("UnhealthyThresholdCount") or 2),
        matcher=str((tg.get("Matcher") or {}).get("HttpCode") or ""),
        path=tg.get("HealthCheckPath"),
        deregistration_delay=deregistration_delay,
    )


def read(clients: Clients, cluster: str, service_name: str) -> tuple[Settings, History]:
    service = deploy.describe_service(clients, cluster, service_name)
    if service.get("status") != "ACTIVE":
        raise DeployError(f"failed to read service {service_name} in cluster {cluster}: it is {service.get('status')}")
    groups: list[TargetGroupSettings] = []
    for tg in deploy.describe_target_groups(clients, deploy.target_group_arns(service)):
        groups.append(target_group(tg, deploy.deregistration_delay(clients, str(tg["TargetGroupArn"]))))
    # The revision the service runs: its containers' stop timeouts.
    task_definition = clients.ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    tasks = _tasks(clients, cluster, service_name, "RUNNING")
    # Stopped tasks (ECS lists them for about an hour): which were stopped before they could serve.
    stopped = _tasks(clients, cluster, service_name, "STOPPED")
    deployments = _service_deployments(clients, cluster, service_name)
    return settings(service, groups, cluster, task_definition), history(tasks, deployments, service, stopped)


def _tasks(clients: Clients, cluster: str, service: str, status: str) -> list[Mapping[str, Any]]:
    """Up to 100 of the service's tasks in `status`: one page of ListTasks, one DescribeTasks."""
    page = clients.ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus=status, maxResults=100)
    arns = list(page.get("taskArns", []))
    return list(clients.ecs.describe_tasks(cluster=cluster, tasks=arns).get("tasks", [])) if arns else []


def _service_deployments(clients: Clients, cluster: str, service: str) -> list[Mapping[str, Any]] | None:
    """The service's recent successful service deployments; None where the API does not keep them or the role
    may not read them (the service's events tell instead)."""
    try:
        listed = clients.ecs.list_service_deployments(
            cluster=cluster, service=service, status=["SUCCESSFUL"], maxResults=RECENT
        )
        arns = [str(d["serviceDeploymentArn"]) for d in listed.get("serviceDeployments", [])]
        if not arns:
            return []
        found = clients.ecs.describe_service_deployments(serviceDeploymentArns=arns)
    except Exception as exc:
        if unsupported(exc) or error_code(exc) in ("AccessDeniedException", "AccessDenied"):
            return None
        raise
    return list(found.get("serviceDeployments", []))
