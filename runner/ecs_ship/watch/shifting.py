"""The verdict on a blue/green, linear or canary deployment once its new tasks are healthy.

With these strategies ECS starts the new (green) tasks beside the old (blue) ones, registers them in the
alternate target group, and only then moves the production listener rule's traffic to them — all at once
(BLUE_GREEN), in steps (LINEAR) or after a first share (CANARY) — and keeps blue through the bake time. So
healthy green tasks are not yet serving: the service deployment's lifecycle stage says when production
traffic has moved, and SUCCESSFUL that the bake time is over and blue is gone.
"""

from __future__ import annotations

from .model import DeploymentState, ServiceDeploymentState, Snapshot, Verdict

# Lifecycle stages reached only once production traffic goes to the new revision.
AFTER_PRODUCTION_SHIFT = frozenset({"POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"})


def paused_verdict(sd: ServiceDeploymentState) -> Verdict | None:
    """A deployment held at a PAUSE lifecycle hook: neither failed nor done, and no timeout of ours applies."""
    hook = sd.paused_at
    if hook is None:
        return None
    then = f"; at its timeout ECS will {hook.timeout_action.lower()}" if hook.timeout_action else ""
    return Verdict(
        "paused",
        f"service deployment {sd.id} is paused at {sd.lifecycle_stage or 'a lifecycle stage'} by hook "
        f"{hook.hook_id}{then}",
    )


def traffic_verdict(sd: ServiceDeploymentState | None, ours: DeploymentState, snap: Snapshot) -> Verdict:
    """Every new task is healthy: serving once production traffic has moved, stable once ECS says SUCCESSFUL.
    Without ECS's service deployment (an API that lacks it) the shift cannot be seen: only blue gone counts."""
    if sd is None:
        only_ours = all(d.id == ours.id for d in snap.deployments)
        return Verdict("stable") if only_ours and ours.rollout_state in (None, "COMPLETED") else Verdict("waiting")
    if sd.status == "SUCCESSFUL":
        return Verdict("stable")
    if sd.lifecycle_stage in AFTER_PRODUCTION_SHIFT:
        return Verdict("serving")
    return Verdict("waiting", f"healthy; ECS is at {sd.lifecycle_stage or sd.status}")
