"""Task-definition revisions as AWS holds them: which exist in a family, which a service served before the one it
runs (what a rollback returns to), which any service of the region still uses, and deregistering one.

Reads and the one write that `keep_revisions` and `ecs-ship prune` make; which revisions to deregister is
decided in prune.py, apart from these calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import botocore.exceptions

from .aws import Clients, error_code, timestamp, unsupported
from .deploy import describe_service_revision
from .errors import InputError
from .prune import Selection, family_of, number_of, select


def family_revisions(clients: Clients, family: str) -> list[str]:
    """The ACTIVE revisions of `family`, oldest first (ListTaskDefinitions pages at 100)."""
    pages = clients.ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status="ACTIVE")
    arns = [str(arn) for page in pages for arn in page.get("taskDefinitionArns", [])]
    # The family name is meant to match exactly, but an implementation may treat it as a prefix: filter here.
    return sorted((a for a in arns if family_of(a) == family), key=number_of)


def _in_batches(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def in_use(clients: Clients) -> dict[str, str]:
    """Every task definition a service of the region references, with which service and how: the one it runs,
    one a deployment (or a task set) still lists. A family is often shared by services in several clusters
    (staging and production), so every cluster is read, not only the spec's."""
    found: dict[str, str] = {}
    clusters = [
        str(arn)
        for page in clients.ecs.get_paginator("list_clusters").paginate()
        for arn in page.get("clusterArns", [])
    ]
    for cluster in clusters:
        pages = clients.ecs.get_paginator("list_services").paginate(cluster=cluster)
        services = [str(arn) for page in pages for arn in page.get("serviceArns", [])]
        # DescribeServices takes at most 10 services a call.
        for batch in _in_batches(services, 10):
            for svc in clients.ecs.describe_services(cluster=cluster, services=batch).get("services", []):
                name = f"service {svc.get('serviceName')} in cluster {cluster.rsplit('/', 1)[-1]}"
                if svc.get("taskDefinition"):
                    found.setdefault(str(svc["taskDefinition"]), f"run by {name}")
                for d in svc.get("deployments") or []:
                    if d.get("taskDefinition"):
                        found.setdefault(str(d["taskDefinition"]), f"in the {d.get('status', '')} deployment of {name}")
                for ts in svc.get("taskSets") or []:
                    if ts.get("taskDefinition"):
                        found.setdefault(str(ts["taskDefinition"]), f"in a task set of {name}")
    return found


def served_before(clients: Clients, cluster: str, service: str, current: str) -> str | None:
    """The task definition of the service's newest successful service deployment whose revision is not
    `current`: what served before the running revision. None when ECS has no such history (an older API, a
    stand-in, or a service whose only deployments are the current revision's)."""
    briefs: list[dict[str, Any]] = []
    token: str | None = None
    try:
        while True:  # botocore has no paginator for ListServiceDeployments
            kw: dict[str, Any] = {"cluster": cluster, "service": service, "status": ["SUCCESSFUL"]}
            page = clients.ecs.list_service_deployments(**kw, **({"nextToken": token} if token else {}))
            briefs += [dict(b) for b in page.get("serviceDeployments", [])]
            token = page.get("nextToken")
            if not token:
                break
    except botocore.exceptions.ClientError as exc:
        if unsupported(exc) or error_code(exc) in ("AccessDeniedException", "AccessDenied"):
            return None
        raise
    # The API reference promises no order: newest first by when each was created.
    briefs.sort(key=lambda b: timestamp(b.get("createdAt")) or 0.0, reverse=True)
    for brief in briefs:
        target = brief.get("targetServiceRevisionArn")
        revision = describe_service_revision(clients, str(target)) if target else None
        task_definition = (revision or {}).get("taskDefinition")
        if task_definition and task_definition != current and _active(clients, str(task_definition)):
            return str(task_definition)
    return None


