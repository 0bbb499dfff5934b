"""Reads one snapshot per poll from the ECS and ELBv2 APIs, and turns their answers into plain data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from ..aws import Clients, error_code, timestamp, unsupported
from ..errors import DeployError
from .model import (
    ContainerCheck,
    ContainerState,
    DeploymentState,
    Event,
    Goal,
    HookState,
    LoadBalancerBinding,
    ServiceDeploymentState,
    Snapshot,
    TargetState,
    TaskState,
)


def parse_deployment(d: Mapping[str, Any]) -> DeploymentState:
    return DeploymentState(
        id=str(d["id"]),
        status=str(d.get("status", "")),
        task_definition=str(d.get("taskDefinition", "")),
        desired=int(d.get("desiredCount", 0)),
        running=int(d.get("runningCount", 0)),
        pending=int(d.get("pendingCount", 0)),
        failed=int(d.get("failedTasks", 0)),
        rollout_state=d.get("rolloutState"),
        rollout_reason=d.get("rolloutStateReason"),
        created_at=timestamp(d.get("createdAt")),
    )


def parse_service_deployment(d: Mapping[str, Any]) -> ServiceDeploymentState:
    rollback = d.get("rollback") or {}
    breaker = d.get("deploymentCircuitBreaker") or {}
    return ServiceDeploymentState(
        arn=str(d["serviceDeploymentArn"]),
        status=str(d.get("status", "")),
        status_reason=d.get("statusReason"),
        lifecycle_stage=d.get("lifecycleStage"),
        rollback_reason=rollback.get("reason"),
        rollback_revision=rollback.get("serviceRevisionArn"),
        target_revision=(d.get("targetServiceRevision") or {}).get("arn"),
        breaker_failures=breaker.get("failureCount"),
        breaker_threshold=breaker.get("threshold"),
        hooks=tuple(
            HookState(
                hook_id=str(h.get("hookId", "")),
                target_type=str(h.get("targetType", "")),
                status=str(h.get("status", "")),
                expires_at=timestamp(h.get("expiresAt")),
                timeout_action=h.get("timeoutAction"),
            )
            for h in d.get("lifecycleHookDetails") or []
        ),
    )


def parse_task(t: Mapping[str, Any], load_balanced: set[str], instances: Mapping[str, str] | None = None) -> TaskState:
    """`instances` maps container-instance ARNs to EC2 instance ids (DescribeContainerInstances)."""
    ip = None
    for att in t.get("attachments") or []:
        for detail in att.get("details") or []:
            if detail.get("name") == "privateIPv4Address":
                ip = detail.get("value")
    for c in t.get("containers") or []:
        for ni in c.get("networkInterfaces") or []:
            ip = ip or ni.get("privateIpv4Address")
    ports: set[int] = set()
    host_ports: set[int] = set()
    for c in t.get("containers") or []:
        if load_balanced and c.get("name") not in load_balanced:
            continue
        for b in c.get("networkBindings") or []:
            for key in ("hostPort", "containerPort"):
                if b.get(key):
                    ports.add(int(b[key]))
            if b.get("hostPort"):
                host_ports.add(int(b["hostPort"]))
    container_instance = t.get("containerInstanceArn")
    return TaskState(
        arn=str(t["taskArn"]),
        last_status=str(t.get("lastStatus", "")),
        desired_status=str(t.get("desiredStatus", "")),
        started_by=str(t.get("startedBy", "")),
        task_definition=str(t.get("taskDefinitionArn", "")),
        stopped_reason=t.get("stoppedReason"),
        stop_code=t.get("stopCode"),
        started_at=timestamp(t.get("startedAt")),
        ip=ip,
        ports=frozenset(ports),
        containers=tuple(
            ContainerState(
                name=str(c.get("name", "")),
                last_status=str(c.get("lastStatus", "")),
                exit_code=c.get("exitCode"),
                reason=c.get("reason"),
                health_status=str(c.get("healthStatus") or "UNKNOWN"),
                image_digest=c.get("imageDigest"),
            )
            for c in t.get("containers") or []
        ),
        container_instance=container_instance,
        instance_id=(instances or {}).get(container_instance) if container_instance else None,
        host_ports=frozenset(host_ports),
        health_status=str(t.get("healthStatus") or "UNKNOWN"),
    )


def checks_of(task_definition: Mapping[str, Any]) -> tuple[ContainerCheck, ...]:
    """The container health checks a task definition asks ECS to run (``essential`` defaults to true)."""
    return tuple(
        ContainerCheck(
            container=str(c.get("name", "")),
            command=" ".join(str(x) for x in c["healthCheck"]["command"]),
            essential=bool(c.get("essential", True)),
        )
        for c in task_definition.get("containerDefinitions") or []
        if (c.get("healthCheck") or {}).get("command")
    )


def digests_of(task_definition: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(container, digest) for each container whose image is pinned by digest, as ecs-ship registers them."""
    out = []
    for c in task_definition.get("containerDefinitions") or []:
        _, at, digest = str(c.get("image", "")).partition("@")
        if at and digest.startswith("sha256:"):
            out.append((str(c.get("name", "")), digest))
    return tuple(out)


