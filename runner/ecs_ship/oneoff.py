"""One-off tasks planned: the exact RunTask call each `pre_deploy` and `post_deploy` entry makes with the new
revision. Pure.

A task runs as the service's own would: its launch type (or capacity provider strategy) and network
configuration, the new revision, and the command and environment of the spec's entry as container overrides.
``startedBy`` names the entry, so `aws ecs list-tasks --started-by ecs-ship/migrate` finds its runs.
`pre_deploy` calls go between the registration and UpdateService; `post_deploy` calls into the plan's `after`,
made once the new revision serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InputError
from .spec import OneOffSpec, ServiceSpec

STARTED_BY = "ecs-ship/"


def container_of(job: OneOffSpec, spec: ServiceSpec, document: Mapping[str, Any], index: int) -> str:
    """The container that runs the job: the entry's, else the first image's, else the first; it must exist."""
    names = [str(c.get("name")) for c in document.get("containerDefinitions") or []]
    name = job.container or (spec.images[0].container if spec.images else (names[0] if names else ""))
    if name not in names:
        raise InputError(
            f"failed to plan {job.phase} task {job.name} of {spec.service}: the task definition has no container "
            f"{name!r} (it has: {', '.join(names) or 'none'})",
            fix=f"set {job.phase}[{index}].container to one of those",
        )
    return name


def run_task_params(
    job: OneOffSpec, container: str, service: Mapping[str, Any], cluster: str, task_definition: str
) -> dict[str, Any]:
    """RunTask's parameters for the job on the service's capacity and network."""
    override: dict[str, Any] = {"name": container, "command": list(job.command)}
    if job.environment:
        override["environment"] = [{"name": k, "value": v} for k, v in job.environment]
    params: dict[str, Any] = {
        "cluster": cluster,
        "taskDefinition": task_definition,
        "count": 1,
        "startedBy": STARTED_BY + job.name,
        "overrides": {"containerOverrides": [override]},
    }
    if service.get("capacityProviderStrategy"):
        params["capacityProviderStrategy"] = [dict(p) for p in service["capacityProviderStrategy"]]
    elif service.get("launchType"):
        params["launchType"] = service["launchType"]
    if service.get("networkConfiguration"):
        params["networkConfiguration"] = dict(service["networkConfiguration"])
    if service.get("platformVersion") and service.get("launchType") == "FARGATE":
        params["platformVersion"] = service["platformVersion"]
    return params


def shown(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as a plan prints them: the environment's names, never its values."""
    out = dict(params)
    overrides = []
    for o in (params.get("overrides") or {}).get("containerOverrides") or []:
        o = dict(o)
        if o.get("environment"):
            o["environment"] = [f"{e['name']}=***" for e in o["environment"]]
        overrides.append(o)
    out["overrides"] = {"containerOverrides": overrides}
    return out
