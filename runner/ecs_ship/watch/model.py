"""The plain data a watch works on: what the ECS and ELBv2 APIs said at one poll, and what is wanted of it."""

from __future__ import annotations

from dataclasses import dataclass

TRAFFIC_SHIFTING = frozenset({"BLUE_GREEN", "LINEAR", "CANARY"})


@dataclass(frozen=True)
class DeploymentState:
    id: str
    status: str
    task_definition: str
    desired: int
    running: int
    pending: int
    failed: int
    rollout_state: str | None
    rollout_reason: str | None
    created_at: float | None = None


@dataclass(frozen=True)
class HookState:
    """A lifecycle hook of a service deployment (lifecycleHookDetails)."""

    hook_id: str
    target_type: str  # PAUSE | AWS_LAMBDA
    status: str  # AWAITING_ACTION | IN_PROGRESS | SUCCEEDED | FAILED | TIMED_OUT
    expires_at: float | None = None
    timeout_action: str | None = None  # ROLLBACK | CONTINUE, when it expires

    @property
    def awaiting(self) -> bool:
        return self.status == "AWAITING_ACTION"


@dataclass(frozen=True)
class ServiceDeploymentState:
    """ECS's own record of a deployment (DescribeServiceDeployments), where the API has it."""

    arn: str
    status: str  # PENDING | IN_PROGRESS | SUCCESSFUL | STOPPED | STOP_REQUESTED | ROLLBACK_*
    status_reason: str | None = None
    lifecycle_stage: str | None = None
    rollback_reason: str | None = None
    rollback_revision: str | None = None  # the service revision ECS rolls back to
    target_revision: str | None = None  # the service revision it deploys (its resolved image digests)
    breaker_failures: int | None = None
    breaker_threshold: int | None = None
    hooks: tuple[HookState, ...] = ()

    @property
    def paused_at(self) -> HookState | None:
        """The PAUSE hook this deployment waits at for ContinueServiceDeployment, if any."""
        return next((h for h in self.hooks if h.target_type == "PAUSE" and h.awaiting), None)

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def rolling_back(self) -> bool:
        return self.status.startswith("ROLLBACK_")


@dataclass(frozen=True)
class ContainerState:
    name: str
    last_status: str
    exit_code: int | None
    reason: str | None
    health_status: str = "UNKNOWN"  # HEALTHY | UNHEALTHY | UNKNOWN (also: no health check defined)
    image_digest: str | None = None  # what ECS resolved the container's image to, once it runs


@dataclass(frozen=True)
class TaskState:
    arn: str
    last_status: str
    desired_status: str
    started_by: str
    task_definition: str
    stopped_reason: str | None
    stop_code: str | None
    started_at: float | None
    ip: str | None
    ports: frozenset[int]
    containers: tuple[ContainerState, ...]
    # ECS's verdict from the essential containers' health checks: UNKNOWN while they are evaluated or when
    # none is defined.
    health_status: str = "UNKNOWN"
    # EC2 launch type: where the task runs and the host ports of its load-balanced containers, which is
    # what `instance` target groups register (EC2 instance id + host port, dynamic in bridge mode).
    container_instance: str | None = None
    instance_id: str | None = None
    host_ports: frozenset[int] = frozenset()

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def running(self) -> bool:
        """RUNNING and meant to stay so (not on its way out)."""
        return self.last_status == "RUNNING" and self.desired_status == "RUNNING"


@dataclass(frozen=True)
class TargetState:
    target_group: str
    id: str
    port: int
    state: str
    reason: str | None
    description: str | None

    @property
    def tg_name(self) -> str:
        parts = self.target_group.split("/")
        return parts[-2] if len(parts) >= 3 else self.target_group


@dataclass(frozen=True)
class Event:
    id: str
    at: float
    message: str


