"""Reads one snapshot per poll from the ECS and ELBv2 APIs, and turns their answers into plain data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from .. import ratelimit
from ..aws import Clients, error_code, timestamp, unsupported
from ..errors import DeployError
from . import cadence
from .board import ServiceBoard
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
    """Reads one snapshot per poll, calling only the APIs whose answer can have changed (see cadence.py)."""

    def __init__(
        self,
        clients: Clients,
        cluster: str,
        service: str,
        clock: Callable[[], float],
        board: ServiceBoard | None = None,
        max_age: float = 0.0,
    ) -> None:
        self.clients = clients
        self.cluster = cluster
        self.service = service
        self.clock = clock
        # Shared by the watches of a run: their DescribeServices calls are batched per cluster, and an answer
        # at most `max_age` seconds old is used again.
        self.board = board
        self.max_age = max_age
        # Answers the board had before this watch began describe the service before our deployment.
        self._not_before: float | None = None
        if board is not None:
            board.watch(clients.region, cluster, service)
            self._not_before = board.now()
        # Container instance ARN -> EC2 instance id: fixed for an instance's life, so read once per watch.
        self.instances: dict[str, str] = {}
        self._foreign: set[str] = set()  # stopped tasks of other deployments: described once, then skipped
        # Cleared when the endpoint does not know DescribeServiceDeployments (an older ECS-compatible API).
        self.service_deployments = True
        self.seen = cadence.Seen()
        self.last: Snapshot | None = None
        self._service: Mapping[str, Any] | None = None
        self._service_deployment: ServiceDeploymentState | None = None
        self._stopped: dict[str, Mapping[str, Any]] = {}  # our STOPPED tasks: they never change again
        self._stopping_arns: list[str] = []  # the service's tasks with desired status STOPPED, as last listed
        self._seed: Mapping[str, Any] | None = None

    def seed(self, service: Mapping[str, Any]) -> None:
        """The service as UpdateService answered, the moment our deployment was made: the first poll reads
        from it instead of calling DescribeServices again. ECS's service deployment was created PENDING by that
        same call, so it is first read when the deployment's tasks move (or after the refresh), not now."""
        self._seed = service

    def close(self) -> None:
        if self.board is not None:
            self.board.unwatch(self.clients.region, self.cluster, self.service)

    def _list(self, **filters: str) -> list[str]:
        pages = self.clients.ecs.get_paginator("list_tasks").paginate(cluster=self.cluster, **filters)
        return list(dict.fromkeys(arn for page in pages for arn in page.get("taskArns", [])))

    def _describe_service(self) -> Mapping[str, Any]:
        if self.board is not None:
            found = self.board.describe(
                self.clients.ecs, self.clients.region, self.cluster, self.service, self.max_age, self._not_before
            )
        else:
            resp = self.clients.ecs.describe_services(cluster=self.cluster, services=[self.service])
            found = (resp.get("services") or [None])[0]
        if not found:
            raise DeployError(f"failed to describe service {self.service} in cluster {self.cluster}: it is gone")
        self.seen = replace(self.seen, service_at=self.clock())
        return found

    def snapshot(self, goal: Goal) -> Snapshot:
        # A poll waits for the budget behind the writes and preparations of the run's other services.
        with ratelimit.background():
            return self._snapshot(goal)

    def _snapshot(self, goal: Goal) -> Snapshot:
        last = self.last
        targets = last.targets if last is not None else ()
        targets_read, read_service = False, True
        health = cadence.health_phase(last, goal)
        if health and last is not None:
            # Only target health is awaited: the groups first, the service when they have news (or rarely).
            targets, targets_read = self._read_targets(goal), True
            read_service = cadence.target_news(last, goal, targets) or cadence.stale(
                self.seen.service_at, self.clock(), cadence.HEALTH_PHASE_SERVICE_EVERY
            )
        if self._seed is not None:
            # Nothing of the new deployment has happened yet: its tasks and ECS's record of it are read when
            # its counters first move, as if they had been read now.
            self._service, self._seed, read_service = self._seed, None, True
            now = self.clock()
            deployments = tuple(parse_deployment(d) for d in self._service.get("deployments", []))
            self.seen = replace(
                self.seen,
                service_at=now,
                service_deployment_at=now,
                service_deployment_lifecycle=cadence.lifecycle(goal, deployments),
                tasks_at=now,
                tasks_counters=cadence.counters(goal, deployments),
            )
        elif read_service or self._service is None:
            self._service, read_service = self._describe_service(), True
        snap = self._from_service(self._service, last, targets)
        now = snap.at
        if read_service and cadence.read_service_deployment(goal, self.seen, snap.deployments, now, health):
            prev, sd = self._service_deployment, self._read_service_deployment(goal.service_deployment_arn)
            self.seen = replace(
                self.seen,
                service_deployment_at=now,
                service_deployment_lifecycle=cadence.lifecycle(goal, snap.deployments),
            )
            self._service_deployment = sd
            ended = sd is not None and (sd.rolling_back or sd.status in ("STOPPED", "STOP_REQUESTED"))
            if ended and sd is not None and (prev is None or prev.status != sd.status):
                # Whatever ended it (a newer deployment, above all) may have come after the service was read:
                # read it again so that the verdict can name it and never roll back over it.
                self._service = self._describe_service()
                snap = self._from_service(self._service, last, targets)
            snap = replace(snap, service_deployment=sd)
        # A target of ours that went away says a task stopped, which the counters may not (its replacement can
        # have started already): the tasks are read too.
        target_gone = targets_read and last is not None and cadence.target_gone(last, goal, targets)
        if read_service and (target_gone or cadence.read_tasks(goal, self.seen, snap, now, health)):
            before = last.deployments if last is not None else None
            stopped = before is None or cadence.lost_tasks(goal, before, snap)
            tasks, stopping = self._read_tasks(goal, stopped, cadence.started_tasks(snap, goal))
            self.seen = replace(self.seen, tasks_at=now, tasks_counters=cadence.counters(goal, snap.deployments))
            snap = replace(snap, tasks=tasks, stopping=stopping)
        if not targets_read and cadence.read_targets(goal, self.seen, snap, now):
            snap = replace(snap, targets=self._read_targets(goal))
        snap = replace(snap, at=self.clock())
        self.last = snap
        return snap

    def _from_service(
        self, svc: Mapping[str, Any], last: Snapshot | None, targets: tuple[TargetState, ...]
    ) -> Snapshot:
        """This poll's snapshot as far as the service says; tasks and targets as last read."""
        return Snapshot(
            at=self.clock(),
            deployments=tuple(parse_deployment(d) for d in svc.get("deployments", [])),
            tasks=last.tasks if last is not None else (),
            targets=targets,
            events=tuple(
                Event(str(e.get("id", "")), timestamp(e.get("createdAt")) or 0.0, str(e.get("message", "")))
                for e in svc.get("events", [])
            ),
            grace_period=int(svc.get("healthCheckGracePeriodSeconds") or 0),
            stopping=last.stopping if last is not None else (),
            service_deployment=self._service_deployment,
        )

    def _read_tasks(
        self, goal: Goal, stopped: bool, started: AbstractSet[str] = frozenset()
    ) -> tuple[tuple[TaskState, ...], tuple[TaskState, ...]]:
        # ListTasks pages at 100, and startedBy must be the only filter when given, so it lists our running
        # tasks only; stopped ones come from the service's tasks whose desired status is STOPPED, listed when a
        # counter says a task stopped (other deployments' are read again only while on their way to STOPPED).
        arns = self._list(startedBy=goal.deployment_id)
        # A task of ours last seen on its way to RUNNING is no longer listed: it stopped even when every counter
        # reads as before, its replacement started already (a Spot interruption, say). One placed, run and
        # stopped before we ever read it is named by ECS's "has started" event: one we do not know is looked for.
        seen = self.last.tasks if self.last is not None else ()
        known = {t.arn for t in seen if t.desired_status == "RUNNING"}
        ids = {a.rsplit("/", 1)[-1] for a in [*arns, *(t.arn for t in seen), *self._foreign, *self._stopping_arns]}
        if stopped or known - set(arns) or started - ids:
            listed = self._list(serviceName=self.service, desiredStatus="STOPPED")
            self._stopping_arns = [a for a in listed if a not in self._foreign]
        arns += [a for a in self._stopping_arns if a not in arns and a not in self._foreign]
        fresh = [a for a in arns if a not in self._stopped]
        raw: list[Mapping[str, Any]] = [self._stopped[a] for a in arns if a in self._stopped]
        for i in range(0, len(fresh), 100):
            raw += self.clients.ecs.describe_tasks(cluster=self.cluster, tasks=fresh[i : i + 100]).get("tasks", [])
        self._learn_instances({str(t["containerInstanceArn"]) for t in raw if t.get("containerInstanceArn")})
        load_balanced = {lb.container for lb in goal.load_balancers}
        tasks: list[TaskState] = []
        stopping: list[TaskState] = []
        for item in raw:
            task = parse_task(item, load_balanced, self.instances)
            if task.started_by == goal.deployment_id:
                tasks.append(task)
                if task.last_status == "STOPPED":
                    self._stopped[task.arn] = item
            elif task.last_status == "STOPPED":
                self._foreign.add(task.arn)
            else:
                stopping.append(task)
        return tuple(tasks), tuple(stopping)

    def _read_targets(self, goal: Goal) -> tuple[TargetState, ...]:
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
        self.seen = replace(self.seen, targets_at=self.clock())
        return tuple(targets)

    def _read_service_deployment(self, arn: str | None) -> ServiceDeploymentState | None:
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