def _active(clients: Clients, arn: str) -> bool:
    """Whether a revision can still be deployed: ECS refuses to point a service at an INACTIVE one."""
    found = clients.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return bool(found.get("status") == "ACTIVE")


def previous_revision(clients: Clients, cluster: str, service: Mapping[str, Any], to_revision: int | None) -> str:
    """What `ecs-ship rollback` returns to: --to-revision N; else, mid-rollout, the revision an ACTIVE deployment
    still runs; else the revision that served before the running one (ECS's service deployments); else the
    newest older ACTIVE revision of the family."""
    current = str(service["taskDefinition"])
    family, rev = family_of(current), number_of(current)
    if to_revision is not None:
        target = f"{family}:{to_revision}"
        try:
            found = clients.ecs.describe_task_definition(taskDefinition=target)["taskDefinition"]
        except botocore.exceptions.ClientError as exc:
            raise InputError(f"failed to find task definition {target}", fix="pick a revision that exists") from exc
        if found.get("status") == "INACTIVE":
            # ECS refuses to point a service at a deregistered revision; say so before trying.
            raise InputError(
                f"failed to roll back to {target}: it was deregistered (INACTIVE), and ECS deploys only ACTIVE "
                "revisions",
                fix="pick an ACTIVE revision (`aws ecs list-task-definitions --family-prefix "
                f"{family}`), or register its definition again as a new revision",
            )
        return str(found["taskDefinitionArn"])
    for d in service.get("deployments", []):
        if d.get("status") == "ACTIVE" and d.get("taskDefinition") != current:
            return str(d["taskDefinition"])
    before = served_before(clients, cluster, str(service.get("serviceName") or service["serviceArn"]), current)
    if before:
        return before
    older = [a for a in family_revisions(clients, family) if number_of(a) < rev]
    if older:
        return older[-1]
    raise InputError(
        f"failed to find a revision of {family} older than {rev} to roll back to",
        fix="pass --to-revision N",
    )


def selection(
    clients: Clients,
    cluster: str,
    service: Mapping[str, Any],
    keep: int,
    *,
    also: Mapping[str, str] | None = None,
    coming: int = 0,
    limit: int | None = None,
) -> Selection:
    """Read what the family has and what is in use, and choose (prune.select) for the family of the revision
    `service` runs. ``also``: more revisions to keep, with why (a deploy knows what served before it)."""
    current = str(service["taskDefinition"])
    protected = {**in_use(clients), **(also or {})}
    protected.setdefault(current, "the revision the service runs")
    try:
        back = previous_revision(clients, cluster, service, None)
    except InputError:
        back = None  # no older revision at all: nothing to roll back to, nothing older to deregister
    if back:
        protected.setdefault(back, "what `ecs-ship rollback` returns to")
    family = family_of(current)
    return select(family, family_revisions(clients, family), keep, protected, coming=coming, limit=limit)


def deregister(
    clients: Clients, arns: Sequence[str], say: Callable[[str], None], check_cancel: Callable[[], None]
) -> list[tuple[str, str]]:
    """DeregisterTaskDefinition for each ARN, oldest first (never DeleteTaskDefinitions: an INACTIVE revision
    stays describable, and its tasks run on). The ones AWS refused, with why; the rest were deregistered.
    ``check_cancel`` runs before each call: an interrupted run stops between two."""
    refused: list[tuple[str, str]] = []
    for i, arn in enumerate(arns):
        check_cancel()
        try:
            clients.ecs.deregister_task_definition(taskDefinition=arn)
        except botocore.exceptions.ClientError as exc:
            refused.append((arn, f"{error_code(exc) or 'error'}: {exc}"))
            if error_code(exc) in ("AccessDeniedException", "AccessDenied"):
                # The same answer awaits every other one: stop asking.
                refused += [(a, "not tried after access was denied") for a in arns[i + 1 :]]
                break
            continue
        say(f"deregistered {arn.rsplit('/', 1)[-1]}")
    return refused
