"""Capacity provider strategies, as the ECS API reference states them.

A service runs on a launch type or on a capacity provider strategy, never both. Without either, CreateService
takes the cluster's default strategy, and a cluster without one means the EC2 launch type. A strategy names
only providers associated with the cluster (CreateCluster's or PutClusterCapacityProviders' list); at most one
of them has a base, and the base is met first; the rest of the tasks follow the weights, and a provider of
weight 0 places none unless it is alone. Fargate (FARGATE, FARGATE_SPOT) and Auto Scaling group providers do
not mix in one strategy. UpdateService may set a new strategy (an empty list goes back to the launch type),
which does not start a deployment by itself: the next one uses it.

Refusals carry ECS's error code (InvalidParameterException); their wording follows ECS's where the
documentation quotes it and is ours elsewhere.

Tasks placed through a provider carry its name as `capacityProviderName`; Fargate providers run them as
Fargate tasks, an Auto Scaling group provider on the container instances of its group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from moto.autoscaling import models as autoscaling_models
from moto.ecs.exceptions import InvalidParameterException

FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
MAX_PROVIDERS = 20


def normalise(strategy: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The strategy as DescribeServices shows it: every item with its base and weight."""
    return [
        {
            "capacityProvider": str(p["capacityProvider"]),
            "weight": int(p.get("weight", 0)),
            "base": int(p.get("base", 0)),
        }
        for p in strategy
    ]


def validate(backend: Any, cluster: Any, strategy: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Refuse a strategy ECS refuses (InvalidParameterException, ECS's wording); return it normalised."""
    items = normalise(strategy)
    if len(items) > MAX_PROVIDERS:
        raise InvalidParameterException(
            f"The capacity provider strategy can contain a maximum of {MAX_PROVIDERS} capacity providers."
        )
    associated = set(getattr(cluster, "capacity_providers", None) or [])
    for p in items:
        name = p["capacityProvider"]
        if name not in associated:
            raise InvalidParameterException(
                f"The specified capacity provider strategy cannot contain a capacity provider that is not associated "
                f"with the cluster. Associate the capacity provider with the cluster or specify a valid capacity "
                f"provider and try again. Capacity provider: {name}"
            )
        if name not in FARGATE_PROVIDERS and name not in backend.capacity_providers:
            raise InvalidParameterException(f"The specified capacity provider {name} does not exist.")
        if not 0 <= p["weight"] <= 1000 or not 0 <= p["base"] <= 100000:
            raise InvalidParameterException(
                "The capacity provider strategy weight must be between 0 and 1000 and base between 0 and 100000."
            )
    if len({p["capacityProvider"] for p in items}) != len(items):
        raise InvalidParameterException("The capacity provider strategy cannot contain duplicate capacity providers.")
    if sum(1 for p in items if p["base"] > 0) > 1:
        raise InvalidParameterException("The capacity provider strategy can only have one base value defined.")
    if len(items) > 1 and not any(p["weight"] > 0 for p in items):
        raise InvalidParameterException(
            "The capacity provider strategy must contain at least one capacity provider with a weight greater than 0."
        )
    kinds = {p["capacityProvider"] in FARGATE_PROVIDERS for p in items}
    if len(kinds) > 1:
        raise InvalidParameterException(
            "A capacity provider strategy cannot contain both Fargate capacity providers and Auto Scaling group "
            "capacity providers."
        )
    return items


def resolve(
    backend: Any, cluster: Any, launch_type: str | None, strategy: Sequence[Mapping[str, Any]] | None
) -> tuple[str | None, list[dict[str, Any]]]:
    """CreateService's choice: (launch type, strategy), exactly one of them set."""
    if launch_type and strategy:
        raise InvalidParameterException(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again."
        )
    if launch_type:
        return launch_type, []
    if strategy:
        return None, validate(backend, cluster, strategy)
    default = getattr(cluster, "default_capacity_provider_strategy", None) or []
    if default:
        return None, validate(backend, cluster, default)
    return "EC2", []


def pick(strategy: Sequence[Mapping[str, Any]], placed: Mapping[str, int]) -> str:
    """The provider the next task of a deployment goes to, given how many it has on each.

    The base first; then the provider furthest below its share of the weights (ties to the first listed), so
    any prefix of the launches keeps the ratio as closely as whole tasks allow."""
    for p in strategy:
        if p["base"] > 0 and placed.get(p["capacityProvider"], 0) < p["base"]:
            return str(p["capacityProvider"])
    weighted = [p for p in strategy if p["weight"] > 0] or list(strategy[:1])
    beyond_base = {p["capacityProvider"]: placed.get(p["capacityProvider"], 0) - p["base"] for p in weighted}
    return str(
        min(weighted, key=lambda p: (beyond_base[p["capacityProvider"]] + 1) / max(p["weight"], 1))["capacityProvider"]
    )


def is_fargate(provider: str) -> bool:
    return provider in FARGATE_PROVIDERS


def group_instances(backend: Any, provider: str) -> set[str]:
    """EC2 instance ids of the Auto Scaling group behind an Auto Scaling group capacity provider."""
    cp = backend.capacity_providers.get(provider)
    if cp is None:
        return set()
    arn = str((cp.auto_scaling_group_provider or {}).get("autoScalingGroupArn", ""))
    asg_backend = autoscaling_models.autoscaling_backends[backend.account_id][backend.region_name]
    for group in asg_backend.autoscaling_groups.values():
        if arn in (group.arn, group.name) or arn.endswith(f"autoScalingGroupName/{group.name}"):
            return {state.instance.id for state in group.instance_states}
    return set()
