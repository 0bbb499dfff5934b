"""The pure verdict on a rolling deployment: a snapshot in, waiting / serving / stable / failed out.

A deployment is judged by its own tasks' health (found by ``startedBy == deployment id``, which ECS sets),
never by the service's aggregate counts, which include the old tasks. A task serves when it is RUNNING,
healthy in each of the service's target groups, and HEALTHY by its essential containers' health checks when
it has any; with neither, RUNNING is all ECS itself knows.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import Goal, ServiceDeploymentState, Snapshot, TargetState, TaskState, Verdict
from .placement import placement_failure
from .shifting import paused_verdict, traffic_verdict

SCALE_IN = "Scaling activity initiated by"
# Stop codes of tasks taken away by the capacity underneath them, not by anything in the revision: ECS
# replaces them within the same deployment.
INTERRUPTIONS = {
    "SpotInterruption": "its Spot capacity was reclaimed",
    "TerminationNotice": "its host received a termination notice",
}


def benign_stop(task: TaskState) -> str | None:
    """Why a stopped task says nothing against its revision, or None when its stop is a failure of it.

    Interruptions (Spot, host termination) and ECS scaling the deployment in are not; a task that never
    started (TaskFailedToStart), an essential container that exited, failed health checks, or a task
    stopped by hand are.
    """
    if task.stop_code in INTERRUPTIONS:
        return f"interrupted ({task.stop_code}): {INTERRUPTIONS[task.stop_code]}"
    if (task.stopped_reason or "").startswith(SCALE_IN):
        return "scaled in by ECS"
    return None


def is_failure(task: TaskState) -> bool:
    return task.desired_status == "STOPPED" and benign_stop(task) is None


def own_tasks(snap: Snapshot, goal: Goal) -> list[TaskState]:
    return [t for t in snap.tasks if t.started_by == goal.deployment_id]


def targets_of(task: TaskState, goal: Goal, targets: Iterable[TargetState]) -> list[TargetState]:
    """A task's targets: its address and a port its load-balanced container listens on (`ip` targets), or its
    EC2 instance id and one of its host ports (`instance` targets)."""
    out = []
    for t in targets:
        if task.ip is not None and t.id == task.ip:
            ports = [lb.container_port for lb in goal.load_balancers if t.target_group in lb.groups]
            mine = bool(ports) and (t.port in task.ports or t.port in ports)
        else:
            mine = task.instance_id is not None and t.id == task.instance_id and t.port in task.host_ports
            mine = mine and t.target_group in goal.target_groups
        if mine:
            out.append(t)
    return out


def failed_checks(task: TaskState, goal: Goal) -> list[str]:
    """'container X failed its health check [command]' for each essential container ECS found UNHEALTHY."""
    checks = {c.container: c.command for c in goal.essential_checks}
    unhealthy = [c.name for c in task.containers if c.health_status == "UNHEALTHY" and c.name in checks]
    if not unhealthy and task.health_status == "UNHEALTHY":
        unhealthy = list(checks)  # the task's verdict without the containers' own: name every check
    return [f"container {name} failed its health check [{checks[name]}]" for name in unhealthy]


def describe_task_failure(task: TaskState, goal: Goal | None = None) -> str:
    parts = [f"task {task.id} stopped: {task.stopped_reason or 'no reason given'}"]
    if task.stop_code:
        parts[0] += f" ({task.stop_code})"
    for c in task.containers:
        bits = []
        if c.exit_code is not None:
            bits.append(f"exit code {c.exit_code}")
        if c.reason:
            bits.append(c.reason)
        if bits:
            parts.append(f"container {c.name}: {', '.join(bits)}")
    if goal is not None:
        parts += failed_checks(task, goal)
    return "; ".join(parts)


def describe_unhealthy_task(task: TaskState, goal: Goal) -> str:
    return "; ".join([f"task {task.id} is UNHEALTHY", *failed_checks(task, goal)])


def describe_target(t: TargetState) -> str:
    why = f" ({t.reason}: {t.description})" if t.reason else ""
    return f"target {t.id}:{t.port} in {t.tg_name} is {t.state}{why}"


def serves(task: TaskState, goal: Goal, targets: Iterable[TargetState]) -> bool:
    """RUNNING, HEALTHY by its essential containers' checks if it has any, healthy in every target group."""
    if not task.running:
        return False
    if goal.essential_checks and task.health_status != "HEALTHY":
        return False
    healthy = {t.target_group for t in targets_of(task, goal, targets) if t.state == "healthy"}
    # Of a blue/green pair, the task is in one group only: whichever ECS registered it in.
    return all(any(tg in healthy for tg in lb.groups) for lb in goal.load_balancers)


