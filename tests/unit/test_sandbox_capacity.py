"""The sandbox's capacity provider rules: the split of tasks and the strategies ECS refuses."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from moto.ecs.exceptions import InvalidParameterException

from tests.sandbox import capacity


def launches(strategy: list[dict[str, Any]], n: int) -> Counter[str]:
    items = capacity.normalise(strategy)
    on: Counter[str] = Counter()
    for _ in range(n):
        on[capacity.pick(items, on)] += 1
    return on


@pytest.mark.parametrize(
    ("strategy", "n", "want"),
    [
        # The ECS guide's example shape: the base on FARGATE, then one in four there.
        (
            [
                {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                {"capacityProvider": "FARGATE_SPOT", "weight": 3},
            ],
            5,
            {"FARGATE": 2, "FARGATE_SPOT": 3},
        ),
        (
            [
                {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                {"capacityProvider": "FARGATE_SPOT", "weight": 3},
            ],
            9,
            {"FARGATE": 3, "FARGATE_SPOT": 6},
        ),
        (
            [{"capacityProvider": "FARGATE", "base": 2}, {"capacityProvider": "FARGATE_SPOT", "weight": 1}],
            5,
            {"FARGATE": 2, "FARGATE_SPOT": 3},
        ),  # weight 0: nothing beyond its base
        ([{"capacityProvider": "FARGATE_SPOT"}], 3, {"FARGATE_SPOT": 3}),  # alone, weight 0 still places
    ],
)
def test_the_base_first_then_the_weights(strategy: list[dict[str, Any]], n: int, want: dict[str, int]) -> None:
    assert launches(strategy, n) == Counter(want)


def test_a_replacement_goes_where_the_split_is_short() -> None:
    items = capacity.normalise(
        [{"capacityProvider": "FARGATE", "base": 1, "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 3}]
    )
    # A Spot task was interrupted: 2 on FARGATE and 2 on Spot remain, the replacement goes to Spot.
    assert capacity.pick(items, {"FARGATE": 2, "FARGATE_SPOT": 2}) == "FARGATE_SPOT"


CLUSTER = SimpleNamespace(
    capacity_providers=["FARGATE", "FARGATE_SPOT", "asg-cp"], default_capacity_provider_strategy=[]
)
BACKEND = SimpleNamespace(capacity_providers={"asg-cp": object()})


@pytest.mark.parametrize(
    "strategy",
    [
        [{"capacityProvider": "other-cp", "weight": 1}],  # not associated with the cluster
        [{"capacityProvider": "FARGATE", "base": 1, "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "base": 1}],
        [{"capacityProvider": "FARGATE", "weight": 0}, {"capacityProvider": "FARGATE_SPOT", "weight": 0}],
        [{"capacityProvider": "FARGATE", "weight": 1}, {"capacityProvider": "asg-cp", "weight": 1}],
        [{"capacityProvider": "FARGATE", "weight": 1}, {"capacityProvider": "FARGATE", "weight": 2}],
        [{"capacityProvider": "FARGATE", "weight": 1001}],
    ],
)
def test_strategies_ecs_refuses(strategy: list[dict[str, Any]]) -> None:
    with pytest.raises(InvalidParameterException):
        capacity.validate(BACKEND, CLUSTER, strategy)


def test_create_service_takes_the_launch_type_the_strategy_or_the_cluster_default() -> None:
    fargate = [{"capacityProvider": "FARGATE", "weight": 1}]
    assert capacity.resolve(BACKEND, CLUSTER, "FARGATE", None) == ("FARGATE", [])
    assert capacity.resolve(BACKEND, CLUSTER, None, fargate) == (None, capacity.normalise(fargate))
    assert capacity.resolve(BACKEND, CLUSTER, None, None) == ("EC2", [])
    with_default = SimpleNamespace(capacity_providers=["FARGATE"], default_capacity_provider_strategy=fargate)
    assert capacity.resolve(BACKEND, with_default, None, None) == (None, capacity.normalise(fargate))
    with pytest.raises(InvalidParameterException):
        capacity.resolve(BACKEND, CLUSTER, "FARGATE", fargate)
