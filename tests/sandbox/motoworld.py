"""Everything that touches moto's internals lives here, so a moto upgrade is one file's work.

moto (pinned in pyproject.toml) speaks the real AWS wire protocol but simulates little: services start no
tasks, ``update_service`` edits ``deployments[0]`` in place, every target reads ``healthy``. This module

* runs moto's WSGI app on a loopback port behind a middleware that counts calls, injects AWS errors and
  serialises requests against the simulator with one lock;
* patches a few backend methods so the simulator hears about new deployments, ``list_tasks`` honours
  ``serviceName``/``desiredStatus``, ``stop_task`` really stops, target health comes from real checks, and a
  certificate requested from ACM is issued by the sandbox CA;
* offers the simulator plain views of moto's objects and narrow setters, so ``simulator.py`` never imports
  moto.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.client import responses
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import parse_qs, unquote
from wsgiref.types import StartResponse, WSGIEnvironment
from xml.sax.saxutils import escape

from moto.acm import models as acm_models
from moto.acm import responses as acm_responses
from moto.acm.exceptions import AWSValidationException
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2 import models as ec2_models
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import ECSException, InvalidParameterException
from moto.elbv2 import exceptions as elbv2_exceptions
from moto.elbv2 import models as elbv2_models
from moto.iam import models as iam_models
from moto.logs import models as logs_models
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3 import models as s3_models
from moto.secretsmanager import models as sm_models
from moto.ssm import models as ssm_models
from werkzeug.serving import ThreadedWSGIServer

from . import bluegreen, capacity, service_deployments, taskdefs
from .ledger import EXPIRED_TOKEN, THROTTLING, AwsError, Ledger
from .loopback import CuttableServer, Restartable

if TYPE_CHECKING:
    from moto.ecs.models import EC2ContainerServiceBackend, Service

    from .service_deployments import History
    from .tls import SandboxCA

ACCOUNT_ID = "123456789012"


# --------------------------------------------------------------------------------------------
# Plain views handed to the simulator
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceKey:
    account: str
    region: str
    cluster: str
    name: str


@dataclass(frozen=True)
class ServiceView:
    key: ServiceKey
    arn: str
    cluster_arn: str
    desired_count: int
    task_definition_arn: str
    load_balancers: list[dict[str, Any]]
    circuit_breaker: dict[str, bool]
    grace_period: int
    launch_type: str
    network_configuration: dict[str, Any]
    status: str
    minimum_healthy_percent: int = 100
    maximum_percent: int = 200
    # Set instead of launch_type ("" then) when the service runs on capacity providers (see capacity.py).
    capacity_provider_strategy: tuple[dict[str, Any], ...] = ()
    # deploymentConfiguration as stored (strategy, bake times, lifecycle hooks; see bluegreen.py)
    deployment_configuration: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskDefView:
    arn: str
    family: str
    revision: int
    container_definitions: list[dict[str, Any]]
    network_mode: str = "awsvpc"
    cpu: str | None = None  # task-level size, as registered (a string in the API)
    memory: str | None = None
    roles: tuple[str, ...] = ()  # the execution and task role ARNs it names


@dataclass(frozen=True)
class ContainerInstanceView:
    arn: str
    ec2_instance_id: str
    private_ip: str | None
    availability_zone: str
    status: str
    cpu: int  # registered CPU units
    memory: int  # registered MiB
    reserved_ports: frozenset[int]  # registered PORTS: taken by the instance itself (ssh, docker, agent)

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class TargetGroupView:
    arn: str
    name: str
    port: int
    health_check_path: str
    health_check_port: str
    interval: float
    timeout: float
    healthy_threshold: int
    unhealthy_threshold: int
    matcher: str
    deregistration_delay: float
    target_type: str = "ip"


@dataclass(frozen=True)
class CertificateView:
    """An ACM certificate as PEM text: what an ALB presents for a listener."""

    arn: str
    certificate: str
    private_key: str
    chain: str


@dataclass(frozen=True)
class RuleView:
    """A listener rule as DescribeRules states it: ``priority`` None for the default rule."""

    priority: int | None
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]


@dataclass(frozen=True)
class ListenerView:
    arn: str
    load_balancer_arn: str
    dns_name: str
    port: int
    target_group_arns: list[str]
    protocol: str = "HTTP"
    rules: list[RuleView] = field(default_factory=list)  # by priority, the default rule last
    certificates: list[CertificateView] = field(default_factory=list)  # the default one first


@dataclass(frozen=True)
class TargetHealth:
    ip: str
    port: int
    state: str
    reason: str | None
    description: str | None


@dataclass(frozen=True)
class RunRequest:
    """A RunTask call, checked: what the simulator needs to start its tasks."""

    key: ServiceKey  # the cluster's (name empty: no service)
    cluster_arn: str
    task_definition_arn: str
    count: int
    started_by: str | None
    group: str
    launch_type: str
    capacity_provider: str | None
    overrides: dict[str, Any]
    tags: list[dict[str, str]]
    network_configuration: dict[str, Any] = field(default_factory=dict)


class SimHooks(Protocol):
    """What the simulator must answer, called from request threads with the world lock held."""

    def on_deployment(self, key: ServiceKey, task_definition_arn: str, *, created: bool) -> str: ...

    def on_desired_count(self, key: ServiceKey) -> None: ...

    def on_stop_task(self, task_arn: str, reason: str) -> bool: ...

    def on_run_task(self, request: RunRequest) -> list[SimTask]: ...

    def target_health(self, target_group_arn: str) -> list[TargetHealth] | None: ...

    def on_load_balancer(self, dns_name: str) -> None: ...

    @property
    def history(self) -> History: ...

    def stop_service_deployment(self, arn: str, stop_type: str) -> str: ...

    def continue_service_deployment(self, arn: str, hook_id: str, action: str) -> str: ...


# --------------------------------------------------------------------------------------------
# Task objects moto serialises: plain attributes, no state machine of moto's own
# --------------------------------------------------------------------------------------------
class SimContainer:
    """Serialised by moto as an ECS ``Container`` (attribute names are the snake_case members)."""

    def __init__(self, task_arn: str, name: str, image: str, essential: bool) -> None:
        self.container_arn = f"{task_arn.replace(':task/', ':container/')}/{uuid.uuid4()}"
        self.task_arn = task_arn
        self.name = name
        self.image = image
        self.image_digest: str | None = None
        self.runtime_id: str | None = None
        self.last_status = "PENDING"
        self.exit_code: int | None = None
        self.reason: str | None = None
        self.health_status = "UNKNOWN"
        self.network_bindings: list[dict[str, Any]] = []
        self.network_interfaces: list[dict[str, Any]] = []
        self.essential = essential


class SimTask:
    """Serialised by moto as an ECS ``Task``; stored in the backend beside moto's own tasks."""

    def __init__(
        self,
        *,
        key: ServiceKey,
        cluster_arn: str,
        task_definition_arn: str,
        started_by: str | None,
        containers: list[tuple[str, str, bool]],
        group: str,
        launch_type: str,
        network_mode: str = "awsvpc",
        capacity_provider: str | None = None,
        network_configuration: Mapping[str, Any] | None = None,
    ) -> None:
        """``key`` names the cluster (and, for a service's task, the service); ``group`` is "service:NAME" for
        a service's task, "family:NAME" (or the caller's) for one RunTask started; ``network_configuration`` is
        the service's or the RunTask call's (awsvpc: the subnets its ENI may go in)."""
        self.id = uuid.uuid4().hex
        self.cluster_name = key.cluster
        self.cluster_arn = cluster_arn
        self.task_arn = f"arn:aws:ecs:{key.region}:{key.account}:task/{key.cluster}/{self.id}"
        self.task_definition_arn = task_definition_arn
        self.started_by = started_by
        self.group = group
        # A task placed through a capacity provider runs on its kind of capacity and names it.
        self.capacity_provider_name = capacity_provider
        self.launch_type = launch_type
        if capacity_provider:
            self.launch_type = "FARGATE" if capacity.is_fargate(capacity_provider) else "EC2"
        self.desired_status = "RUNNING"
        self.last_status = "PROVISIONING"
        self.health_status = "UNKNOWN"
        self.stopped_reason: str | None = None
        self.stop_code: str | None = None
        self.created_at = utcnow()
        self.started_at: datetime | None = None
        self.stopping_at: datetime | None = None
        self.stopped_at: datetime | None = None
        self.container_instance_arn: str | None = None
        self.platform_version = "1.4.0" if self.launch_type == "FARGATE" else None
        self.tags: list[dict[str, str]] = []
        self.overrides: dict[str, Any] = {}
        self.connectivity = "CONNECTED"
        # Tasks share the host's loopback: the task's address is 127.0.0.1, its own port tells tasks apart.
        details = [{"name": "privateIPv4Address", "value": "127.0.0.1"}]
        subnets = ((network_configuration or {}).get("awsvpcConfiguration") or {}).get("subnets") or []
        if subnets:
            # The ENI is in one of the subnets the service or RunTask call gave; ECS spreads tasks over them, and
            # the task's id stands in for that choice.
            details.insert(0, {"name": "subnetId", "value": str(subnets[int(self.id, 16) % len(subnets)])})
        # Only awsvpc tasks get an ENI; bridge and host tasks use their container instance's network.
        self.attachments = [
            {"id": str(uuid.uuid4()), "type": "ElasticNetworkInterface", "status": "ATTACHED", "details": details}
        ]
        if network_mode != "awsvpc":
            self.attachments = []
        self.containers = [SimContainer(self.task_arn, n, img, ess) for n, img, ess in containers]

    def advance(self) -> None:
        """moto's describe_tasks advances its state machine; the simulator drives ours instead."""