def serving_means(goal: Goal) -> str:
    """What 'serving' is measured by for this service, in the words the output uses."""
    if goal.target_groups and goal.essential_checks:
        return "healthy in its target groups and by its container health checks"
    if goal.target_groups:
        return "healthy in its target groups"
    if goal.essential_checks:
        return "HEALTHY by its container health checks"
    return "RUNNING"


def image_drift(tasks: Iterable[TaskState], goal: Goal) -> str | None:
    """A running task whose container runs another image than the digest the task definition pins: the
    registry served something else under that digest's name, or the task definition was changed by hand."""
    pinned = dict(goal.digests)
    for task in tasks:
        for c in task.containers:
            want = pinned.get(c.name)
            if want and c.image_digest and c.image_digest != want:
                return (
                    f"task {task.id}: container {c.name} runs image {c.image_digest}, not {want} that the task "
                    "definition pins (and ecs-ship pushed)"
                )
    return None


def ecs_verdict(sd: ServiceDeploymentState, snap: Snapshot, goal: Goal) -> Verdict | None:
    """What ECS's own service deployment settles, whatever the task counts say; None: judge the tasks."""
    why = sd.rollback_reason or sd.status_reason or "no reason given"
    if goal.ecs_rollback:
        if sd.status == "ROLLBACK_FAILED":
            return Verdict("failed", f"ECS could not roll back service deployment {sd.id}: {why}")
        if sd.status == "ROLLBACK_SUCCESSFUL":
            return Verdict("stable")
        ours = next((d for d in snap.deployments if d.id == goal.deployment_id), None)
        if ours is None or ours.rollout_state == "FAILED" or ours.status != "PRIMARY":
            # The deployment watched is the one ECS is rolling back (`continue --rollback` knows no other): its
            # failure is the point, and only the service deployment's status says how the rollback ends.
            return Verdict("waiting")
        return None
    if sd.rolling_back:
        done = "rolled back" if sd.status == "ROLLBACK_SUCCESSFUL" else "is rolling back"
        if sd.status == "ROLLBACK_FAILED":
            done = "failed to roll back"
        return Verdict("failed", f"ECS {done} service deployment {sd.id} ({sd.status}): {why}", ecs_rolling_back=True)
    if sd.status in ("STOPPED", "STOP_REQUESTED"):
        # Usually a newer deployment took over: name it, so that it is never rolled back over.
        primary = next((d for d in snap.deployments if d.status == "PRIMARY"), None)
        newer = primary.task_definition if primary is not None and primary.id != goal.deployment_id else None
        replaced = f"; replaced by deployment {primary.id} ({newer.rsplit('/', 1)[-1]})" if primary and newer else ""
        return Verdict(
            "failed",
            f"ECS stopped service deployment {sd.id} ({sd.status}): {why}{replaced}",
            superseded_by=newer,
            stopped=True,
        )
    # Held at a PAUSE hook at any stage, before the new tasks even start (PRE_SCALE_UP) or after.
    return paused_verdict(sd)


def assess(snap: Snapshot, goal: Goal) -> Verdict:
    if snap.service_deployment is not None:
        settled = ecs_verdict(snap.service_deployment, snap, goal)
        if settled is not None:
            return settled
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

    unplaced = placement_failure(snap, goal, ours)
    if unplaced is not None:
        return unplaced

    mine = own_tasks(snap, goal)
    failed = [t for t in mine if is_failure(t)]
    if failed:
        return Verdict("failed", describe_task_failure(failed[0], goal))

    running = [t for t in mine if t.running]
    drifted = image_drift(running, goal)
    if drifted:
        return Verdict("failed", drifted)
    unhealthy: list[TargetState] = []
    sick: list[TaskState] = []
    for task in running:
        # ECS ignores failing ELB and container health checks for the grace period after a task starts.
        # Without a grace period nothing is ignored, even when this clock runs behind ECS's.
        if snap.grace_period and task.started_at is not None and snap.at - task.started_at < snap.grace_period:
            continue
        unhealthy += [t for t in targets_of(task, goal, snap.targets) if t.state == "unhealthy"]
        if goal.essential_checks and task.health_status == "UNHEALTHY":
            sick.append(task)
    healthy_tasks = sum(1 for task in running if serves(task, goal, snap.targets))
    if sick:
        return Verdict("failed", describe_unhealthy_task(sick[0], goal))
    if unhealthy:
        return Verdict("failed", describe_target(unhealthy[0]))

    if healthy_tasks < ours.desired or ours.running < ours.desired:
        return Verdict("waiting")
    if goal.shifts_traffic:
        # Healthy is not serving yet: production traffic moves to the new tasks at ECS's own pace.
        return traffic_verdict(snap.service_deployment, ours, snap)
    only_ours = all(d.id == ours.id for d in snap.deployments)
    if only_ours and ours.rollout_state in (None, "COMPLETED"):
        return Verdict("stable")
    return Verdict("serving")
