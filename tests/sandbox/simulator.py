"""The half of ECS and the ALB that moto does not simulate, run against real containers.

Per service it keeps deployments (PRIMARY first, then ACTIVE), runs each task as real containers on the host
network, registers them in the service's target groups, health-checks them over real HTTP with the group's
settings, replaces failed tasks, trips the circuit breaker, drains old tasks, and writes all of it back into
moto's objects so any AWS client sees a consistent world. State changes happen under the world lock; docker
and HTTP work happens outside it, in one thread per task and one per target.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import docker
import docker.errors
import requests

from . import alb_rules, bluegreen, capacity, container_health, oneoff, services
from .container_events import ContainerEvents
from .hosts import HostsFile
from .images import split_repo_tag
from .ledger import Ledger
from .motoworld import (
    MotoWorld,
    RunRequest,
    SecretUnavailable,
    ServiceKey,
    ServiceView,
    SimTask,
    TargetGroupView,
    TargetHealth,
)
from .placement import Placement, Placer, Unplaced
from .proxy import ProxyPool
from .service_deployments import (
    ApiError,
    Counts,
    History,
    Revision,
    ServiceDeployment,
    breaker_threshold,
    configuration_of,
)

LABEL = "ecs-ship.sandbox"


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class SimConfig:
    """Timings scaled down for tests; ECS's own values are minutes, not seconds.

    ``time_scale`` is how many AWS seconds pass per real second. Every duration the simulator takes from the
    world (a target group's health-check interval and timeout and deregistration delay, a service's
    health-check grace period, container health checks, blue/green bake minutes and hook timeouts) and its own
    ECS-side delays below (``stop_timeout``, ``retry_delay``, ``unhealthy_replace_delay``) last ``1/time_scale``
    as long in real time, so a world with AWS's defaults (30 s x 5 health checks, 300 s deregistration delay)
    runs in seconds; ``health_time_scale`` and ``minute`` multiply with it. 1.0 runs the world as it is set.

    Timestamps the API returns and the ledger's facts stay wall-clock times (a tool compares them with its own
    clock, as it would with AWS's): a lag measured in real seconds is ``aws_seconds(lag)`` = lag x time_scale
    AWS seconds. ``tick``, ``container_poll`` and the start-delay faults are the machine's, in real seconds.
    All of it goes through ``real``, ``health`` and ``minutes``: nothing else converts.
    """

    tick: float = 0.2
    # AWS refuses health-check intervals under 5 s (timeouts under 2 s); the sandbox keeps the target
    # group's real settings and runs its checks this much faster.
    health_time_scale: float = 0.2
    stop_timeout: float = 2.0  # docker stop grace (ECS: stopTimeout, default 30 s)
    retry_delay: float = 1.0  # pause before replacing a failed task (ECS backs off too)
    # ECS notices an unhealthy target on its own schedule, not the instant the ALB marks it; tools get a
    # window in which describe_target_health shows the reason code.
    unhealthy_replace_delay: float = 2.0
    breaker_threshold: int | None = None  # None: ECS's rule, clamp(ceil(desired/2), 3, 200)
    task_start_delay: float = 0.0  # fault: every task waits this long before its containers start
    # fault: tasks of these services (by service name) wait this long instead of task_start_delay
    service_start_delay: dict[str, float] = field(default_factory=dict)
    run_label: str = "default"  # containers carry it so a run can remove exactly its own
    registry_auth: dict[str, dict[str, str]] = field(default_factory=dict)  # host -> username/password
    # Seconds a minute of a blue/green, linear or canary bake time (or a lifecycle hook's timeout) lasts.
    minute: float = 1.0
    container_poll: float = 3.0  # seconds between reads of a task's containers when no engine event came
    time_scale: float = 1.0  # AWS seconds per real second (see the class docstring)

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be positive, not {self.time_scale}")

    # --- the one place durations are converted --------------------------------------------------
    def real(self, aws_seconds: float) -> float:
        """Real seconds that `aws_seconds` of the world's time last."""
        return aws_seconds / self.time_scale

    def aws_seconds(self, real_seconds: float) -> float:
        """AWS seconds that pass in `real_seconds` (a benchmark's lag, measured by wall clock)."""
        return real_seconds * self.time_scale

    def health(self, aws_seconds: float) -> float:
        """Real seconds of a health-check duration (target group or container), which also runs
        ``health_time_scale`` times as long (AWS's 5 s floor on intervals would slow every test)."""
        return self.real(aws_seconds * self.health_time_scale)

    def minutes(self, count: float) -> float:
        """Real seconds that `count` minutes of bake time or hook timeout last (``minute`` seconds each)."""
        return self.real(count * self.minute)


@dataclass
class Target:
    tg: TargetGroupView
    ip: str  # the target's id: an address, or an EC2 instance id in an `instance` target group
    port: int
    host: str = "127.0.0.1"  # where health checks and the ALB proxy reach it on this machine
    state: str = "initial"
    reason: str | None = "Elb.RegistrationInProgress"
    description: str | None = "Target registration is in progress"
    ok_streak: int = 0
    fail_streak: int = 0
    drain_until: float | None = None
    unhealthy_since: float | None = None
    gone: bool = False

    @property
    def subject(self) -> str:
        return f"{self.tg.arn}|{self.ip}:{self.port}"


@dataclass
class Deployment:
    id: str
    task_definition_arn: str
    status: str  # PRIMARY | ACTIVE
    desired: int
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)
    rollout: str = "IN_PROGRESS"
    rollout_reason: str = ""
    failed: int = 0
    # What the service ran on when the deployment began: a later UpdateService strategy is for the next one.
    launch_type: str = "FARGATE"
    strategy: tuple[dict[str, Any], ...] = ()
    revision_arn: str = ""  # the service revision it rolls out (see service_deployments.py)
    # Blue/green, linear, canary: the target group (of targetGroupArn and alternateTargetGroupArn) its tasks join.
    target_group: str | None = None


@dataclass
class Task:
    moto: SimTask
    key: ServiceKey
    deployment_id: str
    ports: dict[str, int]  # container name -> the 127.0.0.1 port it listens on (its PORT)
    revision_arn: str = ""
    target_group: str | None = None  # its deployment's (see Deployment.target_group)
    checks: dict[str, bool] = field(default_factory=dict)  # containers with a health check -> essential
    placement: Placement | None = None  # EC2 launch type: its container instance and host ports
    targets: list[Target] = field(default_factory=list)
    started_mono: float | None = None
    draining_until: float | None = None
    kill: threading.Event = field(default_factory=threading.Event)
    # Set on kill and on any engine event of its containers: its watcher reads their state then.
    wake: threading.Event = field(default_factory=threading.Event)
    done: bool = False

    def end(self) -> None:
        """Tell the task's thread to stop its containers now."""
        self.kill.set()
        self.wake.set()

    @property
    def arn(self) -> str:
        return self.moto.task_arn

    @property
    def short_id(self) -> str:
        return self.moto.id

    @property
    def live(self) -> bool:
        return self.moto.desired_status == "RUNNING"


@dataclass
class ServiceState:
    key: ServiceKey
    deployments: list[Deployment] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    next_launch_at: float = 0.0
    steady: bool = False
    retired: bool = False  # the sandbox ended it between tests (see Simulator.retire)


def _match(code: int, matcher: str) -> bool:
    for part in matcher.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-", 1)
            if int(lo) <= code <= int(hi):
                return True
        elif part and int(part) == code:
            return True
    return False


@dataclass
class _Pull:
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    launches: int = 1