def _stamp() -> datetime:
    return utcnow()


# --------------------------------------------------------------------------------------------
# The world: backends, patches, views, setters
# --------------------------------------------------------------------------------------------
class MotoWorld:
    """Access to moto's backends for one account, guarded by ``lock``; ``ca`` issues the certificates ACM is
    asked for (without it, moto's own unverifiable ones)."""

    def __init__(self, ledger: Ledger, ca: SandboxCA | None = None) -> None:
        self.lock = threading.RLock()
        self.ledger = ledger
        self.ca = ca
        self.hooks: SimHooks | None = None

    # backends -----------------------------------------------------------------------------
    def _ecs(self, region: str) -> EC2ContainerServiceBackend:
        return ecs_models.ecs_backends[ACCOUNT_ID][region]

    def _elbv2(self, region: str) -> Any:
        return elbv2_models.elbv2_backends[ACCOUNT_ID][region]

    def _logs(self, region: str) -> Any:
        return logs_models.logs_backends[ACCOUNT_ID][region]

    def _service(self, key: ServiceKey) -> Service:
        return self._ecs(key.region).services[f"{key.cluster}:{key.name}"]

    # views --------------------------------------------------------------------------------
    def service_view(self, key: ServiceKey) -> ServiceView | None:
        try:
            svc = self._service(key)
        except KeyError:
            return None
        conf = getattr(svc, "deployment_configuration", None) or {}
        breaker = conf.get("deploymentCircuitBreaker") or {}
        return ServiceView(
            key=key,
            arn=svc.arn,
            cluster_arn=svc.cluster_arn,
            desired_count=int(svc.desired_count or 0),
            task_definition_arn=str(svc.task_definition),
            load_balancers=list(svc.load_balancers or []),
            circuit_breaker={
                "enable": bool(breaker.get("enable")),
                "rollback": bool(breaker.get("rollback")),
            },
            grace_period=int(getattr(svc, "health_check_grace_period_seconds", None) or 0),
            launch_type=str(svc.launch_type or ("" if _strategy_of(svc) else "FARGATE")),
            network_configuration=dict(getattr(svc, "network_configuration", None) or {}),
            status=str(svc.status),
            minimum_healthy_percent=int(conf.get("minimumHealthyPercent", 100)),
            maximum_percent=int(conf.get("maximumPercent", 200)),
            capacity_provider_strategy=tuple(dict(p) for p in _strategy_of(svc)),
            deployment_configuration=json.loads(json.dumps(conf, default=str)),
        )

    def task_definition(self, region: str, ref: str) -> TaskDefView:
        td = self._ecs(region).describe_task_definition(ref)
        return TaskDefView(
            arn=td.arn,
            family=td.family,
            revision=int(td.revision),
            container_definitions=json.loads(json.dumps(td.container_definitions)),
            network_mode=str(getattr(td, "network_mode", None) or "bridge"),  # ECS's default mode is bridge
            cpu=str(td.cpu) if getattr(td, "cpu", None) else None,
            memory=str(td.memory) if getattr(td, "memory", None) else None,
            roles=tuple(
                str(arn) for arn in (getattr(td, "execution_role_arn", None), getattr(td, "task_role_arn", None)) if arn
            ),
        )

    def provider_instances(self, region: str, provider: str) -> set[str]:
        """EC2 instance ids an Auto Scaling group capacity provider places tasks on."""
        return capacity.group_instances(self._ecs(region), provider)

    def container_instances(self, region: str, cluster: str) -> list[ContainerInstanceView]:
        out = []
        ec2 = ec2_models.ec2_backends[ACCOUNT_ID][region]
        for ci in self._ecs(region).container_instances.get(cluster, {}).values():
            registered = {r["name"]: r for r in ci.registered_resources}
            try:
                private_ip = ec2.get_instance(ci.ec2_instance_id).private_ip
            except Exception:  # the EC2 instance was terminated; the container instance lingers
                private_ip = None
            out.append(
                ContainerInstanceView(
                    arn=ci.container_instance_arn,
                    ec2_instance_id=ci.ec2_instance_id,
                    private_ip=private_ip,
                    availability_zone=str(ci.attributes.get("ecs.availability-zone") or ""),
                    status=str(ci.status),
                    cpu=int(registered.get("CPU", {}).get("integerValue", 0)),
                    memory=int(registered.get("MEMORY", {}).get("integerValue", 0)),
                    reserved_ports=frozenset(
                        int(p) for p in registered.get("PORTS", {}).get("stringSetValue", []) or []
                    ),
                )
            )
        return out

    def target_group(self, region: str, arn: str) -> TargetGroupView | None:
        tg = self._elbv2(region).target_groups.get(arn)
        if tg is None:
            return None
        matcher = (tg.matcher or {}).get("HttpCode", "200") if getattr(tg, "matcher", None) else "200"
        return TargetGroupView(
            arn=tg.arn,
            name=tg.name,
            port=int(tg.port or 80),
            health_check_path=str(tg.health_check_path or "/"),
            health_check_port=str(tg.health_check_port or "traffic-port"),
            interval=float(tg.health_check_interval_seconds),
            timeout=float(tg.health_check_timeout_seconds),
            healthy_threshold=int(tg.healthy_threshold_count),
            unhealthy_threshold=int(tg.unhealthy_threshold_count),
            matcher=str(matcher),
            deregistration_delay=float(tg.attributes.get("deregistration_delay.timeout_seconds", 300)),
            target_type=str(getattr(tg, "target_type", None) or "instance"),  # ELBv2's default type
        )

    def listeners(self, region: str) -> list[ListenerView]:
        out: list[ListenerView] = []
        for lb in self._elbv2(region).load_balancers.values():
            for listener in lb.listeners.values():
                rules = []
                for rule in listener.rules.values():
                    default = rule.is_default or rule.priority == "default"
                    rules.append(
                        RuleView(
                            priority=None if default else int(rule.priority),
                            conditions=[dict(c) for c in rule.conditions or []],
                            actions=[dict(a.data) for a in rule.actions],
                        )
                    )
                rules.sort(key=lambda r: (r.priority is None, r.priority or 0))
                arns: list[str] = []
                for rule in rules:
                    for data in rule.actions:
                        arns += _forwarded_to(data)
                out.append(
                    ListenerView(
                        arn=listener.arn,
                        load_balancer_arn=lb.arn,
                        dns_name=lb.dns_name,
                        port=int(listener.port),
                        target_group_arns=list(dict.fromkeys(arns)),
                        protocol=str(listener.protocol or "HTTP"),
                        rules=rules,
                        certificates=self._certificates(region, list(listener.certificates or [])),
                    )
                )
        return out

    def _certificates(self, region: str, arns: list[str]) -> list[CertificateView]:
        """The listener's ACM certificates that carry a private key (an ALB can serve no other)."""
        backend = acm_models.acm_backends[ACCOUNT_ID][region]
        out = []
        for arn in dict.fromkeys(arns):
            try:
                bundle = backend.get_certificate(arn)
            except acm_models.CertificateNotFound:
                continue
            if not bundle.key:
                continue

            def text(b: bytes | str | None) -> str:
                return (b.decode() if isinstance(b, bytes) else b) or ""

            out.append(CertificateView(arn, text(bundle.cert), text(bundle.key), text(bundle.chain)))
        return out

    def _rule(self, region: str, arn: str) -> Any:
        for lb in self._elbv2(region).load_balancers.values():
            for listener in lb.listeners.values():
                for rule in listener.rules.values():
                    if rule.arn == arn:
                        return rule
        return None

    def rule_actions(self, region: str, arn: str) -> list[dict[str, Any]] | None:
        """A listener rule's actions as DescribeRules states them; None when no such rule."""
        rule = self._rule(region, arn)
        return None if rule is None else [json.loads(json.dumps(a.data)) for a in rule.actions]

    def set_rule_actions(self, region: str, arn: str, actions: list[dict[str, Any]]) -> None:
        """What ModifyRule with these actions does (ECS shifting traffic between target groups)."""
        rule = self._rule(region, arn)
        if rule is not None:
            rule.actions = [elbv2_models.FakeAction(json.loads(json.dumps(a))) for a in actions]

    def regions(self) -> list[str]:
        return [r for r in ecs_models.ecs_backends[ACCOUNT_ID]]

    # setters ------------------------------------------------------------------------------
    def write_service(
        self,
        key: ServiceKey,
        *,
        deployments: list[dict[str, Any]],
        running: int,
        pending: int,
        task_definition_arn: str | None = None,
        current_deployment: str | None = None,
        current_revisions: list[dict[str, Any]] | None = None,
    ) -> None:
        svc = self._service(key)
        svc.deployments = deployments
        svc.running_count = running
        svc.pending_count = pending
        if task_definition_arn is not None:
            svc.task_definition = task_definition_arn
        # moto's Service has neither; its serialiser reads any attribute named after a member of the shape.
        svc.current_service_deployment = current_deployment
        svc.current_service_revisions = current_revisions or []

    def add_event(self, key: ServiceKey, message: str) -> None:
        svc = self._service(key)
        # describe-services lists events newest first and keeps the last 100.
        svc.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": _stamp(), "message": message})
        del svc.events[100:]

    def set_instance_usage(
        self, region: str, cluster: str, arn: str, *, cpu: int, memory: int, ports: Iterable[int], tasks: int
    ) -> None:
        """remainingResources = registered minus what placed tasks reserve; PORTS lists ports in use."""
        ci = self._ecs(region).container_instances.get(cluster, {}).get(arn.rsplit("/", 1)[-1])
        if ci is None:
            return
        registered = {r["name"]: r for r in ci.registered_resources}
        for r in ci.remaining_resources:
            if r["name"] == "CPU":
                r["integerValue"] = int(registered["CPU"]["integerValue"]) - cpu
            elif r["name"] == "MEMORY":
                r["integerValue"] = int(registered["MEMORY"]["integerValue"]) - memory
            elif r["name"] == "PORTS":
                base = set(registered["PORTS"].get("stringSetValue") or [])
                r["stringSetValue"] = sorted(base | {str(p) for p in ports}, key=int)
        ci.running_tasks_count = tasks

    def put_task(self, region: str, task: SimTask) -> None:
        self._ecs(region).tasks.setdefault(task.cluster_name, {})[task.task_arn] = task

    def secret_value(self, region: str, value_from: str) -> str:
        """What ECS injects for a container's `secrets[].valueFrom` (or a log option's `secretOptions`): an SSM
        parameter by name or ARN, or a Secrets Manager secret by ARN with an optional
        ``:json-key:version-stage:version-id``. Raises SecretUnavailable with the error ECS stops the task with."""
        parts = value_from.split(":")
        if value_from.startswith("arn:") and len(parts) >= 7 and parts[2] == "secretsmanager":
            backend = sm_models.secretsmanager_backends[ACCOUNT_ID][parts[3] or region]
            arn, extra = ":".join(parts[:7]), parts[7:]
            key, stage, version = extra if len(extra) == 3 else ("", "", "")
            if extra and len(extra) != 3:
                raise SecretUnavailable(f"invalid secret ARN {value_from}: expected json-key:version-stage:version-id")
            try:
                found = backend.get_secret_value(arn, version or None, stage or None)
            except Exception as exc:  # moto's ResourceNotFound and friends
                raise SecretUnavailable(
                    f"unable to retrieve secret from asm: failed to fetch secret {arn} from secrets manager: "
                    f"ResourceNotFoundException: {getattr(exc, 'message', exc)}"
                ) from None
            text = str(found.get("SecretString") or "")
            if not key:
                return text
            try:
                return str(json.loads(text)[key])
            except (ValueError, KeyError, TypeError):
                raise SecretUnavailable(
                    f"unable to retrieve secret from asm: retrieved secret from Secrets Manager did not contain json "
                    f"key {key}"
                ) from None
        name, where = value_from, region
        if value_from.startswith("arn:") and len(parts) >= 6 and parts[2] == "ssm":
            path = value_from.split(":", 5)[5].removeprefix("parameter")
            name, where = (path if path.count("/") > 1 else path.removeprefix("/")), parts[3] or region
        parameter = ssm_models.ssm_backends[ACCOUNT_ID][where].get_parameter(name)
        if parameter is None:
            raise SecretUnavailable(
                f"unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid ssm "
                f"parameters: {name}"
            )
        return str(parameter.decrypt(parameter.value) or "")  # ECS reads SecureStrings decrypted

    def env_file(self, arn: str) -> dict[str, str]:
        """The variables of a container's `environmentFiles` entry (an S3 object ARN) as ECS reads them, like a
        docker env file: VARIABLE=VALUE lines, `#` comments and blank lines skipped, no quote or escape handling.
        Raises SecretUnavailable with the error ECS stops the task with."""
        bucket, _, key = arn.removeprefix("arn:aws:s3:::").partition("/")
        try:
            found = s3_models.s3_backends[ACCOUNT_ID]["global"].get_object(bucket, key)
        except Exception:  # moto's MissingBucket
            found = None
        if found is None:
            raise SecretUnavailable(
                "failed to download env files: file download command: non empty error stream: service call has "
                "been retried 5 time(s): NoSuchKey: The specified key does not exist."
            )
        out: dict[str, str] = {}
        for line in found.value.decode("utf-8", "replace").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                name, _, value = line.partition("=")
                out[name.strip()] = value
        return out

    def role_assumable(self, arn: str) -> bool:
        """Can ECS take on this role for a task: it exists and its trust policy lets the ecs-tasks.amazonaws.com
        service principal call sts:AssumeRole (IAM returns the policy URL-encoded)."""
        try:
            role = iam_models.iam_backends[ACCOUNT_ID]["global"].get_role_by_arn(arn)
        except Exception:  # moto's IAMNotFoundException
            return False
        try:
            policy = json.loads(unquote(str(role.assume_role_policy_document or "")))
        except ValueError:
            return False
        statements = policy.get("Statement") if isinstance(policy, dict) else None
        for st in statements if isinstance(statements, list) else [statements]:
            if not isinstance(st, dict) or st.get("Effect") != "Allow":
                continue
            principal = st.get("Principal")
            services = principal.get("Service") if isinstance(principal, dict) else None
            services = [services] if isinstance(services, str) else services or []
            actions = st.get("Action")
            actions = [actions] if isinstance(actions, str) else actions or []
            if "ecs-tasks.amazonaws.com" in services and {"sts:AssumeRole", "sts:*", "*"} & set(actions):
                return True
        return False

    def log_group_exists(self, region: str, group: str) -> bool:
        return group in self._logs(region).groups

    def ensure_log_stream(self, region: str, group: str, stream: str, create_group: bool) -> bool:
        logs = self._logs(region)
        if group not in logs.groups:
            if not create_group:
                return False
            logs.create_log_group(group, {})
        if stream not in logs.groups[group].streams:
            logs.create_log_stream(group, stream)
        return True

    def put_log_lines(self, region: str, group: str, stream: str, lines: Iterable[tuple[int, str]]) -> None:
        events = [{"timestamp": ts, "message": msg} for ts, msg in lines]
        if events:
            self._logs(region).put_log_events(group, stream, events)

    # between tests ---------------------------------------------------------------------------
    def forget(self, keep: set[tuple[str, str]], keep_target_groups: set[str]) -> list[tuple[str, str]]:
        """Drop finished tests' worlds from moto's backends: every cluster but ``keep`` ((region, cluster) pairs)
        with its services, tasks and container instances, and every load balancer whose listeners route to no
        target group a kept service or ``keep_target_groups`` names, with the target groups left unattached.
        Returns the (region, cluster) pairs dropped.

        Not an API call (a user's DeleteCluster leaves the cluster INACTIVE, still described): the sandbox
        forgets, so that a region-wide read (ListClusters and the services of each, as `ecs-ship prune` makes)
        and the simulator's per-tick read of every listener cost what they would in one test's account, not
        what hundreds of earlier tests' worlds add up to.
        """
        dropped: list[tuple[str, str]] = []
        for region in self.regions():
            ecs = self._ecs(region)
            kept_groups = set(keep_target_groups)
            for name in list(ecs.clusters):
                if (region, name) in keep:
                    kept_groups |= {
                        str(lb["targetGroupArn"])
                        for key, svc in ecs.services.items()
                        if key.split(":", 1)[0] == name
                        for lb in svc.load_balancers or []
                        if lb.get("targetGroupArn")
                    }
                    continue
                for key in [k for k in ecs.services if k.split(":", 1)[0] == name]:
                    del ecs.services[key]
                ecs.tasks.pop(name, None)
                ecs.container_instances.pop(name, None)
                del ecs.clusters[name]
                dropped.append((region, name))
            elbv2 = self._elbv2(region)
            for arn, lb in list(elbv2.load_balancers.items()):
                if not kept_groups & set(self._routed_groups(lb)):
                    del elbv2.load_balancers[arn]
            attached = {g for lb in elbv2.load_balancers.values() for g in self._routed_groups(lb)}
            for arn in list(elbv2.target_groups):
                if arn not in attached and arn not in kept_groups:
                    del elbv2.target_groups[arn]
        return dropped

    @staticmethod
    def _routed_groups(lb: Any) -> list[str]:
        return [
            arn
            for listener in lb.listeners.values()
            for rule in listener.rules.values()
            for action in rule.actions
            for arn in _forwarded_to(action.data)
        ]

    # server -------------------------------------------------------------------------------
    def install(self, hooks: SimHooks) -> None:
        """Route moto's service/task/target calls through the simulator (one world per process)."""
        _install_patches(self)
        self.hooks = hooks

    def uninstall(self) -> None:
        global _current
        self.hooks = None
        if _current is self:
            _current = None


