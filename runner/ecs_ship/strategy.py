"""The deployment configuration a deploy asks ECS for: the spec's `deployment:` over what the service has,
checked against the service before anything is written, and the traffic steps it means (for `plan`). Pure.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .errors import InputError, SpecError
from .spec import DeploymentSpec, ServiceSpec

TRAFFIC_SHIFTING = ("BLUE_GREEN", "LINEAR", "CANARY")
# Which spec keys belong to which strategy; a key for another one is a mistake, not something to ignore.
_ONLY_FOR = {
    "canary_percent": ("CANARY",),
    "canary_bake_time": ("CANARY",),
    "step_percent": ("LINEAR",),
    "step_bake_time": ("LINEAR",),
    "bake_time": TRAFFIC_SHIFTING,
    "pause": TRAFFIC_SHIFTING,
}


def strategy_of(service: Mapping[str, Any]) -> str:
    """The service's deployment strategy (ROLLING when the API does not say: the only one before 2025)."""
    return str((service.get("deploymentConfiguration") or {}).get("strategy") or "ROLLING")


def configuration(spec: ServiceSpec, service: Mapping[str, Any], file: str | None = None) -> dict[str, Any] | None:
    """The deploymentConfiguration for the deploy's UpdateService, or None when the spec changes nothing. The
    service's other settings (circuit breaker, percents, alarms, Lambda hooks) are kept as they are."""
    want = spec.deployment
    if want == DeploymentSpec():
        return None
    current: dict[str, Any] = copy.deepcopy(dict(service.get("deploymentConfiguration") or {}))
    strategy = want.strategy or strategy_of(service)
    for key, strategies in _ONLY_FOR.items():
        if getattr(want, key) is not None and strategy not in strategies:
            raise SpecError(
                f"is set, but it applies only to the {' / '.join(strategies)} strategy and service "
                f"{spec.service} deploys with {strategy}",
                key_path=f"deployment.{key}",
                file=file,
                fix="remove it, or set deployment.strategy",
            )
    if strategy in TRAFFIC_SHIFTING:
        _require_pairs(spec, service, strategy)
    wanted = copy.deepcopy(current)
    wanted["strategy"] = strategy
    if want.bake_time is not None:
        wanted["bakeTimeInMinutes"] = want.bake_time
    if strategy == "LINEAR":
        wanted["linearConfiguration"] = {
            **(current.get("linearConfiguration") or {}),
            **_set(stepPercent=want.step_percent, stepBakeTimeInMinutes=want.step_bake_time),
        }
    if strategy == "CANARY":
        wanted["canaryConfiguration"] = {
            **(current.get("canaryConfiguration") or {}),
            **_set(canaryPercent=want.canary_percent, canaryBakeTimeInMinutes=want.canary_bake_time),
        }
    if strategy == "BLUE_GREEN" and wanted.get("bakeTimeInMinutes") is None:
        raise SpecError(
            f"a BLUE_GREEN deployment needs a bake time, and service {spec.service} has none",
            key_path="deployment.bake_time",
            file=file,
            fix="set deployment.bake_time (minutes the old revision is kept after traffic moved; 0 for none)",
        )
    if want.pause is not None:
        pause: dict[str, Any] = {"targetType": "PAUSE", "lifecycleStages": list(want.pause.at)}
        timeout = _set(timeoutInMinutes=want.pause.timeout, action=want.pause.on_timeout)
        if timeout:
            pause["timeoutConfiguration"] = timeout
        # The spec's pause replaces the service's PAUSE hooks; Lambda hooks are the service's own business.
        kept = [h for h in current.get("lifecycleHooks") or [] if h.get("targetType") != "PAUSE"]
        wanted["lifecycleHooks"] = [*kept, pause]
    return None if wanted == current else wanted


def _set(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _require_pairs(spec: ServiceSpec, service: Mapping[str, Any], strategy: str) -> None:
    """Traffic shifting needs, for each load balancer, the other target group and the listener rule to shift."""
    for i, lb in enumerate(service.get("loadBalancers") or []):
        advanced = lb.get("advancedConfiguration") or {}
        missing = [k for k in ("alternateTargetGroupArn", "productionListenerRule") if not advanced.get(k)]
        if missing:
            raise InputError(
                f"failed to deploy {spec.service} with the {strategy} strategy: its loadBalancers[{i}] has no "
                f"{' and no '.join(missing)} (advancedConfiguration)",
                fix="give the service's load balancer an alternate target group, a production listener rule and a "
                "role for ECS (UpdateService loadBalancers[].advancedConfiguration, or in Terraform/the console), or "
                "deploy with the ROLLING strategy",
            )


def traffic_steps(configuration: Mapping[str, Any]) -> list[str]:
    """How production traffic moves under this configuration, minute by minute, in the words `plan` prints."""
    strategy = str(configuration.get("strategy") or "ROLLING")
    bake = configuration.get("bakeTimeInMinutes")
    kept = f"; the old revision is kept {bake} min more, then stopped" if bake is not None else ""
    if strategy == "ROLLING":
        high = configuration.get("maximumPercent", 200)
        low = configuration.get("minimumHealthyPercent", 100)
        return [f"ROLLING: old tasks replaced in batches (maximumPercent {high}, minimumHealthyPercent {low})"]
    lines = [f"{strategy}: new tasks start beside the old ones in the alternate target group"]
    if strategy == "BLUE_GREEN":
        lines.append("all production traffic moves to them at once" + kept)
    elif strategy == "LINEAR":
        linear = configuration.get("linearConfiguration") or {}
        step = float(linear.get("stepPercent", 10.0))  # ECS's defaults
        wait = int(linear.get("stepBakeTimeInMinutes", 6))
        shares, minute = [], 0
        share = step
        while share < 100:
            shares.append(f"{share:g}% at +{minute} min")
            share, minute = round(share + step, 1), minute + wait
        shares.append(f"100% at +{minute} min")
        lines.append("production traffic: " + ", ".join(shares) + kept)
    else:
        canary = configuration.get("canaryConfiguration") or {}
        share = float(canary.get("canaryPercent", 5.0))
        wait = int(canary.get("canaryBakeTimeInMinutes", 10))
        lines.append(f"production traffic: {share:g}% at +0 min, 100% at +{wait} min" + kept)
    for hook in configuration.get("lifecycleHooks") or []:
        if hook.get("targetType") == "PAUSE":
            timeout = hook.get("timeoutConfiguration") or {}
            then = str(timeout.get("action", "ROLLBACK")).lower()
            after = f"after {timeout.get('timeoutInMinutes', 1440)} min ECS will {then}"
            for stage in hook.get("lifecycleStages") or []:
                lines.append(f"pauses at {stage} until `ecs-ship continue` ({after})")
    return lines
