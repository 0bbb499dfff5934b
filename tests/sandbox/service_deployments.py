"""ECS service deployments and service revisions for rolling deployments, as the API reference states them.

Beside the legacy ``deployments`` list of DescribeServices, ECS records one *service deployment* for every
deployment a user starts (CreateService, an UpdateService that needs one, forceNewDeployment) and one *service
revision* for the configuration it deploys. A service deployment goes PENDING -> IN_PROGRESS -> SUCCESSFUL; a
newer deployment or a failure without rollback ends it STOPPED; a rollback (the circuit breaker's, or a user's
StopServiceDeployment) stays on the deployment that failed: ROLLBACK_REQUESTED -> ROLLBACK_IN_PROGRESS ->
ROLLBACK_SUCCESSFUL (or ROLLBACK_FAILED), with ``rollback.serviceRevisionArn`` the revision restored. The
legacy list still gets a new PRIMARY deployment for the rollback, as ECS's "rollback deployment" state-change
events show. The simulator drives the transitions; this module keeps the records and answers the API.
"""

from __future__ import annotations

import base64
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bluegreen import Shift
    from .motoworld import ServiceKey, ServiceView

ONGOING = ("PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
STATUSES = (*ONGOING, "SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
MAX_DESCRIBE = 20  # DescribeServiceDeployments / DescribeServiceRevisions: "a maximum of 20 ARNs"


class ApiError(Exception):
    """An ECS error answer: the exception shape's name and its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def breaker_threshold(configuration: dict[str, Any], desired: int) -> int:
    """Task failures the deployment circuit breaker tolerates (ThresholdConfiguration; ECS's default is
    BOUNDED_PERCENT 50): a percent of the desired count, clamped to 3..200 unless UNBOUNDED_PERCENT, or a COUNT."""
    threshold = (configuration.get("deploymentCircuitBreaker") or {}).get("thresholdConfiguration") or {}
    kind, value = str(threshold.get("type", "BOUNDED_PERCENT")), int(threshold.get("value", 50))
    if kind == "COUNT":
        return max(1, value)
    share = math.ceil(desired * value / 100)
    return max(1, share) if kind == "UNBOUNDED_PERCENT" else min(200, max(3, share))


def _now() -> datetime:
    # Milliseconds, as the API states times: a time read back and sent as a createdAt filter matches exactly.
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Counts:
    requested: int = 0
    running: int = 0
    pending: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.requested + other.requested, self.running + other.running, self.pending + other.pending)

    def api(self, arn: str) -> dict[str, Any]:
        return {
            "arn": arn,
            "requestedTaskCount": self.requested,
            "runningTaskCount": self.running,
            "pendingTaskCount": self.pending,
        }


@dataclass
class Revision:
    """What one deployment runs: the service's settings when it began, and the images its tasks resolved."""

    arn: str
    key: ServiceKey
    service_arn: str
    cluster_arn: str
    task_definition: str
    launch_type: str
    strategy: tuple[dict[str, Any], ...]
    load_balancers: list[dict[str, Any]]
    network_configuration: dict[str, Any]
    images: list[dict[str, str]]  # containerName, image, and imageDigest once a task pulled it
    created: datetime = field(default_factory=_now)

    def api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "serviceRevisionArn": self.arn,
            "serviceArn": self.service_arn,
            "clusterArn": self.cluster_arn,
            "taskDefinition": self.task_definition,
            "loadBalancers": [dict(lb) for lb in self.load_balancers],
            "containerImages": [dict(i) for i in self.images],
            "guardDutyEnabled": False,
            "createdAt": self.created,
        }
        if self.strategy:
            out["capacityProviderStrategy"] = [dict(p) for p in self.strategy]
        else:
            out["launchType"] = self.launch_type
        if self.launch_type == "FARGATE" or self.strategy:
            out["platformVersion"] = "1.4.0"
            out["platformFamily"] = "Linux"
        if self.network_configuration:
            out["networkConfiguration"] = self.network_configuration
        return out


@dataclass
class ServiceDeployment:
    arn: str
    key: ServiceKey
    service_arn: str
    cluster_arn: str
    target: str  # revision ARN
    sources: list[str]  # revision ARNs running when it began
    configuration: dict[str, Any]
    breaker: bool
    threshold: int
    legacy_id: str  # the legacy deployment that rolls the target out
    created: datetime = field(default_factory=_now)
    status: str = "PENDING"
    status_reason: str = ""
    started: datetime | None = None
    finished: datetime | None = None
    stopped: datetime | None = None
    updated: datetime = field(default_factory=_now)
    failures: int = 0
    tripped: bool = False
    rollback: dict[str, Any] | None = None
    rollback_legacy_id: str | None = None  # the legacy deployment that restores rollback.serviceRevisionArn
    counts: dict[str, Counts] | None = None  # frozen when it ends: what ran when it finished
    shift: Shift | None = None  # blue/green, linear and canary deployments: their lifecycle (bluegreen.py)

    @property
    def ongoing(self) -> bool:
        return self.status in ONGOING

    def _set(self, status: str, reason: str | None = None) -> None:
        self.status = status
        if reason is not None:
            self.status_reason = reason
        self.updated = _now()


def configuration_of(view: ServiceView) -> dict[str, Any]:
    """The service's deploymentConfiguration as ECS states it on the service deployment."""
    shifting: dict[str, Any] = {
        k: view.deployment_configuration[k]
        for k in ("bakeTimeInMinutes", "lifecycleHooks", "linearConfiguration", "canaryConfiguration")
        if k in view.deployment_configuration
    }
    return {
        "deploymentCircuitBreaker": dict(view.circuit_breaker),
        "maximumPercent": view.maximum_percent,
        "minimumHealthyPercent": view.minimum_healthy_percent,
        "strategy": view.deployment_configuration.get("strategy", "ROLLING"),
        **shifting,
    }


def _page_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode()


def page(
    items: Sequence[str], token: str | None, size: int, resume: Callable[[str], int] | None = None
) -> tuple[list[str], str | None]:
    """One page of `items` after the item `token` names (an opaque token, as AWS's are), and the next token.

    Resuming after the last item served keeps pages stable while items come and go between calls; `resume`
    finds where to go on when that item is gone (by default: nowhere, the listing ended).
    """
    start = 0
    if token:
        try:
            after = base64.urlsafe_b64decode(token.encode()).decode()
        except (ValueError, UnicodeDecodeError):
            raise ApiError("InvalidParameterException", "Invalid nextToken.") from None
        find = resume or (lambda a: items.index(a) + 1 if a in items else len(items))
        start = find(after)
    chunk = list(items[start : start + size])
    return chunk, (_page_token(chunk[-1]) if start + size < len(items) else None)


def _short_id() -> str:
    return secrets.token_urlsafe(16)[:22]


class History:
    """Every service deployment and revision of the world, oldest first; guarded by the world lock."""

    def __init__(self) -> None:
        self.revisions: dict[str, Revision] = {}
        self.deployments: dict[str, ServiceDeployment] = {}
        self._live: dict[str, Counts] = {}  # revision ARN -> what runs of it now
        self._stable: dict[ServiceKey, str] = {}  # the revision last at steady state, per service

    def forget(self, clusters: set[tuple[str, str]]) -> None:
        """Drop the records of these (region, cluster) pairs' services (their worlds were forgotten)."""

        def gone(key: ServiceKey) -> bool:
            return (key.region, key.cluster) in clusters

        self.revisions = {a: r for a, r in self.revisions.items() if not gone(r.key)}
        self.deployments = {a: d for a, d in self.deployments.items() if not gone(d.key)}
        self._live = {a: c for a, c in self._live.items() if a in self.revisions}
        self._stable = {k: a for k, a in self._stable.items() if not gone(k)}

    # --- records -------------------------------------------------------------------------------
    def new_revision(self, view: ServiceView, task_definition: str, images: list[dict[str, str]]) -> Revision:
        k = view.key
        rid = f"{secrets.randbelow(10**19):019d}"
        rev = Revision(
            arn=f"arn:aws:ecs:{k.region}:{k.account}:service-revision/{k.cluster}/{k.name}/{rid}",
            key=k,
            service_arn=view.arn,
            cluster_arn=view.cluster_arn,
            task_definition=task_definition,
            launch_type=view.launch_type,
            strategy=view.capacity_provider_strategy,
            load_balancers=[dict(lb) for lb in view.load_balancers],
            network_configuration=dict(view.network_configuration),
            images=images,
        )
        self.revisions[rev.arn] = rev
        return rev

    def begin(
        self,
        view: ServiceView,
        target: Revision,
        sources: list[str],
        legacy_id: str,
        configuration: dict[str, Any],
        threshold: int,
    ) -> ServiceDeployment:
        """A new service deployment; one still under way for the service stops, as a newer one replaced it."""
        k = view.key
        for old in self.for_service(k):
            if old.ongoing:
                self.stop(old, "Service deployment stopped: a newer service deployment started.")
        sd = ServiceDeployment(
            arn=f"arn:aws:ecs:{k.region}:{k.account}:service-deployment/{k.cluster}/{k.name}/{_short_id()}",
            key=k,
            service_arn=view.arn,
            cluster_arn=view.cluster_arn,
            target=target.arn,
            sources=list(dict.fromkeys(s for s in sources if s != target.arn)),
            configuration=configuration,
            breaker=view.circuit_breaker["enable"],
            threshold=threshold,
            legacy_id=legacy_id,
        )
        self.deployments[sd.arn] = sd
        return sd

    def for_service(self, key: ServiceKey) -> list[ServiceDeployment]:
        """The service's deployments, newest first."""
        return [sd for sd in reversed(self.deployments.values()) if sd.key == key]

    def owner(self, legacy_id: str) -> ServiceDeployment | None:
        """The service deployment a legacy deployment works for (rolling out its target, or rolling back)."""
        for sd in self.deployments.values():
            if legacy_id in (sd.legacy_id, sd.rollback_legacy_id):
                return sd
        return None

    def stable(self, key: ServiceKey) -> Revision | None:
        arn = self._stable.get(key)
        return self.revisions.get(arn) if arn else None

    def settled(self, key: ServiceKey, revision_arn: str) -> None:
        """The service reached a steady state running `revision_arn`: what a rollback returns to."""
        self._stable[key] = revision_arn

    def observe(self, key: ServiceKey, counts: dict[str, Counts], failures: dict[str, int]) -> None:
        """What runs of each of the service's revisions now, and each legacy deployment's failed tasks."""
        for arn, rev in self.revisions.items():
            if rev.key == key:
                self._live[arn] = counts.get(arn, Counts())
        for sd in self.for_service(key):
            if sd.ongoing and sd.legacy_id in failures:
                sd.failures = failures[sd.legacy_id]

    def resolved(self, revision_arn: str, container: str, digest: str | None) -> None:
        rev = self.revisions.get(revision_arn)
        if rev is None or not digest:
            return
        for image in rev.images:
            if image["containerName"] == container and "imageDigest" not in image:
                image["imageDigest"] = digest

    # --- transitions -----------------------------------------------------------------------------
    def started(self, sd: ServiceDeployment) -> None:
        sd._set("IN_PROGRESS")
        sd.started = sd.updated

    def succeeded(self, sd: ServiceDeployment) -> None:
        sd.counts = self._snapshot(sd)
        sd._set("SUCCESSFUL", "Service deployment completed successfully.")
        sd.finished = sd.updated

    def stop(self, sd: ServiceDeployment, reason: str, *, tripped: bool = False) -> None:
        sd.tripped = sd.tripped or tripped
        sd.counts = self._snapshot(sd)
        sd._set("STOPPED", reason)
        sd.stopped = sd.finished = sd.updated

    def stop_requested(self, sd: ServiceDeployment, reason: str) -> None:
        sd._set("STOP_REQUESTED", reason)

    def rollback_requested(
        self, sd: ServiceDeployment, reason: str, to: Revision, legacy_id: str, *, tripped: bool
    ) -> None:
        sd.tripped = sd.tripped or tripped
        sd._set("ROLLBACK_REQUESTED", reason)
        sd.rollback = {"reason": reason, "startedAt": sd.updated, "serviceRevisionArn": to.arn}
        sd.rollback_legacy_id = legacy_id

    def rolling_back(self, sd: ServiceDeployment) -> None:
        sd._set("ROLLBACK_IN_PROGRESS")

    def rolled_back(self, sd: ServiceDeployment, *, ok: bool, reason: str) -> None:
        sd.counts = self._snapshot(sd)
        sd._set("ROLLBACK_SUCCESSFUL" if ok else "ROLLBACK_FAILED", reason)
        sd.finished = sd.updated

    def _snapshot(self, sd: ServiceDeployment) -> dict[str, Counts]:
        arns = [*sd.sources, sd.target]
        if sd.rollback:
            arns.append(sd.rollback["serviceRevisionArn"])
        return {arn: self._live.get(arn, Counts()) for arn in arns}

    # --- the API -----------------------------------------------------------------------------------
    def _counts(self, sd: ServiceDeployment, arn: str) -> Counts:
        return (sd.counts or {}).get(arn, Counts()) if sd.counts is not None else self._live.get(arn, Counts())

    def current_revisions(self, arns: list[str]) -> list[dict[str, Any]]:
        return [self._live.get(arn, Counts()).api(arn) for arn in dict.fromkeys(arns)]

    def api(self, sd: ServiceDeployment) -> dict[str, Any]:
        if not sd.breaker:
            breaker_status = "DISABLED"
        elif sd.tripped:
            breaker_status = "TRIGGERED"
        else:
            breaker_status = "MONITORING" if sd.ongoing else "MONITORING_COMPLETE"
        out: dict[str, Any] = {
            "serviceDeploymentArn": sd.arn,
            "serviceArn": sd.service_arn,
            "clusterArn": sd.cluster_arn,
            "createdAt": sd.created,
            "updatedAt": sd.updated,
            "sourceServiceRevisions": [self._counts(sd, arn).api(arn) for arn in sd.sources],
            "targetServiceRevision": self._counts(sd, sd.target).api(sd.target),
            "status": sd.status,
            "deploymentConfiguration": sd.configuration,
            "deploymentCircuitBreaker": {
                "status": breaker_status,
                "failureCount": sd.failures,
                "threshold": sd.threshold,
            },
        }
        if sd.status_reason:
            out["statusReason"] = sd.status_reason
        for name, value in (("startedAt", sd.started), ("finishedAt", sd.finished), ("stoppedAt", sd.stopped)):
            if value is not None:
                out[name] = value
        if sd.rollback is not None:
            out["rollback"] = dict(sd.rollback)
        if sd.shift is not None:
            out["lifecycleStage"] = sd.shift.stage
            out["lifecycleHookDetails"] = sd.shift.details()
        return out

    def brief(self, sd: ServiceDeployment) -> dict[str, Any]:
        out: dict[str, Any] = {
            "serviceDeploymentArn": sd.arn,
            "serviceArn": sd.service_arn,
            "clusterArn": sd.cluster_arn,
            "createdAt": sd.created,
            "targetServiceRevisionArn": sd.target,
            "status": sd.status,
        }
        if sd.status_reason:
            out["statusReason"] = sd.status_reason
        if sd.started is not None:
            out["startedAt"] = sd.started
        if sd.finished is not None:
            out["finishedAt"] = sd.finished
        return out

    def list_deployments(
        self,
        key: ServiceKey,
        *,
        statuses: list[str] | None,
        before: datetime | None,
        after: datetime | None,
        max_results: int | None,
        token: str | None,
    ) -> dict[str, Any]:
        size = 20 if max_results is None else int(max_results)
        if not 1 <= size <= 100:
            raise ApiError("InvalidParameterException", "maxResults must be between 1 and 100.")
        unknown = [s for s in statuses or [] if s not in STATUSES]
        if unknown:
            raise ApiError("InvalidParameterException", f"Invalid service deployment status: {', '.join(unknown)}.")
        found = [
            sd
            for sd in self.for_service(key)
            if (not statuses or sd.status in statuses)
            and (before is None or sd.created < before)
            and (after is None or sd.created > after)
        ]
        arns, next_token = page([sd.arn for sd in found], token, size)
        body: dict[str, Any] = {"serviceDeployments": [self.brief(self.deployments[a]) for a in arns]}
        if next_token:
            body["nextToken"] = next_token
        return body

    def describe(self, arns: list[str]) -> dict[str, Any]:
        return _describe(arns, "serviceDeployments", lambda a: self.deployments.get(a), self.api)

    def describe_revisions(self, arns: list[str]) -> dict[str, Any]:
        return _describe(arns, "serviceRevisions", lambda a: self.revisions.get(a), lambda r: r.api())


def _describe(
    arns: list[str], member: str, find: Callable[[str], Any], render: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    if not arns:
        raise ApiError("InvalidParameterException", "At least one ARN must be specified.")
    if len(arns) > MAX_DESCRIBE:
        raise ApiError("InvalidParameterException", f"You can specify a maximum of {MAX_DESCRIBE} ARNs.")
    found, failures = [], []
    for arn in arns:
        item = find(arn)
        if item is None:
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            found.append(render(item))
    return {member: found, "failures": failures}