def _forwarded_to(action: dict[str, Any]) -> list[str]:
    """The target groups a listener rule's action forwards to (TargetGroupArn, or a ForwardConfig's groups)."""
    arns = [str(action["TargetGroupArn"])] if action.get("TargetGroupArn") else []
    return arns + [str(tg["TargetGroupArn"]) for tg in (action.get("ForwardConfig") or {}).get("TargetGroups", [])]


class SecretUnavailable(Exception):
    """A task's secret ECS could not read: the task stops before its containers start."""


# --------------------------------------------------------------------------------------------
# Patches (applied once per process; they consult the current world)
# --------------------------------------------------------------------------------------------
_current: MotoWorld | None = None
_patched = False
# CreateService's launch type and strategy as resolved by its response handler, and its checked
# deploymentConfiguration, for the backend call it makes on the same thread (moto's handler passes neither on).
_creating = threading.local()
# RequestCertificate's KeyAlgorithm, likewise (moto's handler drops it).
_requesting = threading.local()
# RequestCertificate's KeyAlgorithm: "Algorithms supported for an ACM certificate request include: RSA_2048,
# EC_prime256v1, EC_secp384r1. Other listed algorithms are for imported certificates only." Default RSA_2048.
REQUESTABLE_KEYS = ("RSA_2048", "EC_prime256v1", "EC_secp384r1")


