"""`ecs-ship deploy` on a rolling service whose circuit breaker the user configured with plain boto3
(thresholdConfiguration COUNT 1, rollback on): ECS trips it on the first failed task and rolls back itself; the
deploy fails with ECS's reason, follows ECS's rollback and starts none of its own."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import App
from tests.e2e.conftest import describe, ecs_ship, served, spec_for, writes
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox


def test_a_breaker_that_trips_on_one_failure_is_reported_with_ecs_reason_and_rolled_back_by_ecs(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    conf = describe(ecs, w)["deploymentConfiguration"]
    conf["deploymentCircuitBreaker"] = {
        "enable": True,
        "rollback": True,
        "thresholdConfiguration": {"type": "COUNT", "value": 1},
    }
    ecs.update_service(cluster=w.cluster, service=w.service, deploymentConfiguration=conf)
    app = make_app()
    # A container that exits at start: every task of the new revision fails.
    app.write_spec(spec_for(w, build_args={"VERSION": "v2", "CRASH": "1"}))
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 1, run.text
    assert "circuit breaker" in run.text and "ROLLBACK" in run.text, run.text
    # One UpdateService (the deploy's); the rollback is ECS's own.
    assert writes(sandbox, mark) == ["RegisterTaskDefinition", "UpdateService"], writes(sandbox, mark)
    svc = describe(ecs, w)
    sd = ecs.describe_service_deployments(serviceDeploymentArns=[svc["currentServiceDeployment"]])
    breaker = sd["serviceDeployments"][0]["deploymentCircuitBreaker"]
    assert breaker["threshold"] == 1 and breaker["status"] == "TRIGGERED", breaker
    assert sd["serviceDeployments"][0]["status"] in ("ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL")
    assert served(w) == "hello v1"
