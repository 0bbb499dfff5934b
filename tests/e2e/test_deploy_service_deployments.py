"""ecs-ship on ECS's service deployments: it follows the one its UpdateService created, rolls back through
ECS (StopServiceDeployment) while that is in progress, and follows ECS's own circuit-breaker rollback
instead of starting a second one."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import App
from tests.e2e.conftest import describe, ecs_ship, poll, served, spec_for, start_ecs_ship, writes
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox


def latest_service_deployment(sandbox: Sandbox, w: World) -> dict[str, object]:
    ecs = sandbox.clients()["ecs"]
    arn = describe(ecs, w)["currentServiceDeployment"]
    return dict(ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0])


def test_a_healthy_deploy_follows_its_service_deployment_to_successful(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v2"}))
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    sd = latest_service_deployment(sandbox, w)
    short = str(sd["serviceDeploymentArn"]).rsplit("/", 1)[-1]
    assert sd["status"] == "SUCCESSFUL"
    # A rolling update's record says nothing a healthy deploy needs: not read as its tasks start or its rollout
    # completes (at most once, at the watch's periodic refresh on a slow machine).
    assert sandbox.ledger.count_by_action(mark)["DescribeServiceDeployments"] <= 1
    assert served(w) == "hello v2"
    status = ecs_ship(sandbox, "status", "--spec", str(app.spec))
    assert f"service deployment {short} SUCCESSFUL" in status.out, status.text


def test_a_failed_deploy_is_rolled_back_by_ecs_while_in_progress(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    # No circuit breaker: ecs-ship judges the unhealthy target and asks ECS to roll back its own deployment.
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v3", "HEALTH": "500"}))
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 1, run.text
    assert "Target.ResponseCodeMismatch" in run.text
    assert "(StopServiceDeployment)" in run.text
    assert f"rolled back: {w.task_definition_arn.rsplit('/', 1)[-1]} is serving again" in run.text
    assert writes(sandbox, mark) == ["RegisterTaskDefinition", "UpdateService", "StopServiceDeployment"]
    assert latest_service_deployment(sandbox, w)["status"] == "ROLLBACK_SUCCESSFUL"
    assert describe(sandbox.clients()["ecs"], w)["taskDefinition"] == w.task_definition_arn
    assert served(w) == "hello v1"


def test_a_rollback_someone_starts_in_ecs_is_followed_not_fought(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    # While ecs-ship waits for a slow starter, a person rolls the deployment back from the console.
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    before = describe(ecs, w)["currentServiceDeployment"]
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v4", "START_DELAY": "20"}))
    mark = sandbox.ledger.mark()
    proc = start_ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    try:
        arn = poll(
            lambda: describe(ecs, w)["currentServiceDeployment"], lambda a: a != before, 120, "the deploy's update"
        )
        ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, out + err
    short = arn.rsplit("/", 1)[-1]
    assert f"ECS is already rolling back service deployment {short}" in out
    assert f"rolled back: {w.task_definition_arn.rsplit('/', 1)[-1]} is serving again" in out
    # The person's StopServiceDeployment is the only rollback: ecs-ship made none of its own.
    assert writes(sandbox, mark) == ["RegisterTaskDefinition", "UpdateService", "StopServiceDeployment"]
    assert served(w) == "hello v1"