@dataclass(frozen=True)
class LoadBalancerBinding:
    target_group: str
    container: str
    container_port: int
    # Blue/green, linear and canary: the other target group of the pair (advancedConfiguration). A new task
    # registers in whichever of the two does not hold production, which swaps from one deployment to the next.
    alternate: str | None = None

    @property
    def groups(self) -> tuple[str, ...]:
        return (self.target_group, self.alternate) if self.alternate else (self.target_group,)


@dataclass(frozen=True)
class ContainerCheck:
    """A container health check of the task definition: what ECS runs in the container, and whether it
    decides the task's health (only essential containers do)."""

    container: str
    command: str
    essential: bool


@dataclass(frozen=True)
class Snapshot:
    at: float
    deployments: tuple[DeploymentState, ...]
    tasks: tuple[TaskState, ...]  # tasks started by the watched deployment, running or stopped
    targets: tuple[TargetState, ...]  # every target of every target group of the service
    events: tuple[Event, ...]  # newest first, as ECS returns them
    grace_period: int
    # Other deployments' tasks that ECS is stopping (desired STOPPED, not yet STOPPED): the CPU, memory and
    # host ports they hold come back when they stop.
    stopping: tuple[TaskState, ...] = ()
    # ECS's service deployment for the watched one, when the API has it and the goal names it.
    service_deployment: ServiceDeploymentState | None = None


@dataclass(frozen=True)
class Goal:
    deployment_id: str
    until: str  # serving | stable
    load_balancers: tuple[LoadBalancerBinding, ...]
    health_checks: tuple[ContainerCheck, ...] = ()
    # ECS's service deployment behind `deployment_id` (from UpdateService's currentServiceDeployment), where
    # the API has one; None: judged by the deployment alone.
    service_deployment_arn: str | None = None
    # Watching a rollback that ECS carries out within that service deployment (StopServiceDeployment, or the
    # circuit breaker): ROLLBACK_SUCCESSFUL is the goal, not a failure.
    ecs_rollback: bool = False
    # Container -> the digest its image is pinned to in the task definition (`repository@sha256:…`).
    digests: tuple[tuple[str, str], ...] = ()
    # The service's deploymentConfiguration.strategy: ROLLING, or BLUE_GREEN / LINEAR / CANARY, which start the
    # new tasks beside the old ones and then shift the production listener's traffic to them.
    strategy: str = "ROLLING"

    @property
    def shifts_traffic(self) -> bool:
        return self.strategy in TRAFFIC_SHIFTING

    @property
    def essential_checks(self) -> list[ContainerCheck]:
        return [c for c in self.health_checks if c.essential]

    # How long an "unable to place a task" event may stand, with no task of ours, before the deploy fails.
    placement_patience: float = 15.0
    # Target group ARN -> (health-check interval, healthy threshold): when a new target is expected healthy.
    health_schedule: tuple[tuple[str, int, int], ...] = ()
    # Target group ARN -> deregistration delay, read when the deploy waits for `stable`: when the old targets
    # are expected drained.
    drain_delays: tuple[tuple[str, int], ...] = ()

    @property
    def target_groups(self) -> list[str]:
        """Each target group once, even when two containers (or ports) of the task register in it; with
        traffic shifting, both groups of each pair."""
        return list(dict.fromkeys(tg for lb in self.load_balancers for tg in lb.groups))


@dataclass(frozen=True)
class Verdict:
    kind: str  # waiting | serving | stable | failed | paused (at a PAUSE lifecycle hook)
    reason: str = ""
    # The task definition of the deployment that took over from ours (another run, a person, or ECS's own
    # circuit-breaker rollback): rolling back over it could undo someone else's newer deploy.
    superseded_by: str | None = None
    # ECS itself rolls back (or rolled back) this deployment: a second rollback would fight it.
    ecs_rolling_back: bool = False
    # ECS stopped this deployment (StopServiceDeployment, or a newer deployment took over): a rollback would
    # override whoever stopped it.
    stopped: bool = False
