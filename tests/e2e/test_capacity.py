"""Services on Fargate capacity providers, built with plain boto3 as a user's Terraform would.

A cluster with FARGATE and FARGATE_SPOT and a default strategy (one task on FARGATE, then one in four there,
the rest on Spot); a service created with neither launch type nor strategy takes the default. ECS refuses a
strategy it cannot use before creating anything, and a deploy keeps the split the strategy asks for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import App, HelloImages
from tests.e2e.conftest import ecs_ship
from tests.e2e.test_container_health import Worker, make_worker, service_of, worker_spec
from tests.sandbox.sandbox import Sandbox

PROVIDERS = ["FARGATE", "FARGATE_SPOT"]
DEFAULT = [
    {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
    {"capacityProvider": "FARGATE_SPOT", "weight": 3},
]


def split(sandbox: Sandbox, w: Worker, deployment_id: str) -> Counter[str]:
    ecs = sandbox.clients()["ecs"]
    arns = ecs.list_tasks(cluster=w.cluster, startedBy=deployment_id)["taskArns"]
    tasks = ecs.describe_tasks(cluster=w.cluster, tasks=arns)["tasks"] if arns else []
    assert {t["launchType"] for t in tasks} == {"FARGATE"}
    return Counter(t["capacityProviderName"] for t in tasks if t["desiredStatus"] == "RUNNING")


def test_strategies_ecs_refuses_create_nothing(sandbox: Sandbox, hello: HelloImages) -> None:
    w = make_worker(sandbox, hello.get("v1"), command=["exec sleep 600"], providers=["FARGATE"])
    ecs = sandbox.clients()["ecs"]
    td = w.task_definition_arn
    refused: list[dict[str, Any]] = [
        {"launchType": "FARGATE", "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}]},
        {"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]},  # not associated
        {"capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 0}, {"capacityProvider": "FARGATE"}]},
    ]
    before = ecs.list_services(cluster=w.cluster)["serviceArns"]
    for i, placing in enumerate(refused):
        with pytest.raises(ClientError) as exc:
            ecs.create_service(
                cluster=w.cluster, serviceName=f"refused-{i}", taskDefinition=td, desiredCount=1, **placing
            )
        assert exc.value.response["Error"]["Code"] == "InvalidParameterException", placing
    assert ecs.list_services(cluster=w.cluster)["serviceArns"] == before
    with pytest.raises(ClientError) as exc:
        ecs.update_service(
            cluster=w.cluster, service=w.service, capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT"}]
        )
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"
    arn = ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"][0]
    with pytest.raises(ValueError, match="FARGATE_SPOT"):
        sandbox.interrupt_task(arn)  # a FARGATE launch-type task is never interrupted as Spot


def test_the_cluster_default_strategy_splits_tasks_and_a_deploy_keeps_the_split(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    w = make_worker(
        sandbox, hello.get("v1"), desired=5, command=["exec sleep 600"], providers=PROVIDERS, default_strategy=DEFAULT
    )
    svc = service_of(sandbox, w)
    assert "launchType" not in svc
    assert svc["capacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
        {"capacityProvider": "FARGATE_SPOT", "base": 0, "weight": 3},
    ]
    first = svc["deployments"][0]
    assert first["capacityProviderStrategy"] == svc["capacityProviderStrategy"] and "launchType" not in first
    # The base first, then the weights: 1 + 1 on FARGATE, 3 on FARGATE_SPOT.
    assert split(sandbox, w, first["id"]) == Counter({"FARGATE": 2, "FARGATE_SPOT": 3})

    app = make_app()
    worker_spec(app, w, {"VERSION": "v41"})
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    ours = service_of(sandbox, w)["deployments"][0]
    assert ours["taskDefinition"].endswith(":2") and ours["rolloutState"] == "COMPLETED"
    assert split(sandbox, w, ours["id"]) == Counter({"FARGATE": 2, "FARGATE_SPOT": 3})

    # A new strategy waits for the next deployment; an empty one goes back to the launch type.
    ecs = sandbox.clients()["ecs"]
    ecs.update_service(
        cluster=w.cluster, service=w.service, capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}]
    )
    svc = service_of(sandbox, w)
    assert len(svc["deployments"]) == 1 and svc["capacityProviderStrategy"][0]["capacityProvider"] == "FARGATE"
    ecs.update_service(cluster=w.cluster, service=w.service, capacityProviderStrategy=[])
    svc = service_of(sandbox, w)
    assert svc["launchType"] == "FARGATE" and not svc.get("capacityProviderStrategy")
