"""Which APIs a poll reads: only what can have changed since the last one, because every call is a cost.

ECS and ELBv2 throttle per account and Region, and every pipeline of a team draws on the same buckets. So a
poll reads the service (DescribeServices: deployments with their counters, events) and from its answer decides
what else is worth a call:

* the deployment's tasks (ListTasks, DescribeTasks) when a deployment's counters moved (a task started, stopped
  or failed; one only placed is read when it runs or stops), while a placement stall or a container health
  check is being judged (neither moves a counter), and at least every ``TASKS_REFRESH`` seconds; the service's
  stopped tasks only when one of ours stopped or failed, ECS names a task started that we have not seen, or,
  while ours cannot be placed, another deployment's tasks stop;
* ECS's service deployment (DescribeServiceDeployments): for a strategy with lifecycle stages, when a
  deployment appeared, went, or changed its status, rollout state or failed count, and as our tasks are placed
  and start; for a rolling update, only when ours failed a task, failed or lost PRIMARY, or another became
  PRIMARY (the record then says why); every poll while traffic shifts or ECS rolls back (lifecycle stages move
  with no counter); and at least every ``SERVICE_DEPLOYMENT_REFRESH`` seconds;
* target health (DescribeTargetHealth, one call per target group) while a running task of ours is not yet
  healthy in its groups, and every ``TARGETS_REFRESH`` seconds after, so that a target turning unhealthy
  while the old deployment drains is still seen.

While every new task runs and only target health is awaited (the longest phase: interval times healthy threshold
per task, 150 s with AWS's defaults), the target groups are what changes, so they are read first and the
service only every ``HEALTH_PHASE_SERVICE_EVERY`` seconds, or at once when a target of ours did anything but
stay ``initial``: turned healthy (confirm the counts before a verdict), unhealthy, draining, or went away.
The tasks and ECS's record are then refreshed only every ``HEALTH_PHASE_REFRESH`` seconds: whatever happens to
a task of ours in that phase moves its target (ECS deregisters a task it stops, and the target drains) or a
counter of the service, and ECS's record moves with the deployment's status, which the service read shows.
With AWS's defaults the 15-second refreshes were a third of a service's reads that were not target health,
and with twenty services in one run every such read is a target-group poll another service waits for.

These functions are pure (the last snapshot and the goal in, a decision out) so the call pattern is unit-tested
without AWS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import DeploymentState, Goal, Snapshot, TargetState, TaskState
from .placement import placement_event
from .rolling import own_tasks, targets_of

TASKS_REFRESH = 15.0
SERVICE_DEPLOYMENT_REFRESH = 15.0
TARGETS_REFRESH = 5.0
# A task of ours that stops in the health phase also takes its target out of the groups, which is news read at
# once: the service's own read only catches what touches no target (an event, a newer deployment).
HEALTH_PHASE_SERVICE_EVERY = 5.0
# The safety net for what moves neither a target nor a counter, while only target health is awaited.
HEALTH_PHASE_REFRESH = 60.0


def counters(goal: Goal, deployments: tuple[DeploymentState, ...]) -> frozenset[tuple[str, str, int, int, int, int]]:
    """What moves when a task that matters is placed, starts, stops or fails: of any deployment while ours is
    not all running (the tasks others stop free what ours need), then of ours alone."""
    ours = next((d for d in deployments if d.id == goal.deployment_id), None)
    placed = ours is not None and not ours.pending and ours.running >= ours.desired
    return frozenset(
        (d.id, d.status, d.desired, d.running, d.pending, d.failed)
        for d in deployments
        if not placed or d.id == goal.deployment_id
    )


def moved(
    before: frozenset[tuple[str, str, int, int, int, int]] | None, now: frozenset[tuple[str, str, int, int, int, int]]
) -> bool:
    """Did a counter that matters move since the tasks were last read? A task that was only placed (pending up)
    is not news: what a verdict needs of it comes when it runs or stops, which moves a counter again (running,
    failed, or running + pending down); the periodic refresh shows one that stays PENDING."""
    if before is None:
        return True
    was = {c[0]: c for c in before}
    for dep_id, status, desired, running, pending, failed in now:
        old = was.pop(dep_id, None)
        if old is None:
            return True
        _, o_status, o_desired, o_running, o_pending, o_failed = old
        if (status, desired, running, failed) != (o_status, o_desired, o_running, o_failed):
            return True
        if running + pending < o_running + o_pending:
            return True
    return bool(was)


def lifecycle(goal: Goal, deployments: tuple[DeploymentState, ...]) -> frozenset[tuple[str, str, str, int, int]]:
    """What moves when ECS's service deployment can have changed: a deployment created or gone, its status,
    rollout state or failed count (the circuit breaker counts failed tasks), or, where the strategy has
    lifecycle stages (blue/green, linear, canary: the green revision scales up, then traffic moves), our tasks'
    progress.

    A rolling update's record adds to DescribeServices only why ECS failed, stopped or rolled back our
    deployment: it is read when ours fails (a failed task, rollout state FAILED), loses PRIMARY, or another
    deployment becomes PRIMARY (a rollback, a newer update). Ours completing and the old deployment draining
    away are no news, nor are our tasks starting."""
    staged = goal.strategy != "ROLLING"
    return frozenset(
        (
            d.id,
            d.status,
            (d.rollout_state or "") if staged or d.rollout_state == "FAILED" else "",
            d.failed,
            d.running + d.pending if staged and d.id == goal.deployment_id else 0,
        )
        for d in deployments
        if staged or d.id == goal.deployment_id or d.status == "PRIMARY"
    )


def lost_tasks(goal: Goal, before: tuple[DeploymentState, ...], snap: Snapshot) -> bool:
    """A task stopped, or failed, where the verdict needs the stopped tasks: one of our deployment, or of any
    deployment while ECS cannot place ours (the tasks others stop free what ours need). The old deployment's
    tasks draining away as ours start are no news."""
    ours = next((d for d in snap.deployments if d.id == goal.deployment_id), None)
    stall = ours is not None and not own_tasks(snap, goal) and placement_event(snap, ours.created_at) is not None
    was = {d.id: d for d in before if stall or d.id == goal.deployment_id}
    for d in snap.deployments:
        old = was.pop(d.id, None)
        if old is not None and (d.running + d.pending < old.running + old.pending or d.failed > old.failed):
            return True
    return bool(was)  # a deployment that mattered went away: its tasks stopped


# ECS's event for each placement: "(service web) has started 2 tasks: (task 0a1b…) (task 2c3d…)."
_STARTED = re.compile(r"has started \d+ tasks?: (.*)")
_TASK_ID = re.compile(r"\(task ([\w-]+)\)")


def started_tasks(snap: Snapshot, goal: Goal) -> set[str]:
    """The ids of the tasks ECS says it started since our deployment began (its service events): a task placed
    and stopped between two polls is named there even when no counter moved."""
    ours = next((d for d in snap.deployments if d.id == goal.deployment_id), None)
    since = ours.created_at if ours is not None and ours.created_at is not None else float("inf")
    found: set[str] = set()
    for e in snap.events:
        m = _STARTED.search(e.message)
        if m and e.at >= since - 1:
            found |= set(_TASK_ID.findall(m.group(1)))
    return found


@dataclass(frozen=True)
class Seen:
    """When each kind of read last happened (the watch's clock; None: never), and what it saw."""

    tasks_at: float | None = None
    tasks_counters: frozenset[tuple[str, str, int, int, int, int]] | None = None
    service_deployment_at: float | None = None
    service_deployment_lifecycle: frozenset[tuple[str, str, str, int, int]] | None = None
    targets_at: float | None = None
    service_at: float | None = None


def stale(at: float | None, now: float, every: float) -> bool:
    return at is None or now - at >= every


def health_phase(last: Snapshot | None, goal: Goal) -> bool:
    """Every task of ours is placed and running and only target health is awaited: read targets first."""
    if last is None or not goal.target_groups or goal.shifts_traffic or goal.ecs_rollback:
        return False
    ours = next((d for d in last.deployments if d.id == goal.deployment_id), None)
    if ours is None or ours.status != "PRIMARY" or ours.pending or ours.running < ours.desired:
        return False
    mine = own_tasks(last, goal)
    running = [t for t in mine if t.running]
    if len(running) < ours.desired or any(t.desired_status == "STOPPED" for t in mine if t.last_status != "STOPPED"):
        return False
    if goal.essential_checks and any(t.health_status != "HEALTHY" for t in running):
        return False  # container health is read from the tasks, not the target groups
    return not all(healthy_in_groups(t, goal, last.targets) for t in running)


def _our_targets(snap: Snapshot, goal: Goal, targets: tuple[TargetState, ...]) -> dict[tuple[str, str, int], str]:
    """The state of each target of our running tasks (as `snap` knows them) in `targets`."""
    mine = [t for t in own_tasks(snap, goal) if t.running]
    return {(tg.target_group, tg.id, tg.port): tg.state for t in mine for tg in targets_of(t, goal, targets)}


def target_gone(last: Snapshot, goal: Goal, targets: tuple[TargetState, ...]) -> bool:
    """A target of one of our running tasks is no longer registered: ECS is stopping that task."""
    return bool(_our_targets(last, goal, last.targets).keys() - _our_targets(last, goal, targets).keys())


def target_news(last: Snapshot, goal: Goal, targets: tuple[TargetState, ...]) -> bool:
    """Did a target of ours do anything but stay `initial`? Then the service is read in the same poll."""
    before, now = _our_targets(last, goal, last.targets), _our_targets(last, goal, targets)
    if before.keys() - now.keys():
        return True
    return any(state != "initial" and before.get(key) != state for key, state in now.items())


def read_service_deployment(
    goal: Goal, seen: Seen, deployments: tuple[DeploymentState, ...], now: float, health: bool = False
) -> bool:
    """`health`: the poll is in the health phase (see `health_phase`), which refreshes less often."""
    if goal.service_deployment_arn is None:
        return False
    if goal.shifts_traffic or goal.ecs_rollback:
        return True
    if lifecycle(goal, deployments) != seen.service_deployment_lifecycle:
        return True
    return stale(seen.service_deployment_at, now, HEALTH_PHASE_REFRESH if health else SERVICE_DEPLOYMENT_REFRESH)


def read_tasks(goal: Goal, seen: Seen, snap: Snapshot, now: float, health: bool = False) -> bool:
    """`snap` holds this poll's deployments and events, with the tasks and targets of the last read; `health`:
    the poll is in the health phase, which refreshes less often."""
    mine = own_tasks(snap, goal)
    ours = next((d for d in snap.deployments if d.id == goal.deployment_id), None)
    # A placement stall is judged by the tasks other deployments are stopping, which move no counter.
    if ours is not None and not mine and placement_event(snap, ours.created_at) is not None:
        return True
    if ours is not None and not mine and not (ours.running or ours.pending or ours.failed):
        return False  # nothing of ours to read yet
    if moved(seen.tasks_counters, counters(goal, snap.deployments)):
        return True
    if stale(seen.tasks_at, now, HEALTH_PHASE_REFRESH if health else TASKS_REFRESH):
        return True
    # ECS's container health verdict moves no counter either.
    return bool(goal.essential_checks) and any(t.running and t.health_status != "HEALTHY" for t in mine)


def read_targets(goal: Goal, seen: Seen, snap: Snapshot, now: float) -> bool:
    """`snap` holds this poll's deployments and tasks, with the targets of the last read."""
    if not goal.target_groups:
        return False
    running = [t for t in own_tasks(snap, goal) if t.running]
    if not running:
        return False  # no task of ours can have a verdict from its targets yet
    if not all(healthy_in_groups(t, goal, snap.targets) for t in running):
        return True
    return stale(seen.targets_at, now, TARGETS_REFRESH)


def healthy_in_groups(task: TaskState, goal: Goal, targets: tuple[TargetState, ...]) -> bool:
    """Healthy in one group of each load balancer binding (of a blue/green pair, the one ECS registered it in)."""
    healthy = {t.target_group for t in targets_of(task, goal, targets) if t.state == "healthy"}
    return all(any(tg in healthy for tg in lb.groups) for lb in goal.load_balancers)
