"""The pure verdict on a rolling deployment: a snapshot in, waiting / serving / stable / failed out.

A deployment is judged by its own tasks' health (found by ``startedBy == deployment id``, which ECS sets),
never by the service's aggregate counts, which include the old tasks.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import Goal, Snapshot, TargetState, TaskState, Verdict
from .placement import placement_failure


def own_tasks(snap: Snapshot, goal: Goal) -> list[TaskState]:
    return [t for t in snap.tasks if t.started_by == goal.deployment_id]


def targets_of(task: TaskState, goal: Goal, targets: Iterable[TargetState]) -> list[TargetState]:
    """A task's targets: its address and a port its load-balanced container listens on (`ip` targets), or its
    EC2 instance id and one of its host ports (`instance` targets)."""
    out = []
    for t in targets:
        if task.ip is not None and t.id == task.ip:
            ports = [lb.container_port for lb in goal.load_balancers if lb.target_group == t.target_group]
            mine = bool(ports) and (t.port in task.ports or t.port in ports)
        else:
            mine = task.instance_id is not None and t.id == task.instance_id and t.port in task.host_ports
            mine = mine and t.target_group in goal.target_groups
        if mine:
            out.append(t)
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

    unplaced = placement_failure(snap, goal, ours)
    if unplaced is not None:
        return unplaced

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