def _strategy_of(service: Any) -> list[dict[str, Any]]:
    return list(getattr(service, "capacity_provider_strategy", None) or [])


def _hooks() -> SimHooks | None:
    return _current.hooks if _current is not None else None


def _key(backend: Any, cluster: str, name: str) -> ServiceKey:
    cluster_name = cluster.split("/")[-1]
    return ServiceKey(backend.account_id, backend.region_name, cluster_name, name.split("/")[-1])


def _install_patches(world: MotoWorld) -> None:
    global _current, _patched
    # moto's backends are process-wide: two simulators in one process would fight over one world.
    if _current is not None and _current is not world and _current.hooks is not None:
        raise RuntimeError("a sandbox is already running in this process; run another one in its own process")
    _current = world
    if _patched:
        return
    _patched = True

    ecs_backend_cls = ecs_models.EC2ContainerServiceBackend
    orig_create = ecs_backend_cls.create_service
    orig_update = ecs_backend_cls.update_service
    orig_list_tasks = ecs_backend_cls.list_tasks
    orig_stop_task = ecs_backend_cls.stop_task

    def create_service(self: Any, cluster_str: str, service_name: str, *args: Any, **kwargs: Any) -> Any:
        service = orig_create(self, cluster_str, service_name, *args, **kwargs)
        resolved = getattr(_creating, "resolved", None)
        if resolved is not None:
            service.launch_type, service.capacity_provider_strategy = resolved
        # The first deployment follows the strategy the service is created with.
        service.deployment_configuration = getattr(_creating, "configuration", None) or {}
        hooks = _hooks()
        if hooks is not None and service.task_definition:
            hooks.on_deployment(_key(self, cluster_str, service_name), service.task_definition, created=True)
        return service

    def update_service(self: Any, props: dict[str, Any]) -> Any:
        cluster = props.get("cluster", "default")
        name = str(props.get("service", "")).split("/")[-1]
        before = self._get_service(cluster, name)
        old_deployments = [dict(d) for d in before.deployments]
        old_td = before.task_definition
        old_desired = before.desired_count
        forced = bool(props.get("force_new_deployment"))
        requested_td = props.get("task_definition")
        if requested_td and self.describe_task_definition(requested_td).arn != old_td:
            taskdefs.require_active(self, requested_td)
        if props.get("deployment_configuration") is not None or props.get("load_balancers") is not None:
            # Checked before anything changes, against what the service keeps of what the call leaves out.
            props["deployment_configuration"] = _deployment_configuration(
                self.region_name,
                props.get("deployment_configuration") or before.deployment_configuration,
                list(props.get("load_balancers") or before.load_balancers or []),
            )
        strategy = props.pop("capacity_provider_strategy", None)
        if strategy is not None:
            # Checked before anything changes; used by the next deployment, starting none by itself.
            strategy = capacity.validate(self, self._get_cluster(cluster), strategy) if strategy else []
        service = orig_update(self, props)
        if strategy:
            service.launch_type, service.capacity_provider_strategy = None, strategy
        elif strategy is not None and _strategy_of(service):
            fargate = all(capacity.is_fargate(p["capacityProvider"]) for p in _strategy_of(service))
            service.launch_type, service.capacity_provider_strategy = ("FARGATE" if fargate else "EC2"), []
        hooks = _hooks()
        if hooks is None:
            return service
        # moto rewrote deployments[0] and counts; the simulator owns them.
        service.deployments = old_deployments
        key = _key(self, cluster, name)
        new_td = old_td
        if requested_td:
            new_td = self.describe_task_definition(requested_td).arn
        service.task_definition = new_td
        if forced or new_td != old_td:
            hooks.on_deployment(key, new_td, created=False)
        elif service.desired_count != old_desired:
            hooks.on_desired_count(key)
        return service

    def list_tasks(self: Any, *args: Any, **kwargs: Any) -> list[Any]:
        names = ["cluster_str", "container_instance", "family", "started_by", "service_name", "desiredStatus"]
        params = dict(zip(names, args, strict=False))
        params.update(kwargs)
        service_name = params.get("service_name")
        desired = params.get("desiredStatus") or "RUNNING"  # ECS lists RUNNING unless asked
        params["desiredStatus"] = None
        tasks = orig_list_tasks(self, **params)
        if service_name:
            group = f"service:{str(service_name).split('/')[-1]}"
            tasks = [t for t in tasks if getattr(t, "group", None) == group]
        return [t for t in tasks if t.desired_status == desired]

    def stop_task(self: Any, cluster_str: str, task_str: str, reason: str) -> Any:
        hooks = _hooks()
        for tasks in self.tasks.values():
            for arn, task in tasks.items():
                if isinstance(task, SimTask) and (arn == task_str or arn.endswith("/" + task_str)):
                    if hooks is not None:
                        hooks.on_stop_task(arn, reason or "Task stopped by user")
                    return task
        return orig_stop_task(self, cluster_str, task_str, reason)

    ecs_backend_cls.create_service = create_service  # type: ignore[method-assign]
    ecs_backend_cls.update_service = update_service  # type: ignore[method-assign]
    ecs_backend_cls.list_tasks = list_tasks  # type: ignore[method-assign]
    ecs_backend_cls.stop_task = stop_task  # type: ignore[method-assign]
    orig_run_task = ecs_backend_cls.run_task

    def run_task(
        self: Any,
        cluster_str: str,
        task_definition_str: str,
        count: int,
        overrides: dict[str, Any] | None,
        started_by: str,
        tags: list[dict[str, str]] | None,
        launch_type: str | None,
        networking_configuration: dict[str, Any] | None = None,
        group: str | None = None,
        platform_version: str | None = None,
        capacity_provider_strategy: list[dict[str, Any]] | None = None,
    ) -> Any:
        hooks = _hooks()
        if hooks is None:
            return orig_run_task(
                self,
                cluster_str,
                task_definition_str,
                count,
                overrides,
                started_by,
                tags,
                launch_type,
                networking_configuration,
                group,
                platform_version,
                capacity_provider_strategy,
            )
        # The API reference's checks, in moto's words where moto makes them.
        if launch_type and launch_type not in ("EC2", "FARGATE", "EXTERNAL"):
            raise InvalidParameterException("launch type should be one of [EC2,FARGATE,EXTERNAL]")
        if launch_type and capacity_provider_strategy:
            raise InvalidParameterException("Specify either Launch Type or Capacity Provider Strategy, but not both.")
        if not 1 <= int(count or 1) <= 10:
            raise InvalidParameterException("count must be between 1 and 10.")
        cluster = self._get_cluster(cluster_str)
        td = taskdefs.require_active(self, task_definition_str)
        if td.network_mode == "awsvpc" and not (networking_configuration or {}).get("awsvpcConfiguration"):
            raise InvalidParameterException(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified."
            )
        strategy = capacity_provider_strategy or (
            [] if launch_type else list(cluster.default_capacity_provider_strategy or [])
        )
        provider = str(strategy[0]["capacityProvider"]) if strategy else None
        resolved = launch_type or ("EC2" if provider and not capacity.is_fargate(provider) else "FARGATE")
        request = RunRequest(
            key=ServiceKey(self.account_id, self.region_name, cluster.name, ""),
            cluster_arn=cluster.arn,
            task_definition_arn=td.arn,
            count=int(count or 1),
            started_by=started_by,
            group=group or f"family:{td.family}",
            launch_type=resolved,
            capacity_provider=provider,
            overrides=dict(overrides or {}),
            tags=list(tags or []),
            network_configuration=dict(networking_configuration or {}),
        )
        try:
            return hooks.on_run_task(request)
        except service_deployments.ApiError as exc:
            raise InvalidParameterException(exc.message) from exc

    ecs_backend_cls.run_task = run_task  # type: ignore[method-assign]

    # create_service's response handler drops deploymentConfiguration and the grace period; keep them.
    resp_cls = ecs_responses.EC2ContainerServiceResponse
    orig_create_resp = resp_cls.create_service

    def create_service_response(self: Any) -> Any:
        conf = _deployment_configuration(
            self.region,
            self._get_param("deploymentConfiguration")
            or {
                "deploymentCircuitBreaker": {"enable": False, "rollback": False},
                "maximumPercent": 200,
                "minimumHealthyPercent": 100,
            },
            self._get_param("loadBalancers") or [],
        )
        grace = self._get_param("healthCheckGracePeriodSeconds")
        cluster = self._get_param("cluster", "default")
        if self._get_param("taskDefinition"):
            taskdefs.require_active(self.ecs_backend, self._get_param("taskDefinition"))
        name = self._get_param("serviceName")
        _creating.resolved = capacity.resolve(
            self.ecs_backend,
            self.ecs_backend._get_cluster(cluster),
            self._get_param("launchType"),
            self._get_param("capacityProviderStrategy"),
        )
        _creating.configuration = conf
        try:
            result = orig_create_resp(self)
        finally:
            _creating.resolved = _creating.configuration = None
        svc = self.ecs_backend._get_service(cluster, name)
        svc.deployment_configuration = conf
        svc.health_check_grace_period_seconds = grace or 0
        return result

    resp_cls.create_service = create_service_response  # type: ignore[method-assign]
    taskdefs.install(ecs_backend_cls, resp_cls)
    resp_cls.list_tasks = list_tasks_response  # type: ignore[method-assign]
    # moto has no service deployments; the simulator keeps them (service_deployments.py).
    resp_cls.list_service_deployments = list_service_deployments_response  # type: ignore[attr-defined]
    resp_cls.describe_service_deployments = describe_service_deployments_response  # type: ignore[attr-defined]
    resp_cls.describe_service_revisions = describe_service_revisions_response  # type: ignore[attr-defined]
    resp_cls.stop_service_deployment = stop_service_deployment_response  # type: ignore[attr-defined]
    resp_cls.continue_service_deployment = continue_service_deployment_response  # type: ignore[attr-defined]

    # moto gives every container instance the same fixed size; the agent (or a caller) states the real one
    # in totalResources, which ECS takes as the instance's registered and initially remaining resources.
    orig_register_ci = resp_cls.register_container_instance

    def register_container_instance_response(self: Any) -> Any:
        total = {r.get("name"): r for r in self._get_param("totalResources") or []}
        result = orig_register_ci(self)
        ci = result.result["containerInstance"]  # type: ignore[index]
        if total:
            for resources in (ci.registered_resources, ci.remaining_resources):
                for r in resources:
                    given = total.get(r["name"])
                    if given is not None:
                        for field_name in ("integerValue", "stringSetValue"):
                            if field_name in given:
                                r[field_name] = given[field_name]
        return result

    resp_cls.register_container_instance = register_container_instance_response  # type: ignore[method-assign]

    elb_cls = elbv2_models.ELBv2Backend
    orig_health = elb_cls.describe_target_health
    orig_create_lb = elb_cls.create_load_balancer

    def describe_target_health(self: Any, target_group_arn: str, targets: list[dict[str, Any]]) -> Any:
        hooks = _hooks()
        sim = hooks.target_health(target_group_arn) if hooks is not None else None
        if sim is None:
            return orig_health(self, target_group_arn, targets)
        tg = self.target_groups[target_group_arn]
        wanted = {(t["Id"], int(t.get("Port", tg.port))) for t in targets or []}
        out = []
        for h in sim:
            if wanted and (h.ip, h.port) not in wanted:
                continue
            out.append(
                elbv2_models.FakeHealthStatus(h.ip, str(h.port), tg.health_check_port, h.state, h.reason, h.description)
            )
        return out

    def create_load_balancer(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        lb = orig_create_lb(self, name, *args, **kwargs)
        # The DNS name must resolve to the loopback proxy; *.localhost never leaves the machine.
        lb.dns_name = f"{name}-{uuid.uuid4().hex[:10]}.{self.region_name}.elb.localhost".lower()
        hooks = _hooks()
        if hooks is not None:
            hooks.on_load_balancer(lb.dns_name)
        return lb

    orig_create_listener = elb_cls.create_listener

    def create_listener(self: Any, load_balancer_arn: str, protocol: str, port: str, *args: Any, **kw: Any) -> Any:
        # CreateListener: "[HTTPS and TLS listeners] The default certificate for the listener. You must provide
        # exactly one certificate." moto accepts an HTTPS listener with none, which no ALB could serve.
        certificate = args[1] if len(args) > 1 else kw.get("certificate")
        if str(protocol).upper() == "HTTPS" and not certificate:
            raise elbv2_exceptions.ValidationError("A certificate must be specified for HTTPS listeners")
        return orig_create_listener(self, load_balancer_arn, protocol, port, *args, **kw)

    elb_cls.describe_target_health = describe_target_health  # type: ignore[method-assign]
    elb_cls.create_load_balancer = create_load_balancer  # type: ignore[method-assign]
    elb_cls.create_listener = create_listener  # type: ignore[method-assign]
    _patch_acm()


def _patch_acm() -> None:
    """A public certificate requested from ACM is issued by the sandbox CA, the stand-in for Amazon's public
    CAs, for exactly the names requested (DomainName first, then SubjectAlternativeNames; wildcards allowed),
    with the key algorithm asked for. ACM issues it once the domain is validated (a DNS record, an email);
    the sandbox validates at once, so it is ISSUED when RequestCertificate returns. moto's own certificate
    is signed by a key no client trusts and stays PENDING_VALIDATION for a minute. A private certificate
    (CertificateAuthorityArn) is left to moto: its CA is the user's, not the public ones this CA plays."""
    resp_cls = acm_responses.AWSCertificateManagerResponse
    orig_request = resp_cls.request_certificate
    orig_generate = acm_models.CertBundle.generate_cert

    def request_certificate_response(self: Any) -> Any:
        algorithm = self._get_param("KeyAlgorithm") or "RSA_2048"
        if algorithm not in REQUESTABLE_KEYS:
            raise AWSValidationException(
                f"Key algorithm {algorithm} is not supported for certificate requests; "
                f"use one of {', '.join(REQUESTABLE_KEYS)}."
            )
        _requesting.key_algorithm = algorithm
        try:
            return orig_request(self)
        finally:
            _requesting.key_algorithm = None

    def generate_cert(
        cls: type[acm_models.CertBundle],
        domain_name: str,
        account_id: str,
        region: str,
        sans: list[str] | None = None,
        cert_authority_arn: str | None = None,
    ) -> acm_models.CertBundle:
        ca = _current.ca if _current is not None else None
        if ca is None or cert_authority_arn is not None:
            return orig_generate(domain_name, account_id, region, sans, cert_authority_arn)
        issued = ca.issue(
            list(dict.fromkeys([domain_name, *(sans or [])])),
            getattr(_requesting, "key_algorithm", None) or "RSA_2048",
        )
        return cls(
            account_id=account_id,
            certificate=issued.certificate.encode(),
            private_key=issued.private_key.encode(),
            chain=issued.chain.encode(),
            region=region,
            cert_type="AMAZON_ISSUED",
            cert_status="ISSUED",
        )

    resp_cls.request_certificate = request_certificate_response  # type: ignore[method-assign]
    acm_models.CertBundle.generate_cert = classmethod(generate_cert)  # type: ignore[method-assign,assignment]


# ListTasks per the API reference: at most 100 ARNs a page (maxResults 1-100, default 100) with an opaque
# nextToken, and startedBy only on its own ("it must be the only filter that you use"). moto pages nothing and
# accepts any mix.
_LIST_TASKS_FILTERS = ("containerInstance", "family", "serviceName", "desiredStatus", "launchType")


def list_tasks_response(self: Any) -> ActionResult:
    started_by = self._get_param("startedBy")
    others = [name for name in _LIST_TASKS_FILTERS if self._get_param(name)]
    if started_by and others:
        raise InvalidParameterException(
            f"startedBy must be the only filter when it is specified; also given: {', '.join(others)}."
        )
    max_results = self._get_param("maxResults")
    size = 100 if max_results is None else int(max_results)
    if not 1 <= size <= 100:
        raise InvalidParameterException("maxResults must be between 1 and 100.")
    tasks = self.ecs_backend.list_tasks(
        self._get_param("cluster", "default"),
        self._get_param("containerInstance"),
        self._get_param("family"),
        started_by,
        self._get_param("serviceName"),
        self._get_param("desiredStatus"),
    )
    launch_type = self._get_param("launchType")
    if launch_type:
        tasks = [t for t in tasks if getattr(t, "launch_type", None) == launch_type]
    arns = sorted(t.task_arn for t in tasks)
    chunk, token = _ecs_call(
        lambda: service_deployments.page(
            arns,
            self._get_param("nextToken"),
            size,
            # The ARN served last may have gone since: go on from where it sorted.
            lambda after: next((i for i, arn in enumerate(arns) if arn > after), len(arns)),
        )
    )
    body: dict[str, Any] = {"taskArns": chunk}
    if token:
        body["nextToken"] = token
    return ActionResult(body)


_T = TypeVar("_T")


def _ecs_call(fn: Callable[[], _T]) -> _T:
    """Run `fn`, answering its ApiError as the ECS error of that name."""
    try:
        return fn()
    except service_deployments.ApiError as exc:
        raise ECSException(exc.code, exc.message) from None


def _simulator() -> SimHooks:
    hooks = _hooks()
    if hooks is None:
        raise ECSException("ServerException", "The sandbox's simulator is not running.")
    return hooks


def _history() -> History:
    return _simulator().history


def _timestamp(value: Any) -> datetime | None:
    """A request's timestamp as an aware time (moto parses it already; epoch seconds otherwise)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(float(value), tz=timezone.utc)


def list_service_deployments_response(self: Any) -> ActionResult:
    cluster = self._get_param("cluster", "default")
    service = self.ecs_backend._get_service(cluster, self._get_param("service"))  # ECS's not-found errors
    created = self._get_param("createdAt") or {}
    key = _key(self.ecs_backend, cluster, service.name)
    return ActionResult(
        _ecs_call(
            lambda: _history().list_deployments(
                key,
                statuses=self._get_param("status"),
                before=_timestamp(created.get("before")),
                after=_timestamp(created.get("after")),
                max_results=self._get_param("maxResults"),
                token=self._get_param("nextToken"),
            )
        )
    )


def describe_service_deployments_response(self: Any) -> ActionResult:
    arns = list(self._get_param("serviceDeploymentArns") or [])
    return ActionResult(_ecs_call(lambda: _history().describe(arns)))


def describe_service_revisions_response(self: Any) -> ActionResult:
    arns = list(self._get_param("serviceRevisionArns") or [])
    return ActionResult(_ecs_call(lambda: _history().describe_revisions(arns)))


def stop_service_deployment_response(self: Any) -> ActionResult:
    arn = str(self._get_param("serviceDeploymentArn") or "")
    stop_type = str(self._get_param("stopType") or "ROLLBACK")  # the API reference's default
    hooks = _simulator()
    return ActionResult({"serviceDeploymentArn": _ecs_call(lambda: hooks.stop_service_deployment(arn, stop_type))})


def continue_service_deployment_response(self: Any) -> ActionResult:
    arn = str(self._get_param("serviceDeploymentArn") or "")
    hook_id = str(self._get_param("hookId") or "")
    action = str(self._get_param("action") or "CONTINUE")  # the API reference's default
    hooks = _simulator()
    return ActionResult(
        {"serviceDeploymentArn": _ecs_call(lambda: hooks.continue_service_deployment(arn, hook_id, action))}
    )


def _deployment_configuration(
    region: str, conf: dict[str, Any], load_balancers: list[dict[str, Any]]
) -> dict[str, Any]:
    """A CreateService/UpdateService deploymentConfiguration as ECS checks and stores it (see bluegreen.py),
    with the load balancers' alternate target groups and listener rules checked to exist."""
    checked = _ecs_call(lambda: bluegreen.validate(dict(conf), list(load_balancers)))
    if checked["strategy"] == "ROLLING" or _current is None:
        return checked
    for lb in load_balancers:
        advanced = lb.get("advancedConfiguration") or {}
        if (
            advanced.get("alternateTargetGroupArn")
            and _current.target_group(region, advanced["alternateTargetGroupArn"]) is None
        ):
            raise InvalidParameterException(f"The target group {advanced['alternateTargetGroupArn']} does not exist.")
        for name in ("productionListenerRule", "testListenerRule"):
            if advanced.get(name) and _current.rule_actions(region, advanced[name]) is None:
                raise InvalidParameterException(f"The {name} {advanced[name]} does not exist.")
    return checked


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------
def _action_of(environ: WSGIEnvironment) -> tuple[str, str]:
    """Return (service, action) of an AWS request; reads and restores the body for query protocols."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = "unknown"
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            service = scope[3]
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.rsplit(".", 1)[-1]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    form = parse_qs(body.decode("utf-8", "replace")) if body else {}
    action = (form.get("Action") or query.get("Action") or [""])[0]
    if not action and service == "s3":
        return service, _s3_action(str(environ.get("REQUEST_METHOD", "GET")), environ.get("PATH_INFO", ""), query)
    return service, action or environ.get("PATH_INFO", "")


def _s3_action(method: str, path: str, query: Mapping[str, list[str]]) -> str:
    """S3's REST API names no action in the request: the operation is the method on a bucket or an object (as
    the S3 API reference and IAM name it), path-style as clients address a custom endpoint."""
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets"
    if method == "POST":
        return "DeleteObjects" if "delete" in query else "PostObject"
    on_object = {"HEAD": "HeadObject", "GET": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject"}
    on_bucket = {"HEAD": "HeadBucket", "GET": "ListObjects", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}
    found = (on_object if key else on_bucket).get(method, method)
    return "ListObjectsV2" if found == "ListObjects" and query.get("list-type") == ["2"] else found


def _region_of(environ: WSGIEnvironment) -> str:
    """The Region a request is signed for (its SigV4 credential scope): AWS throttles per account and Region."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in auth:
        return ""
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    return scope[2] if len(scope) >= 4 else ""


