"""`pre_deploy` one-off tasks through the real CLI: a migration that succeeds runs with the new image before the
switch, one that exits 1 stops the deploy with the service untouched and its logs shown, one that hangs is
stopped at its timeout, and a container the task definition lacks is bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from tests.conftest import App
from tests.e2e.conftest import describe, ecs_ship, served, spec_for, started_task, writes
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox


def _spec(w: World, app: App, command: str | list[str], timeout: float = 60, container: str = "") -> None:
    job = {"name": "migrate", "command": command, "timeout": timeout, "environment": {"MIGRATION_TARGET": "schema-7f3"}}
    if container:
        job["container"] = container
    extra = yaml.safe_dump({"pre_deploy": [job]})
    app.write_spec(spec_for(w, build_args={"VERSION": "v2"}, extra=extra))


def _task(ecs: Any, w: World, out: str) -> dict[str, Any]:
    return started_task(ecs, w.cluster, out, "pre_deploy migrate")


def test_a_migration_that_succeeds_runs_with_the_new_image_before_the_switch(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    _spec(w, app, 'sh -c "echo migrating $$VERSION to $$MIGRATION_TARGET"')
    plan = ecs_ship(sandbox, "plan", "--spec", str(app.spec))
    assert plan.code == 0, plan.text
    assert "ecs.run_task(" in plan.out and "MIGRATION_TARGET=***" in plan.out and "schema-7f3" not in plan.out, plan.out

    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    # Written in this order: the revision, the one-off task with it, then the service.
    assert writes(sandbox, mark) == ["RegisterTaskDefinition", "RunTask", "UpdateService"], writes(sandbox, mark)
    assert "[migrate] migrating v2 to schema-7f3" in run.out and "container web exited 0" in run.out, run.out
    ecs = sandbox.clients()["ecs"]
    task = _task(ecs, w, run.out)
    assert task["startedBy"] == "ecs-ship/migrate" and task["containers"][0]["exitCode"] == 0
    assert task["taskDefinitionArn"] == describe(ecs, w)["taskDefinition"] and task["taskDefinitionArn"].endswith(":2")
    assert served(w) == "hello v2"


def test_a_migration_that_fails_stops_the_deploy_with_the_service_untouched(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    _spec(w, app, 'sh -c "echo relation users already exists >&2; exit 1"')
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 1, run.text
    assert writes(sandbox, mark) == ["RegisterTaskDefinition", "RunTask"], writes(sandbox, mark)
    assert "pre_deploy task migrate failed: container web exited 1" in run.err, run.text
    assert "relation users already exists" in run.text and "failed before the switch" in run.out, run.text
    why = run.out[run.out.index("pre_deploy failed; why:") :]
    assert "Essential container in task exited" in why and "[web] relation users already exists" in why, why
    assert "the service was not updated: it still runs" in run.err, run.err
    assert describe(sandbox.clients()["ecs"], w)["taskDefinition"] == w.task_definition_arn
    assert served(w) == "hello v1"


def test_a_migration_that_hangs_is_stopped_at_its_timeout(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    _spec(w, app, ["sleep", "600"], timeout=3)
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 1, run.text
    assert "ran longer than its timeout (3s) and was stopped" in run.err, run.text
    assert writes(sandbox, mark) == ["RegisterTaskDefinition", "RunTask", "StopTask"], writes(sandbox, mark)
    task = _task(sandbox.clients()["ecs"], w, run.out)
    assert task["lastStatus"] == "STOPPED" and "timed out after 3s" in task["stoppedReason"]
    assert served(w) == "hello v1"


def test_a_container_the_task_definition_lacks_is_bad_input_with_no_write(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    _spec(w, app, ["./migrate"], container="db")
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 2, run.text
    assert "has no container 'db'" in run.err and "pre_deploy[0].container" in run.err, run.text
    assert writes(sandbox, mark) == []
