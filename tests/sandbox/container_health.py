"""Container health checks as ECS runs them, and the other ways ECS stops a service's task on its own.

ECS hands a container definition's ``healthCheck`` to Docker as the container's HEALTHCHECK (the agent does the
same), so Docker runs the command in the container and keeps its verdict; this module translates in both
directions. The rules, from the ECS API reference (HealthCheck, Task.healthStatus):

* defaults: interval 30 s, timeout 5 s, retries 3, startPeriod off; ``CMD`` runs the arguments directly,
  ``CMD-SHELL`` through the container's shell — Docker's own syntax, passed through unchanged;
* a container is UNKNOWN while its check is evaluated (Docker's ``starting``) or when it has none;
* only essential containers that have a check decide the task: UNHEALTHY if any is, else UNKNOWN if any is,
  else HEALTHY; a task without such a container stays UNKNOWN;
* a service's task that turns UNHEALTHY (after the service's health-check grace period) is stopped and
  replaced; a task started on its own would run on regardless.

The simulator runs check timings faster by the same factor as the target-group checks (``SimConfig.health``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

DEFAULT_INTERVAL = 30
DEFAULT_TIMEOUT = 5
DEFAULT_RETRIES = 3

FAILED_REASON = "Task failed container health checks"

# What ECS writes on a task whose Fargate Spot capacity is reclaimed (a fault tests may inject). Other
# capacity stops (TerminationNotice) are not simulated: their stoppedReason is not documented.
SPOT_INTERRUPTION = ("SpotInterruption", "Your Spot Task was interrupted.")

_DOCKER_TO_ECS = {"healthy": "HEALTHY", "unhealthy": "UNHEALTHY"}


def has_check(definition: Mapping[str, Any]) -> bool:
    return bool((definition.get("healthCheck") or {}).get("command"))


def docker_healthcheck(definition: Mapping[str, Any], real: Callable[[float], float]) -> dict[str, Any] | None:
    """The Docker HEALTHCHECK for a container definition (durations in nanoseconds), or None without one;
    `real` turns the definition's seconds into the real seconds the sandbox runs them in."""
    if not has_check(definition):
        return None
    hc = definition["healthCheck"]

    def ns(seconds: float) -> int:
        return int(max(0.05, real(seconds)) * 1e9)

    start = float(hc.get("startPeriod") or 0)
    return {
        "test": [str(x) for x in hc["command"]],
        "interval": ns(float(hc.get("interval") or DEFAULT_INTERVAL)),
        "timeout": ns(float(hc.get("timeout") or DEFAULT_TIMEOUT)),
        "retries": int(hc.get("retries") or DEFAULT_RETRIES),
        "start_period": ns(start) if start > 0 else 0,
    }


def container_health(attrs: Mapping[str, Any]) -> str:
    """healthStatus of a container from Docker's inspect data."""
    health = (attrs.get("State") or {}).get("Health") or {}
    return _DOCKER_TO_ECS.get(str(health.get("Status", "")), "UNKNOWN")


def task_health(containers: Iterable[tuple[bool, bool, str]]) -> str:
    """healthStatus of a task from (essential, has a check, healthStatus) of each of its containers."""
    deciding = [status for essential, checked, status in containers if essential and checked]
    if not deciding:
        return "UNKNOWN"
    if "UNHEALTHY" in deciding:
        return "UNHEALTHY"
    if "UNKNOWN" in deciding:
        return "UNKNOWN"
    return "HEALTHY"
