"""Follow one ECS deployment until its tasks serve behind the ALB, or say exactly why they do not.

Two halves: ``assess`` is pure (a snapshot of the world in, a verdict out) so every decision is unit-tested
on scripted sequences; ``Watcher`` polls the APIs, prints what changed, and on failure gathers the
diagnosis (stopped reasons, exit codes, log tails, target reason codes, events).

What counts is *this* deployment: its tasks are found by ``startedBy == deployment id`` (ECS sets it), and
their targets are matched by address and port in every target group of the service. A deployment is judged
by its own tasks' health, never by the service's aggregate counts, which include the old tasks.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .aws import Clients
from .errors import DeployError

SCALE_IN = "Scaling activity initiated by"


# --------------------------------------------------------------------------------------------
# snapshot: plain data read from the APIs
# --------------------------------------------------------------------------------------------
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
class ContainerState:
    name: str
    last_status: str
    exit_code: int | None
    reason: str | None


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

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def failed(self) -> bool:
        """Stopped for a reason other than ECS scaling it in after a newer deployment took over."""
        return self.desired_status == "STOPPED" and not (self.stopped_reason or "").startswith(SCALE_IN)


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


@dataclass(frozen=True)
class Snapshot:
    at: float
    deployments: tuple[DeploymentState, ...]
    tasks: tuple[TaskState, ...]  # tasks started by the watched deployment, running or stopped
    targets: tuple[TargetState, ...]  # every target of every target group of the service
    events: tuple[Event, ...]  # newest first, as ECS returns them
    grace_period: int


@dataclass(frozen=True)
class Goal:
    deployment_id: str
    until: str  # serving | stable
    load_balancers: tuple[LoadBalancerBinding, ...]

    @property
    def target_groups(self) -> list[str]:
        """Each target group once, even when two containers (or ports) of the task register in it."""
        return list(dict.fromkeys(lb.target_group for lb in self.load_balancers))


@dataclass(frozen=True)
class Verdict:
    kind: str  # waiting | serving | stable | failed
    reason: str = ""
    # The task definition of the deployment that took over from ours (another run, a person, or ECS's own
    # circuit-breaker rollback): rolling back over it could undo someone else's newer deploy.
    superseded_by: str | None = None


def own_tasks(snap: Snapshot, goal: Goal) -> list[TaskState]:
    return [t for t in snap.tasks if t.started_by == goal.deployment_id]


def targets_of(task: TaskState, goal: Goal, targets: Iterable[TargetState]) -> list[TargetState]:
    """A task's targets: same address, and a port the task's load-balanced container listens on."""
    out = []
    for t in targets:
        if task.ip is None or t.id != task.ip:
            continue
        for lb in goal.load_balancers:
            if t.target_group == lb.target_group and (t.port in task.ports or t.port == lb.container_port):
                out.append(t)
                break
    return out


def describe_task_failure(task: TaskState) -> str:
    parts = [f"task {task.id} stopped: {task.stopped_reason or 'no reason given'}"]
    for c in task.containers:
        bits = []
        if c.exit_code is not None:
            bits.append(f"exit code {c.exit_code}")
        if c.reason:
            bits.append(c.reason)
        if bits:
            parts.append(f"container {c.name}: {', '.join(bits)}")
    return "; ".join(parts)


def describe_target(t: TargetState) -> str:
    why = f" ({t.reason}: {t.description})" if t.reason else ""
    return f"target {t.id}:{t.port} in {t.tg_name} is {t.state}{why}"


def assess(snap: Snapshot, goal: Goal) -> Verdict:
    ours = next((d for d in snap.deployments if d.id == goal.deployment_id), None)
    primary = next((d for d in snap.deployments if d.status == "PRIMARY"), None)
    if ours is None:
        if primary is not None:
            return Verdict(
                "failed",
                f"deployment {goal.deployment_id} is gone: the service now runs deployment {primary.id} "
                f"({primary.task_definition.rsplit('/', 1)[-1]})",
                superseded_by=primary.task_definition,
            )
        return Verdict("failed", f"deployment {goal.deployment_id} is gone and the service has no deployment")
    if ours.rollout_state == "FAILED":
        return Verdict("failed", f"ECS marked deployment {ours.id} FAILED: {ours.rollout_reason or 'no reason given'}")
    if ours.status != "PRIMARY" and primary is not None and primary.id != ours.id:
        return Verdict(
            "failed",
            f"deployment {ours.id} was replaced by deployment {primary.id} "
            f"({primary.task_definition.rsplit('/', 1)[-1]})",
            superseded_by=primary.task_definition,
        )

    mine = own_tasks(snap, goal)
    failed = [t for t in mine if t.failed]
    if failed:
        return Verdict("failed", describe_task_failure(failed[0]))

    running = [t for t in mine if t.last_status == "RUNNING" and t.desired_status == "RUNNING"]
    unhealthy: list[TargetState] = []
    healthy_tasks = 0
    for task in running:
        tt = targets_of(task, goal, snap.targets)
        past_grace = task.started_at is None or snap.at - task.started_at >= snap.grace_period
        bad = [t for t in tt if t.state == "unhealthy"]
        if bad and past_grace:
            unhealthy.extend(bad)
        groups_healthy = {t.target_group for t in tt if t.state == "healthy"}
        if all(tg in groups_healthy for tg in goal.target_groups):
            healthy_tasks += 1
    if unhealthy:
        return Verdict("failed", describe_target(unhealthy[0]))

    if healthy_tasks < ours.desired or ours.running < ours.desired:
        return Verdict("waiting")
    only_ours = all(d.id == ours.id for d in snap.deployments)
    if only_ours and ours.rollout_state in (None, "COMPLETED"):
        return Verdict("stable")
    return Verdict("serving")


# --------------------------------------------------------------------------------------------
# reading snapshots
# --------------------------------------------------------------------------------------------
def _ts(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return None


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
        created_at=_ts(d.get("createdAt")),
    )


def parse_task(t: Mapping[str, Any], load_balanced: set[str]) -> TaskState:
    ip = None
    for att in t.get("attachments") or []:
        for detail in att.get("details") or []:
            if detail.get("name") == "privateIPv4Address":
                ip = detail.get("value")
    for c in t.get("containers") or []:
        for ni in c.get("networkInterfaces") or []:
            ip = ip or ni.get("privateIpv4Address")
    ports: set[int] = set()
    for c in t.get("containers") or []:
        if load_balanced and c.get("name") not in load_balanced:
            continue
        for b in c.get("networkBindings") or []:
            for key in ("hostPort", "containerPort"):
                if b.get(key):
                    ports.add(int(b[key]))
    return TaskState(
        arn=str(t["taskArn"]),
        last_status=str(t.get("lastStatus", "")),
        desired_status=str(t.get("desiredStatus", "")),
        started_by=str(t.get("startedBy", "")),
        task_definition=str(t.get("taskDefinitionArn", "")),
        stopped_reason=t.get("stoppedReason"),
        stop_code=t.get("stopCode"),
        started_at=_ts(t.get("startedAt")),
        ip=ip,
        ports=frozenset(ports),
        containers=tuple(
            ContainerState(
                name=str(c.get("name", "")),
                last_status=str(c.get("lastStatus", "")),
                exit_code=c.get("exitCode"),
                reason=c.get("reason"),
            )
            for c in t.get("containers") or []
        ),
    )


def bindings_of(service: Mapping[str, Any]) -> tuple[LoadBalancerBinding, ...]:
    return tuple(
        LoadBalancerBinding(
            str(lb["targetGroupArn"]), str(lb.get("containerName", "")), int(lb.get("containerPort", 0))
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

    def snapshot(self, goal: Goal) -> Snapshot:
        resp = self.clients.ecs.describe_services(cluster=self.cluster, services=[self.service])
        if not resp.get("services"):
            raise DeployError(f"failed to describe service {self.service} in cluster {self.cluster}: it is gone")
        svc = resp["services"][0]
        arns: list[str] = []
        for status in ("RUNNING", "STOPPED"):
            arns += self.clients.ecs.list_tasks(
                cluster=self.cluster, startedBy=goal.deployment_id, desiredStatus=status
            ).get("taskArns", [])
        tasks: list[TaskState] = []
        load_balanced = {lb.container for lb in goal.load_balancers}
        for i in range(0, len(arns), 100):
            resp = self.clients.ecs.describe_tasks(cluster=self.cluster, tasks=arns[i : i + 100])
            tasks += [parse_task(t, load_balanced) for t in resp.get("tasks", [])]
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
                Event(str(e.get("id", "")), _ts(e.get("createdAt")) or 0.0, str(e.get("message", "")))
                for e in svc.get("events", [])
            ),
            grace_period=int(svc.get("healthCheckGracePeriodSeconds") or 0),
        )


# --------------------------------------------------------------------------------------------
# the watcher
# --------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    ok: bool
    verdict: Verdict
    milestones: dict[str, float]  # name -> seconds since the watch began
    diagnosis: list[str]
    last: Snapshot | None


@dataclass
class Watcher:
    reader: Reader
    goal: Goal
    timeout: float
    interval: float
    say: Callable[[str], None]
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    log_tail: Callable[[TaskState], list[str]] | None = None
    jitter: Callable[[], float] = field(default_factory=lambda: random.Random().random)
    since: float | None = None  # only events after this time are news
    progress: Callable[[str], None] | None = None  # a live one-line status, for terminals
    # Unhealthy targets seen while watching: ECS may stop the task (and drain its target) before the next
    # poll, and the diagnosis must still name the reason code.
    unhealthy_seen: dict[tuple[str, str, int], TargetState] = field(default_factory=dict, init=False, repr=False)

    def run(self) -> Outcome:
        try:
            return self._run()
        finally:
            if self.progress is not None:
                self.progress("")  # the status line must not outlive the watch

    def _run(self) -> Outcome:
        start = self.clock()
        since = self.since if self.since is not None else start
        seen_events: set[str] = set()
        tasks_seen: dict[str, str] = {}
        targets_seen: dict[tuple[str, str, int], str] = {}
        deployment_line = ""
        milestones: dict[str, float] = {}
        last: Snapshot | None = None
        while True:
            snap = self.reader.snapshot(self.goal)
            last = snap
            for e in reversed(snap.events):
                if e.id not in seen_events:
                    seen_events.add(e.id)
                    if e.at >= since - 1:
                        self.say(f"event: {e.message}")
            ours = next((d for d in snap.deployments if d.id == self.goal.deployment_id), None)
            if ours is not None:
                line = (
                    f"deployment {ours.id}: {ours.rollout_state or ours.status}, running {ours.running}/"
                    f"{ours.desired}, pending {ours.pending}, failed {ours.failed}"
                )
                if line != deployment_line:
                    deployment_line = line
                    self.say(line)
            for t in snap.tasks:
                if tasks_seen.get(t.arn) != t.last_status:
                    before = tasks_seen.get(t.arn)
                    tasks_seen[t.arn] = t.last_status
                    arrow = f"{before} -> {t.last_status}" if before else t.last_status
                    self.say(f"task {t.id}: {arrow}")
                    if t.last_status == "RUNNING":
                        milestones.setdefault("first task running", snap.at - start)
                for tg in targets_of(t, self.goal, snap.targets):
                    key = (tg.target_group, tg.id, tg.port)
                    if tg.state == "unhealthy":
                        self.unhealthy_seen[key] = tg
                    desc = tg.state + (f" ({tg.reason})" if tg.reason else "")
                    if targets_seen.get(key) != desc:
                        targets_seen[key] = desc
                        self.say(f"target {tg.id}:{tg.port} in {tg.tg_name}: {desc}")

            verdict = assess(snap, self.goal)
            if self.progress is not None:
                self.progress(self.status_line(snap, verdict, snap.at - start))
            if verdict.kind in ("serving", "stable"):
                if "serving" not in milestones:
                    milestones["serving"] = snap.at - start
                    self.say(f"serving: every new task is healthy in its target groups ({milestones['serving']:.1f}s)")
                if verdict.kind == "stable" and "stable" not in milestones:
                    milestones["stable"] = snap.at - start
                    self.say(f"stable: the old deployment is drained ({milestones['stable']:.1f}s)")
                if self.goal.until == "serving" or verdict.kind == "stable":
                    return Outcome(True, verdict, milestones, [], last)
            if verdict.kind == "failed":
                return Outcome(False, verdict, milestones, self.diagnose(snap, verdict, since), last)
            elapsed = self.clock() - start
            if elapsed >= self.timeout:
                want = "stable" if self.goal.until == "stable" and "serving" in milestones else "serving"
                timed_out = Verdict(
                    "failed", f"timed out after {self.timeout:.0f}s waiting for the deployment to be {want}"
                )
                return Outcome(False, timed_out, milestones, self.diagnose(snap, timed_out, since), last)
            # Jitter spreads the polls of parallel deploys; the interval bounds the API rate.
            delay = self.interval * (0.8 + 0.4 * self.jitter())
            self.sleep(min(delay, max(0.0, self.timeout - elapsed)))

    def status_line(self, snap: Snapshot, verdict: Verdict, elapsed: float) -> str:
        ours = next((d for d in snap.deployments if d.id == self.goal.deployment_id), None)
        mine = [t for t in own_tasks(snap, self.goal) if t.desired_status == "RUNNING"]
        targets = [tg for t in mine for tg in targets_of(t, self.goal, snap.targets)]
        healthy = sum(1 for tg in targets if tg.state == "healthy")
        running = f"{ours.running}/{ours.desired}" if ours else "?"
        return (
            f"… {elapsed:5.1f}s  {verdict.kind:8} tasks running {running}  targets healthy {healthy}/"
            f"{max(len(targets), ours.desired if ours else 0)}  deployments {len(snap.deployments)}"
        )

    def diagnose(self, snap: Snapshot, verdict: Verdict, since: float) -> list[str]:
        lines: list[str] = [verdict.reason]
        mine = own_tasks(snap, self.goal)
        for t in [t for t in mine if t.failed][:3]:
            if describe_task_failure(t) != verdict.reason:
                lines.append(describe_task_failure(t))
            if self.log_tail is not None:
                tail = self.log_tail(t)
                if tail:
                    lines.append(f"last log lines of task {t.id}:")
                    lines += [f"  {line}" for line in tail]
        for t in mine:
            for tg in targets_of(t, self.goal, snap.targets):
                if tg.state != "healthy":
                    text = describe_target(tg)
                    if text not in lines:
                        lines.append(text)
        for tg in self.unhealthy_seen.values():
            text = describe_target(tg)
            if text not in lines:
                lines.append(text)
        ours = next((d for d in snap.deployments if d.id == self.goal.deployment_id), None)
        if ours is not None:
            lines.append(
                f"deployment {ours.id}: rollout {ours.rollout_state}, running {ours.running}/{ours.desired}, "
                f"failed tasks {ours.failed}"
            )
        recent = [e.message for e in snap.events if e.at >= since - 1][:5]
        if recent:
            lines.append("recent service events:")
            lines += [f"  {m}" for m in recent]
        return lines


def log_tail_reader(
    clients: Clients, task_definition: Mapping[str, Any], lines: int = 20
) -> Callable[[TaskState], list[str]]:
    """Fetch the last lines a failed task's containers wrote to CloudWatch Logs (awslogs driver)."""
    configs = {
        str(c.get("name")): (c.get("logConfiguration") or {}).get("options") or {}
        for c in task_definition.get("containerDefinitions", [])
        if (c.get("logConfiguration") or {}).get("logDriver") == "awslogs"
    }

    def tail(task: TaskState) -> list[str]:
        out: list[str] = []
        names: Sequence[str] = [c.name for c in task.containers] or list(configs)
        for name in names:
            opts = configs.get(name)
            if not opts or not opts.get("awslogs-group"):
                continue
            prefix = opts.get("awslogs-stream-prefix")
            stream = f"{prefix}/{name}/{task.id}" if prefix else task.id
            try:
                events = clients.logs.get_log_events(
                    logGroupName=opts["awslogs-group"], logStreamName=stream, limit=lines, startFromHead=False
                ).get("events", [])
            except Exception as exc:  # a missing stream must not hide the rest of the diagnosis
                out.append(f"[{name}] (no logs: {exc})")
                continue
            out += [f"[{name}] {e.get('message', '').rstrip()}" for e in events]
        return out

    return tail