class _SharedPulls:
    """Launches of one image that overlap share one pull, as an agent's image cache would.

    A rollout of a hundred tasks starts a hundred pulls in the same second; on a small machine the
    registry then answers too slowly and the engine gives up ("Client.Timeout exceeded while awaiting
    headers"), a fault of the machine, not of the world. A launch after the pull ended pulls again, so a
    registry that went down (or a tag that moved) is still seen by the next task.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, _Pull] = {}

    def launches(self, image: str) -> int:
        """How many launches share the pull of `image` now running (0 when none runs)."""
        with self._lock:
            shared = self._running.get(image)
            return shared.launches if shared else 0

    def run(self, image: str, pull: Callable[[], None]) -> None:
        with self._lock:
            shared = self._running.get(image)
            if shared is not None:
                shared.launches += 1
            else:
                self._running[image] = _Pull()
        if shared is not None:
            shared.done.wait()
            if shared.error is not None:
                raise shared.error
            return
        mine = self._running[image]
        try:
            pull()
        except BaseException as exc:
            mine.error = exc
            raise
        finally:
            with self._lock:
                del self._running[image]
            mine.done.set()


class Simulator:
    def __init__(
        self,
        world: MotoWorld,
        ledger: Ledger,
        client: docker.DockerClient,
        config: SimConfig,
        hosts: HostsFile | None = None,
        free_port: Callable[[], int] | None = None,
    ) -> None:
        self.world = world
        self.ledger = ledger
        self.docker = client
        self.config = config
        self.hosts = hosts
        self._free_port = free_port or services.free_port
        self.services: dict[ServiceKey, ServiceState] = {}
        self.standalone: list[Task] = []  # tasks RunTask started, outside any service
        self.proxies = ProxyPool(self._route)
        self.placer = Placer(world)
        self._named_hosts: set[str] = set()
        self._unlaunchable: set[tuple[str, str]] = set()  # (deployment, role) whose launch failure was told
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Task and health-check threads still running: each leaves on exit, so stop() joins only these (a
        # session starts hundreds; keeping every one to join at the end cost its teardown seconds).
        self._threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()
        self._threads_started = 0
        self.stop_times: dict[str, float] = {}  # set by stop(): seconds per part
        self._pulls = _SharedPulls()
        self._events = ContainerEvents(client, f"{LABEL}.run={config.run_label}")
        self.history = History()

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self.world.install(self)
        self._events.start()
        self._thread = threading.Thread(target=self._loop, name="ecs-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop every task it started and every proxy; remove its containers. ``stop_times`` says how long each
        part took (a session's teardown is paid by every CI run)."""
        times = self.stop_times
        mark = time.monotonic()

        def part(name: str) -> None:
            nonlocal mark
            now = time.monotonic()
            times[name] = now - mark
            mark = now

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        part("loop")
        with self.world.lock:
            tasks = [t for s in self.services.values() for t in s.tasks if not t.done]
            tasks += [t for t in self.standalone if not t.done]
            for t in tasks:
                self._stop_task(t, "Service shutdown", "ServiceSchedulerInitiated", drain=False)
                t.end()  # a draining task too: its thread would wait for the loop that ends it, stopped now
        # Killed at once, not stopped with grace: no one reads an exit code after the session. Their threads
        # then find their containers gone and end.
        self.remove_containers()
        part(f"stopping {len(tasks)} tasks")
        with self._threads_lock:
            running = list(self._threads)
        deadline = time.monotonic() + self.config.real(self.config.stop_timeout) + 15
        for th in running:
            th.join(timeout=max(0.1, deadline - time.monotonic()))
        alive = sum(th.is_alive() for th in running)
        part(f"joining {len(running)} of {self._threads_started} threads ({alive} still alive)")
        self._events.close()
        part("events")
        self.proxies.close()
        part("proxies")
        with self.world.lock:
            self.placer.close()
        self.world.uninstall()
        part("placer")
        self.remove_containers()
        part("removing containers")
        if self.hosts is not None:
            self.hosts.clear()

    def retire(self) -> int:
        """End every service's tasks (between tests): the next test starts with no container of the last one.

        A suite's worlds are never deleted through the API, so without this every test's tasks would run,
        be health-checked and watched until the session ends. Retired services launch nothing more and leave
        the simulator once their tasks have stopped; the API keeps them as they were. Returns how many tasks
        were told to stop.
        """
        stopped = 0
        with self.world.lock:
            for state in self.services.values():
                state.retired = True
                for t in state.tasks:
                    if t.live:
                        self._stop_task(t, "Service retired by the sandbox", "ServiceSchedulerInitiated", drain=False)
                        stopped += 1
            for t in self.standalone:
                if t.live:
                    self._stop_task(t, "Task retired by the sandbox", "UserInitiated", drain=False)
                    stopped += 1
        return stopped

    def forget_finished(self) -> int:
        """Drop from the world the clusters and load balancers of tests that have ended (see
        ``MotoWorld.forget``): those with no task still running or stopping. Returns how many clusters."""
        with self.world.lock:
            tasks = [t for s in self.services.values() for t in s.tasks if not t.done]
            tasks += [t for t in self.standalone if not t.done]
            busy = {(s.key.region, s.key.cluster) for s in self.services.values()}
            busy |= {(t.key.region, t.key.cluster) for t in tasks}
            dropped = self.world.forget(busy, {tgt.tg.arn for t in tasks for tgt in t.targets})
            self.history.forget(set(dropped))
            return len(dropped)

    def remove_containers(self) -> None:
        # sparse: listing must not inspect each container, which waits on a container the engine is still
        # stopping (seen: minutes under heavy disk load). A removal the engine cannot make now is left to the
        # engine's own shutdown, which follows.
        found = self.docker.containers.list(
            all=True, sparse=True, filters={"label": f"{LABEL}.run={self.config.run_label}"}
        )

        def remove(c: Any) -> None:
            with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
                c.remove(force=True)

        # Concurrent, since each removal waits on the engine killing a process; bounded, since a burst of
        # them wedged a busy engine before.
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="remove-container") as pool:
            list(pool.map(remove, found))

    # --- hooks (request threads, world lock held) -----------------------------------------------
    def on_deployment(self, key: ServiceKey, task_definition_arn: str, *, created: bool) -> str:
        """A deployment a user started: a new service revision, its service deployment, its legacy deployment."""
        state = self.services.get(key)
        if state is None or state.retired:  # a name used again after the sandbox ended its service
            state = self.services[key] = ServiceState(key)
        view = self.world.service_view(key)
        if view is None:
            raise KeyError(f"service {key.name} vanished while deploying")
        sources = [d.revision_arn for d in state.deployments]
        revision = self.history.new_revision(view, task_definition_arn, self._images(key.region, task_definition_arn))
        dep = self._start_deployment(state, view, revision)
        sd = self.history.begin(
            view, revision, sources, dep.id, configuration_of(view), self._threshold(view, view.desired_count)
        )
        if view.deployment_configuration.get("strategy") in bluegreen.SHIFTING:
            self._begin_shift(state, view, dep, sd)
        self._publish(state)
        return dep.id

    def _begin_shift(self, state: ServiceState, view: ServiceView, dep: Deployment, sd: ServiceDeployment) -> None:
        """A blue/green, linear or canary deployment: green joins the target group production traffic is not on.

        Which of the two groups is production is read from the production rule (the one it weighs most), so the
        roles swap after every successful deployment, as ECS's do. With no blue task running (a new service)
        green joins the production group itself and there is no traffic to move.
        """
        conf = view.deployment_configuration
        blue = [t for t in state.tasks if t.deployment_id != dep.id and t.live]
        shift = bluegreen.Shift(
            bluegreen.plan(conf, reconcile=len(sd.sources) > 1, blue=bool(blue)),
            list(conf.get("lifecycleHooks") or []),
            self.config.minutes(1),
        )
        sd.shift = shift
        pair = _pair(view)
        if pair is None:
            return
        main, alternate, production_rule, _ = pair
        production = bluegreen.production_group(
            self.world.rule_actions(view.key.region, production_rule) or [], (main, alternate)
        )
        other = alternate if production == main else main
        dep.target_group = other if blue else production
        shift.green_group = dep.target_group
        shift.blue_group = production if blue else None
        # Assumption: green tasks of a deployment this one replaced leave the group the new green joins.
        for t in blue:
            if t.target_group == dep.target_group:
                self._stop_task(
                    t, f"Scaling activity initiated by (deployment {dep.id})", "ServiceSchedulerInitiated", drain=True
                )

    def _apply_traffic(self, view: ServiceView, shift: bluegreen.Shift) -> None:
        """Write the production and test rules' weights where the deployment has them (ModifyRule, as ECS)."""
        pair = _pair(view)
        if pair is None or shift.green_group is None:
            return
        main, alternate, production_rule, test_rule = pair
        blue = shift.blue_group or (alternate if shift.green_group == main else main)
        moving = shift.blue_group is not None
        self._set_forward(
            view.key.region, production_rule, blue, shift.green_group, shift.green_percent if moving else 100
        )
        if test_rule:
            self._set_forward(
                view.key.region, test_rule, blue, shift.green_group, 100 if shift.test_to_green or not moving else 0
            )

    def _set_forward(self, region: str, rule: str, blue: str, green: str, green_percent: float) -> None:
        actions = self.world.rule_actions(region, rule)
        if not actions:
            return
        final = alb_rules.final_action(actions)
        if final is None or final.get("Type") != "forward":
            return  # Assumption: ECS leaves a rule that forwards nowhere as it is.
        new = [bluegreen.forward_action(a, blue, green, green_percent) if a is final else a for a in actions]
        if new != actions:
            self.world.set_rule_actions(region, rule, new)
            self.ledger.fact("traffic_shifted", rule, f"{green} {green_percent}")

    def _start_deployment(self, state: ServiceState, view: ServiceView, revision: Revision) -> Deployment:
        """A new PRIMARY legacy deployment of `revision`; the older ones turn ACTIVE and drain as it rolls out."""
        dep = Deployment(
            id=f"ecs-svc/{uuid.uuid4().int % 10**19:019d}",
            task_definition_arn=revision.task_definition,
            status="PRIMARY",
            desired=view.desired_count,
            launch_type=revision.launch_type or "FARGATE",
            strategy=revision.strategy,
            revision_arn=revision.arn,
        )
        dep.rollout_reason = f"ECS deployment {dep.id} in progress."
        for old in state.deployments:
            old.status = "ACTIVE"
            old.updated = _now()
            # The scheduler keeps the old tasks until the rollout lets them go (see _retire_old).
            old.desired = sum(1 for t in state.tasks if t.deployment_id == old.id and t.live)
            if old.rollout == "IN_PROGRESS":
                # ECS stops a rollout that a newer deployment replaced.
                old.rollout = "STOPPED"
                old.rollout_reason = f"ECS deployment {old.id} stopped: a newer deployment started."
        state.deployments.insert(0, dep)
        state.steady = False
        state.next_launch_at = 0.0
        return dep

    def _images(self, region: str, task_definition_arn: str) -> list[dict[str, str]]:
        try:
            td = self.world.task_definition(region, task_definition_arn)
        except Exception:  # an unknown revision: the deployment fails at launch, as ECS's would
            return []
        return [{"containerName": c["name"], "image": c.get("image", "")} for c in td.container_definitions]

    def stop_service_deployment(self, arn: str, stop_type: str) -> str:
        """StopServiceDeployment: ROLLBACK returns to the revision last at steady state; ABORT halts in place.

        Only a deployment still under way can be stopped; one already stopping or rolling back carries on.
        """
        sd = self.history.deployments.get(arn)
        if sd is None:
            raise ApiError("ServiceDeploymentNotFoundException", f"The service deployment {arn} does not exist.")
        if stop_type not in ("ROLLBACK", "ABORT"):
            raise ApiError("InvalidParameterException", f"Invalid stopType {stop_type!r}: use ROLLBACK or ABORT.")
        if sd.status in ("STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"):
            return arn
        state = self.services.get(sd.key)
        view = self.world.service_view(sd.key)
        primary = state.deployments[0] if state and state.deployments else None
        if not sd.ongoing or state is None or view is None or primary is None or primary.id != sd.legacy_id:
            raise ApiError(
                "ConflictException",
                f"The service deployment {arn} is {sd.status} and can no longer be stopped.",
            )
        if stop_type == "ABORT":
            self.history.stop_requested(sd, "Service deployment stopped by a user request.")
            self._halt(state, primary, f"ECS deployment {primary.id} stopped by a user request.", stop_tasks=False)
        elif sd.shift is not None:
            self._shift_back(
                state,
                view,
                primary,
                sd,
                f"ECS deployment {primary.id} stopped by a user request: rolling back.",
                "Service deployment rolled back because of a user request.",
                tripped=False,
            )
        else:
            to = self.history.stable(sd.key)
            if to is None:
                raise ApiError(
                    "ConflictException",
                    f"The service deployment {arn} has no successful service revision to roll back to.",
                )
            self._roll_back(
                state,
                view,
                primary,
                sd,
                f"ECS deployment {primary.id} stopped by a user request: rolling back.",
                to,
                "Service deployment rolled back because of a user request.",
                tripped=False,
            )
        self._publish(state)
        return arn

    def continue_service_deployment(self, arn: str, hook_id: str, action: str) -> str:
        """ContinueServiceDeployment: answer the PAUSE hook holding the deployment's current stage."""
        sd = self.history.deployments.get(arn)
        if sd is None:
            raise ApiError("ServiceDeploymentNotFoundException", f"The service deployment {arn} does not exist.")
        if sd.shift is None:
            raise ApiError("InvalidParameterException", f"The service deployment {arn} has no lifecycle hooks.")
        if sd.status != "IN_PROGRESS":
            raise ApiError("ClientException", f"The service deployment {arn} is {sd.status}, not IN_PROGRESS.")
        sd.shift.resolve(hook_id, action)
        state = self.services.get(sd.key)
        view = self.world.service_view(sd.key)
        if state is not None and view is not None and sd.shift.rollback_reason is not None and state.deployments:
            self._shift_back(
                state,
                view,
                state.deployments[0],
                sd,
                f"ECS deployment {state.deployments[0].id} stopped by a lifecycle hook: rolling back.",
                "Service deployment rolled back because a lifecycle hook asked for it.",
                tripped=False,
            )
            self._publish(state)
        return arn

    def on_desired_count(self, key: ServiceKey) -> None:
        state = self.services.get(key)
        if state is not None:
            state.steady = False
            self._publish(state)

    def interrupt(self, task_arn: str) -> bool:
        """Take a running task away as a Fargate Spot interruption would (a fault): stopped with the code and
        reason ECS writes, not counted as a failed task; the scheduler replaces it."""
        with self.world.lock:
            for state in self.services.values():
                for t in state.tasks:
                    if t.arn == task_arn and t.live and t.moto.capacity_provider_name == "FARGATE_SPOT":
                        code, reason = container_health.SPOT_INTERRUPTION
                        self._stop_task(t, reason, code, drain=False)
                        self.ledger.fact("task_interrupted", t.arn, code)
                        self._publish(state)
                        return True
        return False

    def on_stop_task(self, task_arn: str, reason: str) -> bool:
        for state in self.services.values():
            for t in state.tasks:
                if t.arn == task_arn and t.live:
                    self._stop_task(t, reason, "UserInitiated", drain=False)
                    self._publish(state)
                    return True
        for t in self.standalone:
            if t.arn == task_arn and t.live:
                self._stop_task(t, reason, "UserInitiated", drain=False)
                return True
        return False

    def on_run_task(self, request: RunRequest) -> list[SimTask]:
        """RunTask: the tasks run as real containers like a service's, with the call's overrides, and stop
        when their essential container exits; nothing replaces them."""
        td = self.world.task_definition(request.key.region, request.task_definition_arn)
        try:
            defs = oneoff.overridden(td.container_definitions, request.overrides)
        except ValueError as exc:
            raise ApiError("InvalidParameterException", str(exc)) from exc
        started: list[SimTask] = []
        for _ in range(request.count):
            moto_task = SimTask(
                key=request.key,
                cluster_arn=request.cluster_arn,
                task_definition_arn=td.arn,
                started_by=request.started_by,
                containers=[(c["name"], c.get("image", ""), bool(c.get("essential", True))) for c in defs],
                group=request.group,
                launch_type=request.launch_type,
                network_mode=td.network_mode,
                capacity_provider=request.capacity_provider,
                network_configuration=request.network_configuration,
            )
            moto_task.overrides = request.overrides
            moto_task.tags = request.tags
            task = self._task(moto_task, request.key, defs)
            if self._start(task, td, defs, None, request.capacity_provider):
                self.standalone.append(task)
                started.append(moto_task)
        return started

    def target_health(self, target_group_arn: str) -> list[TargetHealth] | None:
        found: list[TargetHealth] = []
        managed = False
        for state in self.services.values():
            view = self.world.service_view(state.key)
            if view and any(
                target_group_arn
                in (lb.get("targetGroupArn"), (lb.get("advancedConfiguration") or {}).get("alternateTargetGroupArn"))
                for lb in view.load_balancers
            ):
                managed = True
            for t in state.tasks:
                for tgt in t.targets:
                    if tgt.tg.arn == target_group_arn and not tgt.gone:
                        managed = True
                        found.append(TargetHealth(tgt.ip, tgt.port, tgt.state, tgt.reason, tgt.description))
        return found if managed else None

    def on_load_balancer(self, dns_name: str) -> None:
        if self.hosts is not None:
            self.hosts.add(dns_name)

    # --- the control loop ----------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self.config.tick):
            try:
                with self.world.lock:
                    self.standalone = [t for t in self.standalone if not t.done]
                    for state in list(self.services.values()):
                        if state.retired:
                            if all(t.done for t in state.tasks) and self.services.get(state.key) is state:
                                del self.services[state.key]
                            continue
                        self._reconcile(state)
                        self._publish(state)
                    self._sync_proxies()
            except Exception as exc:  # keep simulating; a broken tick must not freeze the world
                self.ledger.fact("simulator_error", "tick", repr(exc))

    def _sync_proxies(self) -> None:
        listeners = [lst for region in self.world.regions() for lst in self.world.listeners(region)]
        self.proxies.sync(listeners)
        if self.hosts is not None:
            # The sandbox's stand-in for the user's DNS: a rule's host name resolves to the load balancer, as
            # the record a user makes for app.example.com would.
            for name in alb_rules.named_hosts([r for lst in listeners for r in lst.rules]):
                if name not in self._named_hosts:
                    self.hosts.add(name)
                    self._named_hosts.add(name)

    def _route(self, target_group_arns: list[str]) -> list[tuple[str, int]]:
        """Where the ALB may send a request: healthy targets; if none are healthy, all (fail open)."""
        with self.world.lock:
            candidates = [
                tgt
                for s in self.services.values()
                for t in s.tasks
                for tgt in t.targets
                if tgt.tg.arn in target_group_arns and not tgt.gone and tgt.state != "draining"
            ]
            healthy = [(x.host, x.port) for x in candidates if x.state == "healthy"]
            if healthy:
                return healthy
            return [(x.host, x.port) for x in candidates if x.state in ("unhealthy",)]

    def _threshold(self, view: ServiceView, desired: int) -> int:
        if self.config.breaker_threshold is not None:
            return self.config.breaker_threshold
        return breaker_threshold(view.deployment_configuration, desired)

    def _reconcile(self, state: ServiceState) -> None:
        key = state.key
        view = self.world.service_view(key)
        now = time.monotonic()
        if view is None or view.status != "ACTIVE" or not state.deployments:
            for t in state.tasks:
                if t.live:
                    self._stop_task(t, "Service deleted", "ServiceSchedulerInitiated", drain=False)
            self._expire_targets(state, now)
            return
        primary = state.deployments[0]
        primary.desired = view.desired_count

        # Unhealthy targets past the grace period: ECS replaces the task.
        for t in state.tasks:
            if not t.live or t.started_mono is None:
                continue
            if now - t.started_mono < self.config.real(view.grace_period):
                continue
            bad = next(
                (
                    x
                    for x in t.targets
                    if x.state == "unhealthy"
                    and x.unhealthy_since is not None
                    and now - x.unhealthy_since >= self.config.real(self.config.unhealthy_replace_delay)
                ),
                None,
            )
            if bad is not None:
                self._fail_task(
                    state,
                    t,
                    f"Task failed ELB health checks in (target-group {bad.tg.arn})",
                    "ServiceSchedulerInitiated",
                )
                self._event(
                    key,
                    f"(service {key.name}) (task {t.short_id}) failed ELB health checks in "
                    f"(target-group {bad.tg.arn}).",
                )

        # Essential containers UNHEALTHY by their own checks past the grace period: ECS replaces the task.
        for t in state.tasks:
            past_grace = t.started_mono is not None and now - t.started_mono >= self.config.real(view.grace_period)
            if t.live and past_grace and t.moto.health_status == "UNHEALTHY":
                self._fail_task(state, t, container_health.FAILED_REASON, "ServiceSchedulerInitiated")
                self._event(key, f"(service {key.name}) (task {t.short_id}) failed container health checks.")

        # Circuit breaker.
        if (
            view.circuit_breaker["enable"]
            and primary.rollout == "IN_PROGRESS"
            and primary.failed >= self._threshold(view, primary.desired)
        ):
            reason = "ECS deployment circuit breaker: tasks failed to start."
            self._event(
                key, f"(service {key.name}) (deployment {primary.id}) deployment failed: tasks failed to start."
            )
            self.ledger.fact("deployment_failed", primary.id, reason)
            sd = self.history.owner(primary.id)
            if sd is not None and sd.shift is not None and sd.legacy_id == primary.id:
                failed = "Service deployment failed: the circuit breaker detected tasks that failed to start."
                if view.circuit_breaker["rollback"]:
                    self._shift_back(state, view, primary, sd, reason, failed, tripped=True)
                else:
                    self._halt(state, primary, reason, stop_tasks=True)
                    self.history.stop(sd, failed, tripped=True)
                return
            if sd is not None and sd.rollback_legacy_id == primary.id:
                # The revision rolled back to fails too: ECS gives up rather than roll back again.
                self._halt(state, primary, reason, stop_tasks=True)
                self.history.rolled_back(
                    sd, ok=False, reason="Service deployment rollback failed: the circuit breaker detected a failure."
                )
            else:
                to = self.history.stable(key) if view.circuit_breaker["rollback"] else None
                self._roll_back(
                    state,
                    view,
                    primary,
                    sd,
                    reason,
                    to,
                    "Service deployment failed: the circuit breaker detected tasks that failed to start.",
                    tripped=True,
                )
                if to is not None:
                    return

        # A failed rollout launches nothing more, and the old tasks stay as they are: ECS stops trying.
        mine = [t for t in state.tasks if t.deployment_id == primary.id and t.live]
        shift = self._shift_of(primary)
        if primary.rollout != "FAILED":
            if shift is None:
                self._retire_old(state, view, primary)
            elif shift.cleaning:
                self._clean_up(state, primary)
            missing = primary.desired - len(mine)
            if missing > 0 and now >= state.next_launch_at and (shift is None or shift.scaling):
                # maximumPercent bounds the service's RUNNING and PENDING tasks, old and new together
                # (rounded down): the batch a rollout may start before old tasks make way. Green scales up
                # beside blue at once (a blue/green deployment runs both in full).
                ceiling = math.floor(primary.desired * view.maximum_percent / 100)
                live = sum(1 for t in state.tasks if t.live)
                batch = missing if shift is not None else min(missing, max(0, ceiling - live))
                started = [t for t in (self._launch(state, view, primary) for _ in range(batch)) if t]
                started_ids = ", ".join(f"(task {t.short_id})" for t in started)
                if started_ids:
                    self._event(key, f"(service {key.name}) has started {len(started)} tasks: {started_ids}.")
            elif missing < 0:
                for t in sorted(mine, key=lambda x: x.moto.created_at)[:-missing]:
                    self._stop_task(
                        t,
                        f"Scaling activity initiated by (deployment {primary.id})",
                        "ServiceSchedulerInitiated",
                        drain=True,
                    )
        ready = [t for t in mine if self._serving(t, view)]
        sd = self.history.owner(primary.id)
        if shift is not None and sd is not None and sd.status == "IN_PROGRESS":
            blue_gone = not any(t.live for t in state.tasks if t.deployment_id != primary.id)
            shift.tick(now, green_ready=len(ready) >= primary.desired, blue_gone=blue_gone)
            if shift.rollback_reason is not None:
                self._shift_back(
                    state,
                    view,
                    primary,
                    sd,
                    f"ECS deployment {primary.id} stopped: {shift.rollback_reason}",
                    f"Service deployment rolled back: {shift.rollback_reason}",
                    tripped=False,
                )
                return
            self._apply_traffic(view, shift)

        # Containers of draining tasks stop after the deregistration delay.
        for t in state.tasks:
            if t.draining_until is not None and now >= t.draining_until and not t.kill.is_set():
                t.end()

        self._expire_targets(state, now)

        # Deployments whose tasks are all gone disappear; PRIMARY completes when alone and serving.
        for dep in list(state.deployments[1:]):
            if not any(t.deployment_id == dep.id and not t.done for t in state.tasks):
                state.deployments.remove(dep)
                self.ledger.fact("deployment_removed", dep.id)
        if (
            len(state.deployments) == 1
            and primary.rollout == "IN_PROGRESS"
            and (shift is None or shift.done)
            and len(ready) >= primary.desired
            and all(t.done for t in state.tasks if t.deployment_id != primary.id)
        ):
            primary.rollout = "COMPLETED"
            primary.rollout_reason = f"ECS deployment {primary.id} completed."
            primary.updated = _now()
            self.history.settled(key, primary.revision_arn)
            self.ledger.fact("deployment_completed", primary.id)
            self._event(key, f"(service {key.name}) (deployment {primary.id}) deployment completed.")
        if (
            len(state.deployments) == 1
            and len(ready) == primary.desired
            and not state.steady
            and all(t.done for t in state.tasks if t.deployment_id != primary.id or not t.live)
        ):
            state.steady = True
            self._event(key, f"(service {key.name}) has reached a steady state.")
            self.ledger.fact("steady_state", key.name)
        self._advance_history(state)
        # Forget stopped tasks' bookkeeping after a while, as ECS does (it keeps them about an hour).
        forget_after = self.config.real(600)
        state.tasks = [
            t
            for t in state.tasks
            if not (t.done and t.moto.stopped_at and (_now() - t.moto.stopped_at).total_seconds() > forget_after)
        ]

    def _retire_old(self, state: ServiceState, view: ServiceView, primary: Deployment) -> None:
        """Stop old deployments' tasks as far as minimumHealthyPercent allows.

        The scheduler keeps at least ceil(desired * minimumHealthyPercent / 100) tasks healthy, new and old
        together, so old tasks make way as new ones become healthy (or at once, down to that floor, which is how
        a full EC2 cluster frees room for a new revision). Old tasks that serve nobody (never healthy, still
        starting) cost no health and go first. Each old deployment's desiredCount is what the scheduler still
        keeps of it, so DescribeServices shows the ACTIVE deployment shrink as it drains.
        """
        old = [t for t in state.tasks if t.deployment_id != primary.id and t.live]
        if old:
            floor = math.ceil(primary.desired * view.minimum_healthy_percent / 100)
            healthy = sum(1 for t in state.tasks if self._serving(t, view))
            draining: list[Task] = []
            for t in sorted(old, key=lambda x: (self._serving(x, view), x.moto.created_at)):
                if self._serving(t, view):
                    if healthy - 1 < floor:
                        break
                    healthy -= 1
                self._stop_task(
                    t,
                    f"Scaling activity initiated by (deployment {primary.id})",
                    "ServiceSchedulerInitiated",
                    drain=True,
                )
                draining.append(t)
            if draining:
                self._event(
                    state.key,
                    f"(service {state.key.name}) has begun draining connections on {len(draining)} tasks.",
                )
        for dep in state.deployments[1:]:
            kept = sum(1 for t in state.tasks if t.deployment_id == dep.id and t.live)
            if dep.desired != kept:
                dep.desired = kept
                dep.updated = _now()

    def _halt(self, state: ServiceState, dep: Deployment, reason: str, *, stop_tasks: bool) -> None:
        """The legacy deployment fails: it launches nothing more (and, if asked, its tasks stop)."""
        dep.rollout = "FAILED"
        dep.rollout_reason = reason
        dep.updated = _now()
        if stop_tasks:
            for t in state.tasks:
                if t.deployment_id == dep.id and t.live:
                    self._stop_task(t, "Deployment failed", "ServiceSchedulerInitiated", drain=False)

    def _roll_back(
        self,
        state: ServiceState,
        view: ServiceView,
        primary: Deployment,
        sd: ServiceDeployment | None,
        rollout_reason: str,
        to: Revision | None,
        reason: str,
        *,
        tripped: bool,
    ) -> None:
        """Fail `primary` and restore revision `to` (the circuit breaker's rollback and a user's alike).

        The rollback is a new PRIMARY legacy deployment of the old revision, recorded on the service deployment
        that failed; with nothing to restore the service deployment just stops.
        """
        self._halt(state, primary, rollout_reason, stop_tasks=True)
        if to is None:
            if sd is not None and sd.ongoing:
                self.history.stop(sd, reason, tripped=tripped)
            return
        dep = self._start_deployment(state, view, to)
        if sd is not None:
            self.history.rollback_requested(sd, reason, to, dep.id, tripped=tripped)
        self._event(state.key, f"(service {state.key.name}) rolling back to deployment {dep.id}.")
        self.ledger.fact("rollback_started", dep.id, to.task_definition)

    def _shift_of(self, dep: Deployment) -> bluegreen.Shift | None:
        """The lifecycle of the blue/green, linear or canary deployment `dep` rolls out, if it is one."""
        sd = self.history.owner(dep.id)
        return sd.shift if sd is not None and sd.legacy_id == dep.id else None

    def _clean_up(self, state: ServiceState, primary: Deployment) -> None:
        """CLEAN_UP: every blue task stops (green serves all the traffic by now)."""
        blue = [t for t in state.tasks if t.deployment_id != primary.id and t.live]
        for t in blue:
            self._stop_task(
                t, f"Scaling activity initiated by (deployment {primary.id})", "ServiceSchedulerInitiated", drain=True
            )
        if blue:
            self._event(state.key, f"(service {state.key.name}) has begun draining connections on {len(blue)} tasks.")
        for dep in state.deployments[1:]:
            dep.desired = 0

    def _shift_back(
        self,
        state: ServiceState,
        view: ServiceView,
        primary: Deployment,
        sd: ServiceDeployment,
        rollout_reason: str,
        reason: str,
        *,
        tripped: bool,
    ) -> None:
        """Roll a blue/green, linear or canary deployment back: all traffic to blue at once, green stopped.

        Blue still runs (until CLEAN_UP), so the rollback's new PRIMARY legacy deployment takes over blue's tasks
        rather than starting new ones; it starts only what CLEAN_UP already stopped, in blue's target group.
        """
        assert sd.shift is not None
        sd.shift.roll_back()
        self._apply_traffic(view, sd.shift)
        self._halt(state, primary, rollout_reason, stop_tasks=True)
        stable = self.history.stable(sd.key)
        running = [d for d in state.deployments[1:] if any(t.live and t.deployment_id == d.id for t in state.tasks)]
        blue = next((d for d in running if stable is not None and d.revision_arn == stable.arn), None)
        to = self.history.revisions.get(blue.revision_arn) if blue is not None else stable
        if to is None or sd.shift.blue_group is None:
            if sd.ongoing:
                self.history.stop(sd, reason, tripped=tripped)
            return
        dep = self._start_deployment(state, view, to)
        dep.target_group = sd.shift.blue_group
        for t in state.tasks:
            if blue is not None and t.deployment_id == blue.id and t.live:
                t.deployment_id = dep.id
        self.history.rollback_requested(sd, reason, to, dep.id, tripped=tripped)
        self._event(state.key, f"(service {state.key.name}) rolling back to deployment {dep.id}.")
        self.ledger.fact("rollback_started", dep.id, to.task_definition)

    def _counts(self, state: ServiceState, dep: Deployment) -> Counts:
        tasks = [t for t in state.tasks if t.deployment_id == dep.id and t.live]
        return Counts(
            requested=dep.desired,
            running=sum(1 for t in tasks if t.moto.last_status == "RUNNING"),
            pending=sum(1 for t in tasks if t.moto.last_status in ("PROVISIONING", "PENDING")),
        )

    def _revision_counts(self, state: ServiceState) -> dict[str, Counts]:
        out: dict[str, Counts] = {}
        for dep in state.deployments:
            out[dep.revision_arn] = out.get(dep.revision_arn, Counts()) + self._counts(state, dep)
        return out

    def _observe(self, state: ServiceState) -> None:
        self.history.observe(state.key, self._revision_counts(state), {d.id: d.failed for d in state.deployments})

    def _advance_history(self, state: ServiceState) -> None:
        """Move the service's deployments along as their legacy deployments went (one step a tick)."""
        self._observe(state)
        rollouts = {d.id: d.rollout for d in state.deployments}
        for sd in self.history.for_service(state.key):
            if sd.status == "PENDING":
                self.history.started(sd)
            elif sd.status == "IN_PROGRESS" and rollouts.get(sd.legacy_id) == "COMPLETED":
                self.history.succeeded(sd)
            elif sd.status == "STOP_REQUESTED":
                self.history.stop(sd, sd.status_reason)
            elif sd.status == "ROLLBACK_REQUESTED":
                self.history.rolling_back(sd)
            elif sd.status == "ROLLBACK_IN_PROGRESS" and rollouts.get(sd.rollback_legacy_id or "") == "COMPLETED":
                self.history.rolled_back(sd, ok=True, reason="Service deployment rolled back successfully.")

    def _serving(self, t: Task, view: ServiceView) -> bool:
        if t.moto.last_status != "RUNNING" or not t.live:
            return False
        # With container health checks, ECS counts a task toward the rollout only once it is HEALTHY.
        if any(t.checks.values()) and t.moto.health_status != "HEALTHY":
            return False
        if view.load_balancers:
            return bool(t.targets) and all(x.state == "healthy" for x in t.targets)
        return True

    def _expire_targets(self, state: ServiceState, now: float) -> None:
        for t in state.tasks:
            for tgt in t.targets:
                if tgt.state == "draining" and not tgt.gone and tgt.drain_until is not None and now >= tgt.drain_until:
                    tgt.gone = True
                    self.ledger.fact("target_deregistered", tgt.subject)
                    self._event(
                        state.key, f"(service {state.key.name}) deregistered 1 targets in (target-group {tgt.tg.arn})"
                    )

    # --- tasks ---------------------------------------------------------------------------------
    def _launch(self, state: ServiceState, view: ServiceView, dep: Deployment) -> Task | None:
        key = state.key
        try:
            td = self.world.task_definition(key.region, dep.task_definition_arn)
        except Exception as exc:
            self.ledger.fact("simulator_error", dep.task_definition_arn, repr(exc))
            return None
        for role in td.roles:
            if not self.world.role_assumable(role):
                # ECS creates no task and keeps retrying; it says so in the service's events.
                if (dep.id, role) not in self._unlaunchable:
                    self._unlaunchable.add((dep.id, role))
                    self._event(
                        key,
                        f"(service {key.name}) failed to launch a task with (error ECS was unable to assume the "
                        f"role '{role}' that was provided for this task. Please verify that the role being passed "
                        "has the proper trust relationship and permissions and that your IAM user has permissions "
                        "to pass this role.).",
                    )
                    self.ledger.fact("task_unlaunched", key.name, role)
                return None
        containers = [(c["name"], c.get("image", ""), bool(c.get("essential", True))) for c in td.container_definitions]
        provider = None
        if dep.strategy:
            on: dict[str, int] = {}
            for t in state.tasks:
                if t.deployment_id == dep.id and t.live and t.moto.capacity_provider_name:
                    on[t.moto.capacity_provider_name] = on.get(t.moto.capacity_provider_name, 0) + 1
            provider = capacity.pick(dep.strategy, on)
        moto_task = SimTask(
            key=key,
            cluster_arn=view.cluster_arn,
            task_definition_arn=td.arn,
            started_by=dep.id,
            containers=containers,
            group=f"service:{key.name}",
            launch_type=dep.launch_type or view.launch_type,
            network_mode=td.network_mode,
            capacity_provider=provider,
            network_configuration=view.network_configuration,
        )
        task = self._task(moto_task, key, td.container_definitions)
        task.deployment_id, task.revision_arn, task.target_group = dep.id, dep.revision_arn, dep.target_group
        if not self._start(task, td, td.container_definitions, view, provider):
            return None
        state.tasks.append(task)
        return task

    def _task(self, moto_task: SimTask, key: ServiceKey, defs: list[dict[str, Any]]) -> Task:
        ports = {c["name"]: self._free_port() for c in defs if c.get("portMappings")}
        checks = {c["name"]: bool(c.get("essential", True)) for c in defs if container_health.has_check(c)}
        return Task(moto=moto_task, key=key, deployment_id="", ports=ports, checks=checks)

    def _start(
        self, task: Task, td: Any, defs: list[dict[str, Any]], view: ServiceView | None, provider: str | None
    ) -> bool:
        """Place the task (EC2) and start its thread; False when no container instance can take it."""
        key, moto_task = task.key, task.moto
        if moto_task.launch_type == "EC2":
            # An Auto Scaling group provider places only on its group's instances.
            group = self.world.provider_instances(key.region, provider) if provider else None
            placed = self.placer.place(key, td, moto_task.task_arn, task.ports, only=group)
            if isinstance(placed, Unplaced):
                if placed.new and key.name:
                    self._event(key, placed.message)
                    self.ledger.fact("task_unplaced", key.name, placed.message)
                return False
            task.placement = placed
            moto_task.container_instance_arn = placed.instance.arn
        self.world.put_task(key.region, moto_task)
        self._spawn(self._run_task, (task, defs, view), f"task-{task.short_id[:8]}")
        return True

    def _spawn(self, target: Callable[..., None], args: tuple[Any, ...], name: str) -> None:
        def run() -> None:
            try:
                target(*args)
            finally:
                with self._threads_lock:
                    self._threads.discard(th)

        th = threading.Thread(target=run, name=name, daemon=True)
        with self._threads_lock:
            self._threads.add(th)
            self._threads_started += 1
        th.start()

    def _current(self, tgt: Target) -> TargetGroupView:
        """The target group's settings as they are now: ELBv2 applies a changed health check or deregistration
        delay to the targets already registered, not only to new ones."""
        fresh = self.world.target_group(tgt.tg.arn.split(":")[3], tgt.tg.arn)
        if fresh is not None:
            tgt.tg = fresh
        return tgt.tg

    def _stop_task(self, t: Task, reason: str, code: str, *, drain: bool) -> None:
        if not t.live:
            return
        t.moto.desired_status = "STOPPED"
        t.moto.stopped_reason = reason
        t.moto.stop_code = code
        t.moto.stopping_at = _now()
        delay = 0.0
        for tgt in t.targets:
            if tgt.gone or tgt.state == "draining":
                continue
            drain_for = self._current(tgt).deregistration_delay
            delay = max(delay, drain_for)
            tgt.state, tgt.reason, tgt.description = (
                "draining",
                "Target.DeregistrationInProgress",
                "Target deregistration is in progress",
            )
            tgt.drain_until = time.monotonic() + self.config.real(drain_for)
            self.ledger.fact("target_draining", tgt.subject)
        if t.moto.last_status == "RUNNING":
            t.moto.last_status = "DEACTIVATING"
        if drain and delay > 0:
            t.draining_until = time.monotonic() + self.config.real(delay)
        else:
            t.end()

    def _fail_task(self, state: ServiceState, t: Task, reason: str, code: str) -> None:
        if not t.live:
            return
        for dep in state.deployments:
            if dep.id == t.deployment_id:
                dep.failed += 1
                dep.updated = _now()
        self._stop_task(t, reason, code, drain=False)
        state.next_launch_at = time.monotonic() + self.config.real(self.config.retry_delay)

    def _run_task(self, task: Task, defs: list[dict[str, Any]], view: ServiceView | None) -> None:
        """Own every docker call for one task: pull, start, watch, stop, report."""
        key = task.key
        started: dict[str, Any] = {}
        log_threads: list[threading.Thread] = []
        try:
            with self.world.lock:
                task.moto.last_status = "PENDING"
            for d in defs:
                self._pull(d.get("image", ""))
            delay = self.config.service_start_delay.get(key.name, self.config.task_start_delay)
            if delay and task.kill.wait(delay):
                raise _Abort()
            if task.kill.is_set():
                raise _Abort()
            # What ECS does before any container starts: read the secrets (with the execution role) and set up
            # each awslogs stream; either failing stops the task with ResourceInitializationError.
            files, secrets = self._initialize(task, defs)
            sibling_env = {f"PORT_{n.upper().replace('-', '_')}": str(p) for n, p in task.ports.items()}
            # versionConsistency "disabled": ECS resolves no digest for the revision; each task pulls the tag.
            unresolved = {d["name"] for d in defs if d.get("versionConsistency") == "disabled"}
            for d in defs:
                name = d["name"]
                # `environment` takes precedence over the environment files; secrets cannot share a name.
                env = dict(files.get(name, {}))
                env.update({e["name"]: e["value"] for e in d.get("environment") or []})
                env.update(secrets.get(name, {}))
                env.update(sibling_env)
                if name in task.ports:
                    env["PORT"] = str(task.ports[name])
                container = self.docker.containers.create(
                    d["image"],
                    command=d.get("command"),
                    entrypoint=d.get("entryPoint"),
                    working_dir=d.get("workingDirectory"),
                    environment=env,
                    network_mode="host",
                    healthcheck=container_health.docker_healthcheck(d, self.config.health),
                    name=f"ecs-sim-{key.cluster}-{task.short_id[:12]}-{name}",
                    labels={LABEL: "1", f"{LABEL}.run": self.config.run_label, f"{LABEL}.task": task.arn},
                )
                started[name] = container
                self._events.watch(str(container.id), task.wake)
                container.start()
                lt = self._ship_logs(task, d, container)
                if lt is not None:
                    log_threads.append(lt)
            with self.world.lock:
                task.started_mono = time.monotonic()
                task.moto.last_status = "RUNNING"
                task.moto.started_at = _now()
                for c in task.moto.containers:
                    c.last_status = "RUNNING"
                    c.runtime_id = started[c.name].id
                    c.image_digest = self._digest(started[c.name], c.image)
                    if c.name not in unresolved:
                        self.history.resolved(task.revision_arn, c.name, c.image_digest)
                    c.network_bindings = (
                        task.placement.network_bindings(c.name)
                        if task.placement is not None and task.placement.bindings
                        else [
                            {
                                "bindIP": "127.0.0.1",
                                "containerPort": task.ports[c.name],
                                "hostPort": task.ports[c.name],
                                "protocol": "tcp",
                            }
                        ]
                        if c.name in task.ports
                        else []
                    )
                self.ledger.fact("task_started", task.arn, task.deployment_id)
                if view is not None:
                    self._register_targets(task, view)
            self._watch(task, started)
        except _Abort:
            pass
        except _InitializationFailed as exc:
            self._early_failure(task, f"{exc.kind}: {exc}")
        except docker.errors.ImageNotFound as exc:
            self._early_failure(task, f"CannotPullContainerError: {_short(exc)}")
        except docker.errors.APIError as exc:
            reason = (
                f"CannotPullContainerError: {_short(exc)}"
                if not started
                else f"CannotStartContainerError: {_short(exc)}"
            )
            self._early_failure(task, reason)
        except Exception as exc:  # a task must always end in STOPPED, whatever broke
            self._early_failure(task, f"ResourceInitializationError: {_short(exc)}")
        finally:
            with self.world.lock:
                if task.moto.last_status in ("RUNNING", "DEACTIVATING"):
                    task.moto.last_status = "STOPPING"
            codes = self._teardown(started, defs)
            for lt in log_threads:
                lt.join(timeout=5)
            with self.world.lock:
                self._finish(task, codes)
            # Exit codes and logs are read: the stopped task lives on in the API only, as on Fargate. Left
            # behind, a suite's thousands of stopped containers slow every call the engine answers.
            for c in started.values():
                self._events.forget(str(c.id))
                with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
                    c.remove(force=True)

    def _pull(self, image: str) -> None:
        self._pulls.run(image, lambda: self._pull_once(image))

    def _pull_once(self, image: str) -> None:
        repo, ref = split_repo_tag(image)
        host = repo.split("/", 1)[0] if "/" in repo else ""
        auth = self.config.registry_auth.get(host)
        self.docker.api.pull(repo, tag=ref, auth_config=auth)  # raises APIError on failure
        try:
            self.docker.images.get(image)
        except docker.errors.ImageNotFound as exc:
            raise docker.errors.APIError(f"pull access denied or manifest unknown for {image}") from exc

    def _digest(self, container: Any, image: str) -> str | None:
        """The manifest digest ECS reports for a container: the one the image reference pins, else the one
        its repository's tag resolved to when pulled."""
        _, at, pinned = image.partition("@")
        if at:
            return pinned
        try:
            digests = self.docker.images.get(container.image.id).attrs.get("RepoDigests") or []
        except docker.errors.APIError:
            return None
        name = split_repo_tag(image)[0]
        ours = [d for d in digests if d.split("@", 1)[0] == name] or digests
        return str(ours[0].split("@", 1)[1]) if ours else None

    def _watch(self, task: Task, started: dict[str, Any]) -> None:
        essential = {c.name: c.essential for c in task.moto.containers}
        exited: set[str] = set()
        while not task.kill.is_set():
            # An engine event (exit, health change) wakes this at once; the timer only covers an event lost
            # while the events stream reconnected.
            task.wake.wait(self.config.container_poll)
            task.wake.clear()
            if task.kill.is_set():
                return
            for name, c in started.items():
                if name in exited:
                    continue
                try:
                    c.reload()
                except docker.errors.NotFound:
                    status, code = "exited", 137
                else:
                    status, code = c.status, int(c.attrs["State"].get("ExitCode", 0))
                    if name in task.checks and status == "running":
                        self._note_health(task, name, container_health.container_health(c.attrs))
                if status in ("exited", "dead"):
                    exited.add(name)
                    with self.world.lock:
                        for mc in task.moto.containers:
                            if mc.name == name:
                                mc.last_status = "STOPPED"
                                mc.exit_code = code
                        if essential.get(name, True) and task.live:
                            state = self.services.get(task.key)
                            why, stop_code = "Essential container in task exited", "EssentialContainerExited"
                            if state is not None:
                                self._fail_task(state, task, why, stop_code)
                            else:  # a RunTask task (or a retired service's): it just stops
                                self._stop_task(task, why, stop_code, drain=False)

    def _note_health(self, task: Task, name: str, health: str) -> None:
        with self.world.lock:
            for mc in task.moto.containers:
                if mc.name == name and mc.health_status != health:
                    mc.health_status = health
                    self.ledger.fact("container_health", task.arn, f"{name} {health}")
            task.moto.health_status = container_health.task_health(
                (c.essential, c.name in task.checks, c.health_status) for c in task.moto.containers
            )

    def _teardown(self, started: dict[str, Any], defs: list[dict[str, Any]]) -> dict[str, int]:
        codes: dict[str, int] = {}
        # Each container's stopTimeout where its definition sets one (ECS waits that long after SIGTERM before it
        # kills the container), else the sandbox's stand-in for ECS's 30 s default.
        timeouts = {str(d.get("name")): d.get("stopTimeout") for d in defs}
        for name, c in started.items():
            wanted = timeouts.get(name)
            grace_aws = float(wanted) if isinstance(wanted, int) and wanted >= 0 else self.config.stop_timeout
            # At the session's end no one waits for a graceful stop (see stop()). Otherwise docker counts whole
            # seconds; 0 would kill without the SIGTERM ECS always sends first.
            grace = 0 if self._stop.is_set() else int(max(1, round(self.config.real(grace_aws))))
            try:
                c.stop(timeout=grace)
                c.reload()
                codes[name] = int(c.attrs["State"].get("ExitCode", 0))
            except (docker.errors.APIError, requests.exceptions.RequestException):
                pass  # the engine is gone (session teardown) or the container with it: no exit code to read
        return codes

    def _initialize(
        self, task: Task, defs: list[dict[str, Any]]
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
        """Each container's environment files and secrets as environment values; raises _InitializationFailed as
        ECS stops the task."""
        files: dict[str, dict[str, str]] = {}
        out: dict[str, dict[str, str]] = {}
        for d in defs:
            for entry in d.get("environmentFiles") or []:
                try:
                    # Processed top down: a later file's value for a name replaces an earlier one's.
                    files.setdefault(d["name"], {}).update(self.world.env_file(str(entry.get("value", ""))))
                except SecretUnavailable as exc:
                    raise _InitializationFailed(str(exc)) from None
            for secret in d.get("secrets") or []:
                try:
                    value = self.world.secret_value(task.key.region, str(secret.get("valueFrom", "")))
                except SecretUnavailable as exc:
                    raise _InitializationFailed(
                        f"unable to pull secrets or registry auth: execution resource retrieval failed: {exc}"
                    ) from None
                out.setdefault(d["name"], {})[str(secret.get("name", ""))] = value
            conf = d.get("logConfiguration") or {}
            opts = conf.get("options") or {}
            if conf.get("logDriver") == "awslogs" and opts.get("awslogs-group"):
                group = str(opts["awslogs-group"])
                region = str(opts.get("awslogs-region") or task.key.region)
                create = str(opts.get("awslogs-create-group", "")).lower() == "true"
                if not create and not self.world.log_group_exists(region, group):
                    self.ledger.fact("log_group_missing", task.arn, group)
                    if task.moto.launch_type == "EC2":
                        # The container instance's Docker daemon meets it as it creates the container.
                        raise _InitializationFailed(
                            "Error response from daemon: failed to initialize logging driver: failed to create "
                            "Cloudwatch log stream: ResourceNotFoundException: The specified log group does not "
                            "exist.",
                            kind="CannotStartContainerError",
                        )
                    raise _InitializationFailed(
                        "failed to validate logger args: create stream has been retried 1 times: failed to create "
                        "Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist."
                    )
        return files, out

    def _early_failure(self, task: Task, reason: str) -> None:
        with self.world.lock:
            state = self.services.get(task.key)
            if state is not None and task.live:
                self._fail_task(state, task, reason, "TaskFailedToStart")
            elif task.live:
                self._stop_task(task, reason, "TaskFailedToStart", drain=False)
            for c in task.moto.containers:
                if c.last_status != "STOPPED":
                    c.reason = reason

    def _finish(self, task: Task, codes: dict[str, int]) -> None:
        for c in task.moto.containers:
            if c.exit_code is None and c.name in codes:
                c.exit_code = codes[c.name]
            c.last_status = "STOPPED"
        if task.live:  # ended without anyone asking: treat as an exit
            task.moto.desired_status = "STOPPED"
            task.moto.stopped_reason = task.moto.stopped_reason or "Essential container in task exited"
        task.moto.last_status = "STOPPED"
        task.moto.stopped_at = _now()
        task.done = True
        self.placer.release(task.arn)
        for tgt in task.targets:
            if not tgt.gone and tgt.state != "draining":
                tgt.state, tgt.reason, tgt.description = (
                    "draining",
                    "Target.DeregistrationInProgress",
                    "Target deregistration is in progress",
                )
                tgt.drain_until = time.monotonic() + self.config.real(self._current(tgt).deregistration_delay)
        self.ledger.fact("task_stopped", task.arn, task.moto.stopped_reason or "")
        self._event(task.key, f"(service {task.key.name}) has stopped 1 running tasks: (task {task.short_id}).")
        state = self.services.get(task.key)
        if state is not None:
            self._publish(state)

    # --- logs ------------------------------------------------------------------------------------
    def _ship_logs(self, task: Task, d: dict[str, Any], container: Any) -> threading.Thread | None:
        conf = d.get("logConfiguration") or {}
        if conf.get("logDriver") != "awslogs":
            return None
        opts = conf.get("options") or {}
        group = opts.get("awslogs-group")
        if not group:
            return None
        prefix = opts.get("awslogs-stream-prefix")
        stream = f"{prefix}/{d['name']}/{task.short_id}" if prefix else task.short_id
        region = opts.get("awslogs-region", task.key.region)
        with self.world.lock:
            ok = self.world.ensure_log_stream(
                region, group, stream, str(opts.get("awslogs-create-group", "")).lower() == "true"
            )
        if not ok:
            self.ledger.fact("log_group_missing", task.arn, group)
            return None

        def pump() -> None:
            buf = b""
            try:
                for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    self._put_lines(region, group, stream, lines)
            except Exception:  # the container went away; whatever was read is shipped
                pass
            if buf:
                self._put_lines(region, group, stream, [buf])

        th = threading.Thread(target=pump, name=f"logs-{task.short_id[:8]}", daemon=True)
        th.start()
        return th

    def _put_lines(self, region: str, group: str, stream: str, lines: list[bytes]) -> None:
        if not lines:
            return
        ts = int(time.time() * 1000)
        with self.world.lock:
            self.world.put_log_lines(region, group, stream, [(ts, ln.decode("utf-8", "replace")) for ln in lines])

    # --- targets and health checks ----------------------------------------------------------------
    def _register_targets(self, task: Task, view: ServiceView) -> None:
        for lb in view.load_balancers:
            arn = lb.get("targetGroupArn")
            if task.target_group and (lb.get("advancedConfiguration") or {}).get("alternateTargetGroupArn"):
                arn = task.target_group
            name = lb.get("containerName")
            if not arn or name not in task.ports:
                continue
            tg = self.world.target_group(task.key.region, arn)
            if tg is None:
                continue
            placed = task.placement
            host_port = placed.host_port(name, int(lb.get("containerPort") or 0)) if placed else None
            if tg.target_type == "instance" and placed is not None and host_port is not None:
                tgt = Target(tg=tg, ip=placed.instance.ec2_instance_id, port=host_port, host=placed.address)
            else:
                tgt = Target(tg=tg, ip="127.0.0.1", port=task.ports[name])
            task.targets.append(tgt)
            self.ledger.fact("target_initial", tgt.subject)
            self._event(task.key, f"(service {task.key.name}) registered 1 targets in (target-group {arn})")
            self._spawn(self._check_loop, (task, tgt), f"hc-{tgt.port}")

    def _check_loop(self, task: Task, tgt: Target) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            with self.world.lock:
                if tgt.gone or tgt.state == "draining":
                    return
            tg = self._current(tgt)  # each check as the group is set now (path, port, timings, matcher)
            port = tgt.port if tg.health_check_port == "traffic-port" else int(tg.health_check_port)
            url = f"http://{tgt.host}:{port}{tg.health_check_path}"
            # A loopback probe cut shorter than half a second fails on a busy machine, not in the world.
            timeout = max(0.5, self.config.health(tg.timeout))
            ok, reason, description = self._probe(session, url, tg.matcher, timeout)
            with self.world.lock:
                if tgt.gone or tgt.state == "draining":
                    return
                self._apply_check(task, tgt, ok, reason, description)
            if self._stop.wait(self.config.health(tg.interval)):
                return

    @staticmethod
    def _probe(session: requests.Session, url: str, matcher: str, timeout: float) -> tuple[bool, str, str]:
        try:
            r = session.get(url, timeout=timeout, allow_redirects=False)
        except requests.Timeout:
            return False, "Target.Timeout", "Request timed out"
        except requests.RequestException:
            return False, "Target.FailedHealthChecks", "Health checks failed"
        if _match(r.status_code, matcher):
            return True, "", ""
        return False, "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{r.status_code}]"

    def _apply_check(self, task: Task, tgt: Target, ok: bool, reason: str, description: str) -> None:
        tg = tgt.tg
        if ok:
            tgt.ok_streak += 1
            tgt.fail_streak = 0
            if tgt.state != "healthy" and tgt.ok_streak >= tg.healthy_threshold:
                tgt.state, tgt.reason, tgt.description = "healthy", None, None
                tgt.unhealthy_since = None
                self.ledger.fact("target_healthy", tgt.subject)
            elif tgt.state == "initial":
                tgt.reason, tgt.description = "Elb.InitialHealthChecking", "Initial health checks in progress"
            return
        tgt.fail_streak += 1
        tgt.ok_streak = 0
        if tgt.state == "initial" and tgt.fail_streak < tg.unhealthy_threshold:
            tgt.reason, tgt.description = "Elb.InitialHealthChecking", "Initial health checks in progress"
            return
        if tgt.fail_streak >= tg.unhealthy_threshold:
            if tgt.state != "unhealthy" or tgt.reason != reason:
                self.ledger.fact("target_unhealthy", tgt.subject, reason)
                self._event(
                    task.key,
                    f"(service {task.key.name}) (port {tgt.port}) is unhealthy in target-group {tg.name} "
                    f"due to (reason {description}).",
                )
            if tgt.state != "unhealthy":
                tgt.unhealthy_since = time.monotonic()
            tgt.state, tgt.reason, tgt.description = "unhealthy", reason, description

    # --- writing back --------------------------------------------------------------------------------
    def _event(self, key: ServiceKey, message: str) -> None:
        with contextlib.suppress(KeyError):
            self.world.add_event(key, message)

    def _deployment_dicts(self, state: ServiceState, view: ServiceView | None) -> list[dict[str, Any]]:
        out = []
        for dep in state.deployments:
            counts = self._counts(state, dep)
            out.append(
                {
                    "id": dep.id,
                    "status": dep.status,
                    "taskDefinition": dep.task_definition_arn,
                    "desiredCount": dep.desired,
                    "pendingCount": counts.pending,
                    "runningCount": counts.running,
                    "failedTasks": dep.failed,
                    "createdAt": dep.created,
                    "updatedAt": dep.updated,
                    **(
                        {"capacityProviderStrategy": [dict(p) for p in dep.strategy]}
                        if dep.strategy
                        else {"launchType": dep.launch_type}
                    ),
                    "platformVersion": "1.4.0",
                    "platformFamily": "Linux",
                    "networkConfiguration": (view.network_configuration or None) if view else None,
                    "rolloutState": dep.rollout,
                    "rolloutStateReason": dep.rollout_reason,
                }
            )
        return out

    def _publish(self, state: ServiceState) -> None:
        view = self.world.service_view(state.key)
        if view is None:
            return
        deps = self._deployment_dicts(state, view)
        history = self.history.for_service(state.key)
        self._observe(state)
        self.world.write_service(
            state.key,
            deployments=deps,
            running=sum(d["runningCount"] for d in deps),
            pending=sum(d["pendingCount"] for d in deps),
            task_definition_arn=state.deployments[0].task_definition_arn if state.deployments else None,
            current_deployment=history[0].arn if history else None,
            current_revisions=self.history.current_revisions([d.revision_arn for d in state.deployments]),
        )


def _pair(view: ServiceView) -> tuple[str, str, str, str | None] | None:
    """(targetGroupArn, alternateTargetGroupArn, productionListenerRule, testListenerRule) of the service's
    load balancer with an advancedConfiguration, if it has one."""
    for lb in view.load_balancers:
        advanced = lb.get("advancedConfiguration") or {}
        main, alternate, rule = (
            lb.get("targetGroupArn"),
            advanced.get("alternateTargetGroupArn"),
            advanced.get("productionListenerRule"),
        )
        if main and alternate and rule:
            return str(main), str(alternate), str(rule), advanced.get("testListenerRule")
    return None


class _InitializationFailed(Exception):
    """What ECS reports as ResourceInitializationError (on EC2, some as CannotStartContainerError): the task
    never starts its containers."""

    def __init__(self, message: str, kind: str = "ResourceInitializationError") -> None:
        super().__init__(message)
        self.kind = kind


class _Abort(Exception):
    """The task was told to stop before its containers started."""


def _short(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip().splitlines()[0][:300] if text else type(exc).__name__
