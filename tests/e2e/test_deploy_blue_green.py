"""`ecs-ship deploy` on blue/green services built with plain boto3: serving only once production traffic moved,
stable once ECS says SUCCESSFUL, a failing green rolled back by ECS, a PAUSE hook that ends the deploy as
`paused` and `ecs-ship continue` that finishes it, and a traffic-shifting strategy asked of a service that
cannot shift refused before any write."""

from __future__ import annotations

from collections.abc import Callable

import yaml

from tests.conftest import App, HelloImages
from tests.e2e.conftest import Hammer, Run, ecs_ship, spec_for, writes
from tests.e2e.test_blue_green import BlueGreenWorld, _get, _sd, _weights, _world
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox

BLUE_GREEN = {
    "strategy": "BLUE_GREEN",
    "bakeTimeInMinutes": 1,
    "deploymentCircuitBreaker": {"enable": True, "rollback": True},
}


def _under_load(sandbox: Sandbox, w: BlueGreenWorld, app: App) -> tuple[Run, list[str]]:
    """`ecs-ship deploy` while a client keeps requesting the production URL; what it answered, in order."""
    hammer = Hammer(w.url + "/", seconds=120)
    hammer.start()
    try:
        run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
        hammer.wait_answers(3)
    finally:
        hammer.stop()
    assert hammer.failures == [] and hammer.bodies, hammer.failures[:5]
    return run, hammer.bodies


def _runs(bodies: list[str]) -> list[str]:
    """The answers with repeats collapsed: ["a", "a", "b"] -> ["a", "b"]."""
    return [b for i, b in enumerate(bodies) if i == 0 or bodies[i - 1] != b]


def test_a_blue_green_deploy_serves_after_the_shift_and_is_stable_once_blue_is_gone(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    w = _world(sandbox, hello.get("v1"), BLUE_GREEN, test_listener=True)
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v2"}))  # type: ignore[arg-type]
    mark = sandbox.ledger.mark()
    run, bodies = _under_load(sandbox, w, app)
    assert run.code == 0, run.text
    # A client under load: no failed request, and one switch from blue to green at the shift, never back.
    assert _runs(bodies) == ["hello v1", "hello v2"], _runs(bodies)
    assert writes(sandbox, mark) == ["RegisterTaskDefinition", "UpdateService"]
    lines = run.out.splitlines()
    serving = next(i for i, ln in enumerate(lines) if "and production traffic has moved to them" in ln)
    shifted = next(i for i, ln in enumerate(lines) if "(POST_PRODUCTION_TRAFFIC_SHIFT)" in ln or "(BAKE_TIME)" in ln)
    assert shifted < serving, run.out  # healthy green alone was not taken for serving
    assert any("SUCCESSFUL" in ln for ln in lines[serving:]), run.out
    ecs, elbv2 = sandbox.clients()["ecs"], sandbox.clients()["elbv2"]
    assert {_get(w.url) for _ in range(5)} == {"hello v2"}
    assert _weights(elbv2, w.production_rule) == {w.blue: 0, w.green: 1}
    svc = ecs.describe_services(cluster=w.cluster, services=[w.service])["services"][0]
    assert _sd(ecs, svc["currentServiceDeployment"])["status"] == "SUCCESSFUL"


def test_a_failing_green_is_rolled_back_by_ecs_with_blue_serving(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    w = _world(sandbox, hello.get("v1"), BLUE_GREEN, test_listener=False)
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v2", "HEALTH": "500"}))  # type: ignore[arg-type]
    mark = sandbox.ledger.mark()
    run, bodies = _under_load(sandbox, w, app)
    assert run.code == 1, run.text
    assert set(bodies) == {"hello v1"}  # production traffic never left blue
    # ECS's circuit breaker or ecs-ship's StopServiceDeployment: either way one rollback, made by ECS.
    assert "UpdateService" not in writes(sandbox, mark)[2:], writes(sandbox, mark)
    assert "ROLLBACK" in run.text and _get(w.url) == "hello v1"
    assert _weights(sandbox.clients()["elbv2"], w.production_rule) == {w.blue: 1, w.green: 0}


def test_a_pause_ends_the_deploy_as_paused_and_continue_finishes_it(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    """The pause comes from the spec's `deployment:` (set with the deploy's own UpdateService)."""
    w = _world(sandbox, hello.get("v1"), BLUE_GREEN, test_listener=True)
    app = make_app()
    spec = yaml.safe_load(spec_for(w, build_args={"VERSION": "v2"}))  # type: ignore[arg-type]
    spec["deployment"] = {"pause": {"at": ["POST_TEST_TRAFFIC_SHIFT"], "timeout": 60}}
    app.write_spec(yaml.safe_dump(spec, sort_keys=False))
    plan = ecs_ship(sandbox, "plan", "--spec", str(app.spec))
    assert plan.code == 0 and "pauses at POST_TEST_TRAFFIC_SHIFT until `ecs-ship continue`" in plan.out, plan.text

    (app.root / "out").touch()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), env={"GITHUB_OUTPUT": str(app.root / "out")})
    assert run.code == 0, run.text
    assert "is paused at POST_TEST_TRAFFIC_SHIFT by hook" in run.out and "summary: paused" in run.out, run.out
    assert "outcome=paused" in (app.root / "out").read_text()
    assert _get(w.url) == "hello v1" and _get(w.test_url or "") == "hello v2"

    done = ecs_ship(sandbox, "continue", "--spec", str(app.spec))
    assert done.code == 0, done.text
    assert "continuing service deployment" in done.out and "summary: deployed" in done.out, done.out
    assert {_get(w.url) for _ in range(5)} == {"hello v2"}

    again = ecs_ship(sandbox, "continue", "--spec", str(app.spec))
    assert again.code == 2 and "no PAUSE hook awaits action" in again.err, again.text


def test_traffic_shifting_on_a_service_without_an_alternate_group_is_refused_before_any_write(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w, extra="deployment: {strategy: CANARY, canary_percent: 10}\n"))
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 2, run.text
    assert "no alternateTargetGroupArn and no productionListenerRule" in run.err
    assert writes(sandbox, mark) == []
