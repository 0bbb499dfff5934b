"""The verdict on a deployment whose tasks ECS cannot place.

When no container instance has the CPU, memory or ports a task needs (or Fargate has no capacity), ECS creates
no task at all: it writes a service event "... was unable to place a task ..." and keeps retrying, never giving
up by itself. It writes that event once per cause: duplicates are omitted until the cause is resolved or six
hours pass. So the event may predate our deployment (the previous one was stuck on the same cause) and still
be the current word, until ECS reaches a steady state after it, or starts a task after our deployment began. A
task it started before that may have been only part of what it had to place: two tasks wanting one fixed host
port on one instance get "has started 1 tasks" and the event for the other, which still stands.

The deploy fails when such an event is still current, no task of ours exists, no other task of the service is
on its way to STOPPED (its CPU, memory and ports come back when it stops), and the stall has lasted the goal's
patience since the latest of: our deployment's start, the event, and the last time ECS stopped a task of the
service ("has stopped N running tasks"; placement is retried after each). Capacity on its way gets that long
to show.

ECS also writes "(service web) failed to launch a task with (error ECS was unable to assume the role '…' that
was provided for this task …)" when it cannot take on the task's execution or task role (gone, or not trusting
ecs-tasks.amazonaws.com), and retries as for placement, creating no task. Tasks stopping elsewhere do not help
there; an IAM change made a moment before can (IAM is eventually consistent), so the same patience applies.

The deployments' counts cannot tell a stall from a drain: an ACTIVE deployment keeps its desiredCount while the
rolling scheduler holds its tasks (minimumHealthyPercent 100 on a full instance holds them for good), and a
draining task leaves runningCount as it turns DEACTIVATING, so only the tasks themselves say what is stopping.
"""

from __future__ import annotations

from .model import DeploymentState, Event, Goal, Snapshot, Verdict

UNPLACEABLE = ("was unable to place a task", "is unable to place a task", "unable to place tasks")
UNLAUNCHABLE = "failed to launch a task"
# Events after which an earlier placement failure no longer stands (STARTED: only once our deployment began).
STEADY = "has reached a steady state"
STARTED = "has started"
STOPPED = "has stopped"


def placement_event(snap: Snapshot, since: float | None = None) -> Event | None:
    """The newest "unable to place" event, unless ECS has reached a steady state since, or started a task since
    and after `since` (our deployment's start; None: any start counts)."""
    for e in snap.events:  # newest first
        if STEADY in e.message or (STARTED in e.message and (since is None or e.at >= since)):
            return None
        if UNLAUNCHABLE in e.message or any(marker in e.message for marker in UNPLACEABLE):
            return e
    return None


def placement_failure(snap: Snapshot, goal: Goal, ours: DeploymentState) -> Verdict | None:
    if any(t.started_by == goal.deployment_id for t in snap.tasks) or ours.running or ours.pending:
        return None
    event = placement_event(snap, ours.created_at)
    if event is None:
        return None
    launch = UNLAUNCHABLE in event.message
    if snap.stopping and not launch:
        return None  # tasks being stopped free CPU, memory and ports for ours
    last_stop = next((e.at for e in snap.events if STOPPED in e.message), event.at)
    stalled = snap.at - max(event.at, ours.created_at or event.at, last_stop)
    if stalled < goal.placement_patience:
        return None
    what = "launch" if launch else "place"
    return Verdict(
        "failed",
        f"ECS cannot {what} any task of deployment {ours.id} (none placed in {stalled:.0f}s): {event.message}",
    )