# Query-protocol services (ELBv2, IAM) name some errors differently from the JSON-protocol ones (ECS, Logs).
_QUERY_CODES = {THROTTLING: "Throttling", EXPIRED_TOKEN: "ExpiredToken"}


def _error_response(
    environ: WSGIEnvironment, service: str, error: AwsError, start_response: StartResponse
) -> list[bytes]:
    """Answer with `error` in the wire format botocore parses for the request's protocol."""
    request_id = str(uuid.uuid4())
    code, message = escape(error.code), escape(error.message)
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": error.code, "message": error.message}).encode()
        ctype = "application/x-amz-json-1.1"
    elif service == "ec2":
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        ).encode()
        ctype = "text/xml"
    else:
        kind = "Sender" if error.status < 500 else "Receiver"
        code = escape(_QUERY_CODES.get(error.code, error.code))
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        ctype = "text/xml"
    headers = [("Content-Type", ctype), ("Content-Length", str(len(body))), ("x-amzn-RequestId", request_id)]
    start_response(f"{error.status} {responses.get(error.status, 'Error')}", headers)
    return [body]


class _QuietHandler(MotoRequestHandler):
    """The ledger records every call; an access line per poll would drown the test output."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class _HttpServer(CuttableServer, ThreadedWSGIServer):
    pass


@dataclass
class MotoServer:
    """moto's server on 127.0.0.1, wrapped so every call is counted and serialised with the simulator.

    ``restart(seconds)`` takes the endpoint down and back on the same port; moto's backends live in this
    process, so the state survives, and the simulator (which edits them directly) keeps running throughout.
    """

    world: MotoWorld
    port: int = 0
    _listener: Restartable[_HttpServer] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        assert self._listener is not None
        return f"http://127.0.0.1:{self._listener.port}"

    def start(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        world = self.world

        def middleware(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            service, action = _action_of(environ)
            error = world.ledger.record_call(service, action, _region_of(environ))
            if error is not None:
                return _error_response(environ, service, error, start_response)
            with world.lock:
                # Materialise the body inside the lock: moto's response objects read live state.
                return list(app(environ, start_response))

        self._listener = Restartable(
            lambda port: _HttpServer("127.0.0.1", port, middleware, _QuietHandler), "moto-server", self.port
        )
        self._listener.up()

    def restart(self, down_seconds: float) -> None:
        """Refuse connections for `down_seconds` (open ones are cut), then serve again, same port and state."""
        assert self._listener is not None, "moto server not started"
        self._listener.outage(down_seconds)

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.down()
