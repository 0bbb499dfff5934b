"""Version consistency: the image digests ECS resolved for this deploy are the ones ecs-ship pushed.

ECS resolves each container's image to a digest once per service revision (`versionConsistency`, on by default)
and records it in the revision's `containerImages`. ecs-ship pins its images by digest, so a difference means
the service runs something else than this run built: a task definition changed by hand between register and
update, a registry that serves other content under the name, or a container whose consistency is disabled
and whose tag moved. Every task of the revision runs what the revision recorded, so it is checked once, after
the deployment serves. The watch has already read the new tasks, whose containers name the digest each runs
(DescribeTasks' ``imageDigest``): when they name one for every container pushed, they answer, and the revision
is read only when they do not (an endpoint that leaves the field out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import deploy
from .aws import Clients
from .watch.model import TaskState


def mismatches(pushed: Mapping[str, str], resolved: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per container whose resolved digest differs from the one pushed for it.

    ``pushed``: container -> digest; ``resolved``: the revision's ``containerImages``. A container ECS has not
    resolved (no digest recorded yet, or consistency disabled and not yet pulled) is not a mismatch.
    """
    lines = []
    for image in resolved:
        name = str(image.get("containerName", ""))
        want, got = pushed.get(name), image.get("imageDigest")
        if want and got and got != want:
            # A task's container names no image reference, only the digest it runs.
            what = f"ECS resolved {image['image']} to" if image.get("image") else "a task runs"
            lines.append(f"container {name}: {what} {got}, ecs-ship pushed {want}")
    return lines


def ran(tasks: Iterable[TaskState]) -> list[dict[str, str]]:
    """What running tasks say they run, shaped as a revision's ``containerImages`` (one entry per container
    and digest: two tasks that run different digests of a container are two entries, and a mismatch)."""
    found = {
        (c.name, c.image_digest)
        for t in tasks
        if t.last_status == "RUNNING" and t.desired_status == "RUNNING"
        for c in t.containers
        if c.image_digest
    }
    return [{"containerName": name, "imageDigest": digest} for name, digest in sorted(found)]


def check(
    clients: Clients,
    revision_arn: str | None,
    pushed: Mapping[str, str],
    say: Callable[[str], None],
    tasks: Iterable[TaskState] = (),
) -> str | None:
    """None when the digests agree (or ECS keeps no record of them); else the failure to report.

    ``revision_arn``: the service revision the deployment rolls out, as the watch last read it (None where the
    API has no service deployments); ``tasks``: the deployment's tasks as the watch last read them."""
    if not pushed:
        return None
    resolved, told = ran(tasks), "the new tasks run {} at the digests pushed"
    if not set(pushed) <= {i["containerName"] for i in resolved}:
        if revision_arn is None:
            return None
        resolved, told = deploy.revision_images(clients, revision_arn), "ECS resolved {} to the digests pushed"
    wrong = mismatches(pushed, resolved)
    if wrong:
        return "version consistency: " + "; ".join(wrong)
    agreed = sorted(
        {str(i["containerName"]) for i in resolved if i.get("imageDigest") and i["containerName"] in pushed}
    )
    if agreed:
        say(told.format(", ".join(agreed)))
    return None