def bindings_of(service: Mapping[str, Any]) -> tuple[LoadBalancerBinding, ...]:
    return tuple(
        LoadBalancerBinding(
            str(lb["targetGroupArn"]),
            str(lb.get("containerName", "")),
            int(lb.get("containerPort", 0)),
            alternate=(lb.get("advancedConfiguration") or {}).get("alternateTargetGroupArn"),
        )
        for lb in service.get("loadBalancers") or []
        if lb.get("targetGroupArn")
    )


class Reader:
    """Reads one snapshot per poll: describe_services, list+describe the deployment's tasks, target health."""

    def __init__(self, clients: Clients, cluster: str, service: str, clock: Callable[[], float]) -> None:
        self.clients = clients
        self.cluster = cluster
        self.service = service
        self.clock = clock
        # Container instance ARN -> EC2 instance id: fixed for an instance's life, so read once per watch.
        self.instances: dict[str, str] = {}
        self._foreign: set[str] = set()  # stopped tasks of other deployments: described once, then skipped
        # Cleared when the endpoint does not know DescribeServiceDeployments (an older ECS-compatible API).
        self.service_deployments = True

    def _list(self, **filters: str) -> list[str]:
        pages = self.clients.ecs.get_paginator("list_tasks").paginate(cluster=self.cluster, **filters)
        return list(dict.fromkeys(arn for page in pages for arn in page.get("taskArns", [])))

    def snapshot(self, goal: Goal) -> Snapshot:
        # ECS's service deployment first: whatever stopped it (a newer deployment, above all) happened before
        # this read, so the service read next already shows it, and the verdict can name it.
        service_deployment = self._service_deployment(goal.service_deployment_arn)
        resp = self.clients.ecs.describe_services(cluster=self.cluster, services=[self.service])
        if not resp.get("services"):
            raise DeployError(f"failed to describe service {self.service} in cluster {self.cluster}: it is gone")
        svc = resp["services"][0]
        # ListTasks pages at 100, and startedBy must be the only filter when given, so it lists our running
        # tasks only; stopped ones come from the service's tasks whose desired status is STOPPED (other
        # deployments' are read again only while they are still on their way to STOPPED).
        arns = self._list(startedBy=goal.deployment_id)
        arns += [a for a in self._list(serviceName=self.service, desiredStatus="STOPPED") if a not in self._foreign]
        raw: list[Mapping[str, Any]] = []
        for i in range(0, len(arns), 100):
            raw += self.clients.ecs.describe_tasks(cluster=self.cluster, tasks=arns[i : i + 100]).get("tasks", [])
        self._learn_instances({str(t["containerInstanceArn"]) for t in raw if t.get("containerInstanceArn")})
        load_balanced = {lb.container for lb in goal.load_balancers}
        tasks: list[TaskState] = []
        stopping: list[TaskState] = []
        for item in raw:
            task = parse_task(item, load_balanced, self.instances)
            if task.started_by == goal.deployment_id:
                tasks.append(task)
            elif task.last_status == "STOPPED":
                self._foreign.add(task.arn)
            else:
                stopping.append(task)
        targets: list[TargetState] = []
        for tg in goal.target_groups:
            resp = self.clients.elbv2.describe_target_health(TargetGroupArn=tg)
            for d in resp.get("TargetHealthDescriptions", []):
                th = d.get("TargetHealth") or {}
                targets.append(
                    TargetState(
                        target_group=tg,
                        id=str(d["Target"]["Id"]),
                        port=int(d["Target"].get("Port", 0)),
                        state=str(th.get("State", "")),
                        reason=th.get("Reason"),
                        description=th.get("Description"),
                    )
                )
        return Snapshot(
            at=self.clock(),
            deployments=tuple(parse_deployment(d) for d in svc.get("deployments", [])),
            tasks=tuple(tasks),
            targets=tuple(targets),
            events=tuple(
                Event(str(e.get("id", "")), timestamp(e.get("createdAt")) or 0.0, str(e.get("message", "")))
                for e in svc.get("events", [])
            ),
            grace_period=int(svc.get("healthCheckGracePeriodSeconds") or 0),
            stopping=tuple(stopping),
            service_deployment=service_deployment,
        )

    def _service_deployment(self, arn: str | None) -> ServiceDeploymentState | None:
        if arn is None or not self.service_deployments:
            return None
        try:
            resp = self.clients.ecs.describe_service_deployments(serviceDeploymentArns=[arn])
        except ClientError as exc:
            # The deployment is judged without it where the API or the permission is missing.
            if not (unsupported(exc) or error_code(exc) in ("AccessDeniedException", "AccessDenied")):
                raise
            self.service_deployments = False
            return None
        found = resp.get("serviceDeployments") or []
        return parse_service_deployment(found[0]) if found else None

    def _learn_instances(self, arns: set[str]) -> None:
        unknown = sorted(arns - self.instances.keys())
        for i in range(0, len(unknown), 100):
            resp = self.clients.ecs.describe_container_instances(
                cluster=self.cluster, containerInstances=unknown[i : i + 100]
            )
            for ci in resp.get("containerInstances", []):
                self.instances[str(ci["containerInstanceArn"])] = str(ci.get("ec2InstanceId", ""))
