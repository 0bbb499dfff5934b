"""Version consistency: the image digests ECS resolved for this deploy are the ones ecs-ship pushed.

ECS resolves each container's image to a digest once per service revision (`versionConsistency`, on by default)
and records it in the revision's `containerImages`. ecs-ship pins its images by digest, so a difference means
the service runs something else than this run built: a task definition changed by hand between register and
update, a registry that serves other content under the name, or a container whose consistency is disabled
and whose tag moved. Every task of the revision runs what the revision recorded, so it is checked once, after
the deployment serves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import deploy
from .aws import Clients


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
            lines.append(f"container {name}: ECS resolved {image.get('image', '?')} to {got}, ecs-ship pushed {want}")
    return lines


def check(
    clients: Clients, revision_arn: str | None, pushed: Mapping[str, str], say: Callable[[str], None]
) -> str | None:
    """None when the digests agree (or ECS keeps no record of them); else the failure to report.

    ``revision_arn``: the service revision the deployment rolls out, as the watch last read it (None where the
    API has no service deployments)."""
    if revision_arn is None or not pushed:
        return None
    resolved = deploy.revision_images(clients, revision_arn)
    wrong = mismatches(pushed, resolved)
    if wrong:
        return "version consistency: " + "; ".join(wrong)
    agreed = sorted(str(i["containerName"]) for i in resolved if i.get("imageDigest") and i["containerName"] in pushed)
    if agreed:
        say(f"ECS resolved {', '.join(agreed)} to the digests pushed")
    return None
