"""Old task-definition revisions through the real CLI: `keep_revisions` after a deploy and `ecs-ship prune`
deregister (never delete) what is older than the newest N, and keep every revision a service of any cluster
uses and the one a rollback returns to, counted server-side; the sandbox refuses an INACTIVE revision to new
tasks and services as ECS does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions
import pytest

from tests.conftest import App
from tests.e2e.conftest import describe, ecs_ship, register_revision, served, spec_for, writes
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox


def _numbers(ecs: Any, family: str, status: str) -> list[int]:
    pages = ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status=status)
    return sorted(int(arn.rsplit(":", 1)[1]) for page in pages for arn in page["taskDefinitionArns"])


def _more_revisions(ecs: Any, w: World, count: int) -> list[str]:
    """Revisions registered by hand (as a console or Terraform would) and never deployed."""
    image = ecs.describe_task_definition(taskDefinition=w.task_definition_arn)["taskDefinition"]
    first = image["containerDefinitions"][0]["image"]
    return [register_revision(ecs, w, first) for _ in range(count)]


def _idle_service(ecs: Any, w: World, cluster: str, name: str, task_definition: str) -> None:
    """A service with no tasks that still references `task_definition` (scaled to zero, as staging often is)."""
    network = describe(ecs, w)["networkConfiguration"]
    ecs.create_service(
        cluster=cluster,
        serviceName=name,
        taskDefinition=task_definition,
        desiredCount=0,
        launchType="FARGATE",
        networkConfiguration=network,
    )


def test_a_deploy_keeps_the_newest_n_and_every_revision_in_use_or_to_roll_back_to(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    more = _more_revisions(ecs, w, 5)  # revisions 2-6, never served
    _idle_service(ecs, w, w.cluster, f"{w.service}-admin", more[0])  # 2: another service of the cluster
    other_cluster = ecs.create_cluster(clusterName=f"{w.cluster}-stg")["cluster"]["clusterName"]
    _idle_service(ecs, w, other_cluster, f"{w.service}-stg", more[1])  # 3: a service of another cluster
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v2"}, extra="keep_revisions: 2\n"))

    plan = ecs_ship(sandbox, "plan", "--spec", str(app.spec))
    assert plan.code == 0, plan.text
    # Predicted before the deploy: revision 7 will be one of the newest 2, so 6 stays too; 1 is served now.
    assert "  once the new revision serves:" in plan.out, plan.out
    assert [
        line.split("task-definition/")[1].split("'")[0]
        for line in plan.out.splitlines()
        if "deregister_task_definition(" in line
    ] == [
        f"{w.family}:4",
        f"{w.family}:5",
    ], plan.out

    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    assert writes(sandbox, mark) == [
        "RegisterTaskDefinition",
        "UpdateService",
        "DeregisterTaskDefinition",
        "DeregisterTaskDefinition",
    ], writes(sandbox, mark)
    assert f"keep_revisions 2: deregistered 2 old revision(s) of {w.family}" in run.out, run.out
    assert served(w) == "hello v2"
    assert _numbers(ecs, w.family, "ACTIVE") == [1, 2, 3, 6, 7]
    assert _numbers(ecs, w.family, "INACTIVE") == [4, 5]
    # Deregistered, not deleted: still described, as INACTIVE.
    assert ecs.describe_task_definition(taskDefinition=f"{w.family}:4")["taskDefinition"]["status"] == "INACTIVE"

    again = ecs_ship(sandbox, "prune", "--spec", str(app.spec), "--dry-run")
    assert again.code == 0, again.text
    assert "dry run: 0 revision(s) would be deregistered" in again.out, again.out
    assert f"keep {w.family}:1: what `ecs-ship rollback` returns to" in again.out, again.out
    assert f"keep {w.family}:3: run by service {w.service}-stg in cluster {other_cluster}" in again.out, again.out

    # The rollback goes to the revision that served before (1), not to the next lower number (6), and can:
    # revision 1 is still ACTIVE.
    back = ecs_ship(sandbox, "rollback", "--spec", str(app.spec))
    assert back.code == 0, back.text
    assert describe(ecs, w)["taskDefinition"] == w.task_definition_arn
    assert served(w) == "hello v1"


def test_prune_on_demand_with_dry_run_and_keep(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    _more_revisions(ecs, w, 4)  # 2-5
    app = make_app()
    app.write_spec(spec_for(w))

    mark = sandbox.ledger.mark()
    unset = ecs_ship(sandbox, "prune", "--spec", str(app.spec))
    assert unset.code == 2, unset.text
    assert "does not say how many revisions to keep" in unset.err and "--keep N" in unset.err, unset.text

    dry = ecs_ship(sandbox, "prune", "--spec", str(app.spec), "--keep", "2", "--dry-run")
    assert dry.code == 0, dry.text
    assert f"deregister {w.family}:2" in dry.out and f"deregister {w.family}:3" in dry.out, dry.out
    assert f"keep {w.family}:1: run by service {w.service} in cluster {w.cluster}" in dry.out, dry.out
    assert writes(sandbox, mark) == []

    run = ecs_ship(sandbox, "prune", "--spec", str(app.spec), "--keep", "2")
    assert run.code == 0, run.text
    assert writes(sandbox, mark) == ["DeregisterTaskDefinition", "DeregisterTaskDefinition"]
    assert _numbers(ecs, w.family, "ACTIVE") == [1, 4, 5] and _numbers(ecs, w.family, "INACTIVE") == [2, 3]
    assert served(w) == "hello v1"


def test_the_sandbox_refuses_an_inactive_revision_to_new_tasks_and_services_as_ecs_does(
    sandbox: Sandbox, make_world: Callable[..., World]
) -> None:
    w = make_world(wait=False)
    ecs = sandbox.clients()["ecs"]
    old, newest = _more_revisions(ecs, w, 2)
    ecs.deregister_task_definition(taskDefinition=old)
    network = describe(ecs, w)["networkConfiguration"]
    refusals = [
        lambda: ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=old),
        lambda: ecs.run_task(cluster=w.cluster, taskDefinition=old, networkConfiguration=network),
        lambda: _idle_service(ecs, w, w.cluster, "x", old),
    ]
    for call in refusals:
        with pytest.raises(botocore.exceptions.ClientError, match="TaskDefinition is inactive"):
            call()
    # The family alone names its newest ACTIVE revision; listings page and sort as the API reference says.
    assert ecs.describe_task_definition(taskDefinition=w.family)["taskDefinition"]["taskDefinitionArn"] == newest
    ecs.deregister_task_definition(taskDefinition=newest)
    assert ecs.describe_task_definition(taskDefinition=w.family)["taskDefinition"]["revision"] == 1
    first = ecs.list_task_definitions(familyPrefix=w.family, status="INACTIVE", sort="DESC", maxResults=1)
    assert first["taskDefinitionArns"] == [newest] and first["nextToken"]
    rest = ecs.list_task_definitions(
        familyPrefix=w.family, status="INACTIVE", sort="DESC", maxResults=1, nextToken=first["nextToken"]
    )
    assert rest["taskDefinitionArns"] == [old] and "nextToken" not in rest
