"""Pure: spec + the service's current state + the images to deploy -> the exact API calls to make.

Nothing here talks to AWS. ``deploy.py`` reads the state and applies the plan; ``--dry-run`` and
``ecs-ship plan`` print it instead, which is why every write the deploy makes is listed here first.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import oneoff, strategy, taskdef
from .aws import timestamp
from .errors import InputError
from .spec import OneOffSpec, ServiceSpec


@dataclass(frozen=True)
class TargetGroupInfo:
    arn: str
    name: str
    health_check_path: str | None
    load_balancer_arns: tuple[str, ...]
    target_type: str = "instance"  # ELBv2's default; awsvpc tasks need "ip"


@dataclass(frozen=True)
class CurrentState:
    """What the read phase found (read-only calls only)."""

    service: Mapping[str, Any]  # describe_services entry
    task_definition: Mapping[str, Any]  # describe_task_definition response (taskDefinition + tags)
    target_groups: tuple[TargetGroupInfo, ...]
    url: str | None  # http(s)://<ALB DNS name>[:port] of the first target group's listener

    @property
    def task_definition_arn(self) -> str:
        return str(self.service["taskDefinition"])


@dataclass(frozen=True)
class ApiCall:
    service: str
    operation: str
    params: Mapping[str, Any]
    why: str

    def summary(self) -> str:
        # Plans are printed to CI logs: a task definition's environment and driver passwords must not be.
        params = taskdef.redacted(self.params) if self.operation == "register_task_definition" else self.params
        if self.operation == "run_task":
            params = oneoff.shown(self.params)
        shown = {k: v for k, v in params.items() if k != "containerDefinitions"}
        if "containerDefinitions" in self.params:
            shown["containerDefinitions"] = f"<{len(self.params['containerDefinitions'])} containers>"
        args = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"{self.service}.{self.operation}({args})  # {self.why}"


@dataclass(frozen=True)
class Plan:
    spec: ServiceSpec
    document: dict[str, Any]  # the task definition to register (or the unchanged current one)
    register: bool
    previous_task_definition_arn: str
    # The revision a failed deploy returns to: the last one whose deployment completed, None when none has.
    rollback_target: str | None
    diff: str
    warnings: tuple[str, ...]
    calls: tuple[ApiCall, ...]
    url: str | None
    images: Mapping[str, str] = field(default_factory=dict)  # container -> image reference
    # What puts back the load-balancer settings this plan changes, for a rollback: the old revision was
    # healthy with the old health-check path, and may not be with the new one.
    undo: tuple[ApiCall, ...] = ()
    # The service's currentServiceDeployment before this deploy, where the API has them: the one after
    # update_service is ours only if it differs.
    service_deployment_before: str | None = None
    # The deploymentConfiguration this deploy rolls out with: the service's, or the spec's `deployment:` over it.
    deployment: Mapping[str, Any] = field(default_factory=dict)
    # Calls made only once the new revision serves (post_deploy tasks, deregistering old revisions): not
    # part of apply(), which ends at update_service, and skipped when the deploy fails.
    after: tuple[ApiCall, ...] = ()

    def lines(self) -> list[str]:
        s = self.spec
        out = [f"service {s.service} in cluster {s.cluster}"]
        out.append(f"  running revision: {self.previous_task_definition_arn.rsplit('/', 1)[-1]}")
        target = self.rollback_target.rsplit("/", 1)[-1] if self.rollback_target else None
        out.append(f"  rollback target: {target or 'none (no deployment of the service has completed)'}")
        for container, ref in self.images.items():
            out.append(f"  image for {container}: {ref}")
        if self.register:
            out.append("  task definition changes:")
            out += ["    " + line for line in self.diff.splitlines()]
        else:
            out.append("  task definition unchanged: the running revision is redeployed")
        out += [f"  warning: {w}" for w in self.warnings]
        out += [f"  deployment: {line}" for line in strategy.traffic_steps(self.deployment)]
        out.append("  API calls:")
        out += [f"    {i}. {c.summary()}" for i, c in enumerate(self.calls, 1)]
        if self.after:
            out.append("  once the new revision serves:")
            first = len(self.calls) + 1
            out += [f"    {i}. {c.summary()}" for i, c in enumerate(self.after, first)]
        if self.url:
            out.append(f"  service URL: {self.url}")
        return out


def rollback_target(service: Mapping[str, Any]) -> str | None:
    """The task definition of the service's last deployment that completed, or None when none has.

    Not simply the service's current revision: mid-rollout (someone else's deploy, or an earlier run left with
    --no-rollback) that is a revision that never served, and returning to it would be no rollback at all.
    ECS keeps rolloutState COMPLETED on a deployment once it reached steady state, also after a newer one
    made it ACTIVE. An implementation without rolloutState is taken at its word only for a lone PRIMARY
    deployment: a service with a single deployment is at rest.
    """
    deployments = [d for d in service.get("deployments") or [] if d.get("taskDefinition")]
    completed = [d for d in deployments if d.get("rolloutState") == "COMPLETED"]
    if not completed and len(deployments) == 1 and deployments[0].get("rolloutState") is None:
        completed = deployments
    if not completed:
        return None
    # The newest completed one: a PRIMARY first, else the most recently created ACTIVE deployment.
    primary = [d for d in completed if d.get("status") == "PRIMARY"]
    if primary:
        return str(primary[0]["taskDefinition"])
    newest = max(completed, key=lambda d: timestamp(d.get("createdAt")) or 0.0)
    return str(newest["taskDefinition"])


def require_ecs_controller(service: Mapping[str, Any], name: str, verb: str) -> None:
    """CODE_DEPLOY and EXTERNAL services take their deployments from another controller: update_service with a
    new task definition is refused by ECS (or bypasses that controller), so ecs-ship stops before writing. An ECS
    Express Mode service (resourceManagementType ECS) has ECS manage its load balancer, scaling and deployments."""
    if service.get("resourceManagementType") == "ECS":
        raise InputError(
            f"failed to {verb} service {name}: it is an ECS Express Mode service, whose deployments ECS manages",
            fix="deploy it with UpdateExpressGatewayService (or Express Mode in the console); ecs-ship deploys "
            "services you manage",
        )
    controller = (service.get("deploymentController") or {}).get("type", "ECS")
    if controller != "ECS":
        raise InputError(
            f"failed to {verb} service {name}: its deployment controller is {controller}",
            fix="ecs-ship drives ECS-controlled deployments; use the controller's own tooling "
            "(CodeDeploy for blue/green) for this service",
        )


def base_document(spec: ServiceSpec, state: CurrentState) -> dict[str, Any]:
    source = spec.task_definition
    if source.kind == "current" or source.document is None:
        return taskdef.normalise(state.task_definition)
    return taskdef.normalise(source.document)


# ECS's runtimePlatform names, as `docker build --platform` (os/arch) spells them.
ARCHITECTURES = {"X86_64": "amd64", "ARM64": "arm64"}


def _runs_on_fargate(document: Mapping[str, Any], service: Mapping[str, Any]) -> bool:
    if service.get("launchType"):
        return bool(service["launchType"] == "FARGATE")
    strategy = service.get("capacityProviderStrategy") or []
    if strategy:
        return any(str(p.get("capacityProvider", "")).startswith("FARGATE") for p in strategy)
    return list(document.get("requiresCompatibilities") or []) == ["FARGATE"]


def check_runtime_platform(spec: ServiceSpec, document: Mapping[str, Any], service: Mapping[str, Any]) -> None:
    """Every image the spec builds must include the platform the task definition's tasks run on: an amd64 image
    on ARM64 tasks (or the reverse) starts and dies at once with "exec format error".

    Without runtimePlatform, Fargate runs X86_64 Linux; on EC2 the instance decides, so nothing is checked."""
    runtime = document.get("runtimePlatform") or {}
    arch, family = runtime.get("cpuArchitecture"), runtime.get("operatingSystemFamily")
    fargate = _runs_on_fargate(document, service)
    defaulted = arch is None and fargate
    arch = "X86_64" if defaulted else arch
    wanted_os = ("linux" if family == "LINUX" else "windows") if family else ("linux" if fargate else None)
    wanted_arch = ARCHITECTURES.get(str(arch)) if arch else None
    if wanted_os is None and wanted_arch is None:
        return
    shown = "/".join(str(v) for v in (arch, family) if v is not None)
    if defaulted:
        shown += " (Fargate's default: the task definition sets no runtimePlatform.cpuArchitecture)"
    for index, image in enumerate(spec.images):
        built = [tuple(p.split("/")[:2]) for p in image.platform]
        if any((wanted_os in (None, os)) and (wanted_arch in (None, cpu)) for os, cpu in built):
            continue
        needed = f"{wanted_os or built[0][0]}/{wanted_arch or built[0][1]}"
        theirs = {cpu: name for name, cpu in ARCHITECTURES.items()}.get(built[0][1])
        other = "change the task definition's runtimePlatform to match the image"
        if theirs and wanted_os in (None, built[0][0]):
            other = f"set runtimePlatform.cpuArchitecture to {theirs} in the task definition"
        raise InputError(
            f"failed to plan a deployment of service {spec.service}: the image of container {image.container} is "
            f"built for {image.platform_arg}, but the task definition's runtimePlatform is {shown}; its tasks "
            "would fail to start with 'exec format error'",
            fix=f"build for {needed} (images[{index}].platform; a list builds one image for several platforms), "
            f"or {other}",
        )


def check_fargate_spot(spec: ServiceSpec, document: Mapping[str, Any], service: Mapping[str, Any]) -> None:
    """Fargate Spot runs only X86_64 Linux tasks: an ARM64 task definition on a strategy that gives Spot any
    task would leave those tasks unplaced for the whole deploy."""
    if (document.get("runtimePlatform") or {}).get("cpuArchitecture") != "ARM64":
        return
    strategy = service.get("capacityProviderStrategy") or []
    # A provider gets tasks when it has a base or a weight, or when it is the only one.
    if not any(
        p.get("capacityProvider") == "FARGATE_SPOT" and (p.get("base") or p.get("weight") or len(strategy) == 1)
        for p in strategy
    ):
        return
    raise InputError(
        f"failed to plan a deployment of service {spec.service}: the task definition's runtimePlatform is ARM64, "
        "but the service's capacity provider strategy places tasks on FARGATE_SPOT, which runs only X86_64 tasks",
        fix="set runtimePlatform.cpuArchitecture to X86_64 (and build for linux/amd64), or give FARGATE_SPOT "
        "weight 0 and no base in the service's capacity provider strategy",
    )


def make_plan(spec: ServiceSpec, state: CurrentState, images: Mapping[str, str]) -> Plan:
    svc = state.service
    if svc.get("status") != "ACTIVE":
        raise InputError(
            f"failed to plan a deployment of service {spec.service}: it is {svc.get('status', 'missing')} "
            f"in cluster {spec.cluster}",
            fix="create the service first (console, Terraform or `aws ecs create-service`)",
        )
    require_ecs_controller(svc, spec.service, "plan a deployment of")
    calls: list[ApiCall] = []
    undo: list[ApiCall] = []
    warnings: list[str] = []

    wanted = spec.load_balancer.health_check_path
    for tg in state.target_groups:
        if wanted and tg.health_check_path != wanted:
            if not spec.load_balancer.apply_health_check_path:
                raise InputError(
                    f"failed to plan a deployment of service {spec.service}: target group {tg.name} checks "
                    f"{tg.health_check_path!r} but the spec's load_balancer.health_check_path is {wanted!r}",
                    fix="fix the path in the spec, or set load_balancer.apply_health_check_path: true to change "
                    "the target group",
                )
            calls.append(
                ApiCall(
                    "elbv2",
                    "modify_target_group",
                    {"TargetGroupArn": tg.arn, "HealthCheckPath": wanted},
                    f"health check path {tg.health_check_path!r} -> {wanted!r}",
                )
            )
            if tg.health_check_path:
                undo.append(
                    ApiCall(
                        "elbv2",
                        "modify_target_group",
                        {"TargetGroupArn": tg.arn, "HealthCheckPath": tg.health_check_path},
                        f"rollback: health check path {wanted!r} -> {tg.health_check_path!r}",
                    )
                )
    if wanted and not state.target_groups:
        warnings.append(
            f"load_balancer.health_check_path is {wanted!r} but service {spec.service} has no target group; "
            "success is judged by the tasks alone"
        )

    base = base_document(spec, state)
    rendered = taskdef.render(base, images, allow_host_volumes=spec.allow_host_volumes)
    check_runtime_platform(spec, rendered.document, svc)
    check_fargate_spot(spec, rendered.document, svc)
    warnings += rendered.warnings
    current = taskdef.normalise(state.task_definition)
    register = not taskdef.same_definition(rendered.document, current)
    current_label = state.task_definition_arn.rsplit("/", 1)[-1]
    diff = taskdef.diff(current, rendered.document, old_label=current_label, new_label="new") if register else ""
    target = "<new revision>" if register else state.task_definition_arn
    if register:
        calls.append(
            ApiCall(
                "ecs",
                "register_task_definition",
                copy.deepcopy(rendered.document),
                f"new revision of {rendered.document['family']}",
            )
        )
    calls += _one_off_calls(spec.pre_deploy, spec, rendered.document, svc, target)
    update: dict[str, Any] = {
        "cluster": spec.cluster,
        "service": spec.service,
        "taskDefinition": target,
        "forceNewDeployment": True,
    }
    configuration = strategy.configuration(spec, svc)
    if configuration is not None:
        update["deploymentConfiguration"] = configuration
    calls.append(ApiCall("ecs", "update_service", update, "start a new deployment"))
    after = _one_off_calls(spec.post_deploy, spec, rendered.document, svc, target)
    return Plan(
        spec=spec,
        document=rendered.document,
        register=register,
        previous_task_definition_arn=state.task_definition_arn,
        rollback_target=rollback_target(state.service),
        diff=diff,
        warnings=tuple(warnings),
        calls=tuple(calls),
        url=state.url,
        images=dict(images),
        undo=tuple(undo),
        service_deployment_before=svc.get("currentServiceDeployment"),
        deployment=configuration if configuration is not None else dict(svc.get("deploymentConfiguration") or {}),
        after=tuple(after),
    )


def _one_off_calls(
    jobs: tuple[OneOffSpec, ...],
    spec: ServiceSpec,
    document: Mapping[str, Any],
    service: Mapping[str, Any],
    target: str,
) -> list[ApiCall]:
    """The run_task call of each one-off job, in order, with task definition ``target``; a container the task
    definition lacks is bad input, found here, before any write."""
    calls = []
    for i, job in enumerate(jobs):
        container = oneoff.container_of(job, spec, document, i)
        calls.append(
            ApiCall(
                "ecs",
                "run_task",
                oneoff.run_task_params(job, container, service, spec.cluster, target),
                f"{job.phase} {job.name}: must exit 0 in container {container} within {job.timeout:g}s",
            )
        )
    return calls
