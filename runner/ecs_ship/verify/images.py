"""The image of each container exists in its registry for the task's CPU architecture: one this run builds is
built for it; one it does not build (a sidecar, an image pinned by hand) must be there already."""

from __future__ import annotations

from collections.abc import Callable

from .. import registry
from ..aws import Clients
from ..errors import DeployError
from .fargate import platform_match
from .model import FAILURE, OK, WARNING, Finding, Subject

Mask = Callable[[str], None]


def check(subject: Subject, clients: Clients, mask: Mask) -> list[Finding]:
    findings: list[Finding] = []
    for c in subject.document.get("containerDefinitions") or []:
        name = str(c.get("name", ""))
        if name in subject.built:
            # Its platform against the task's was checked with the plan (exit 2 before any check ran).
            findings.append(Finding(f"image of {name}", OK, f"built and pushed by this run for {subject.built[name]}"))
            continue
        findings += _external(subject, clients, mask, name, str(c.get("image", "")))
    return findings


def _external(subject: Subject, clients: Clients, mask: Mask, container: str, image: str) -> list[Finding]:
    label = f"image of {container}"
    repository, reference = registry.split_reference(image)
    host, path = registry.split_repository(repository)
    try:
        api = registry.RegistryAPI(host, registry.resolve_credentials(host, clients=clients, mask=mask))
        digest = api.manifest_digest(path, reference)
        platforms = api.platforms(path, reference) if digest is not None else []
    except DeployError as exc:
        return [Finding(label, WARNING, f"not checked: {exc}", exc.fix)]
    if digest is None:
        return [
            Finding(
                label,
                FAILURE,
                f"{image} is not in {host}: the task would stop with CannotPullContainerError",
                "push it, or fix the container's image (ecs-ship builds only the images the spec lists)",
            )
        ]
    found = platform_match(subject.document, container, platforms)
    if found is not None and found.level == FAILURE:
        return [found]
    return [Finding(label, OK, f"{image} is in {host}" + (f" ({', '.join(platforms)})" if platforms else ""))]
