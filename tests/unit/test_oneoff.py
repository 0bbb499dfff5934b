"""One-off tasks planned: `pre_deploy` RunTask calls between the new revision's registration and the service
update, `post_deploy` ones after it (made once the revision serves), on the service's capacity and network, with
the entry's command and environment (shown without its values); a container the task definition lacks is bad
input."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ecs_ship import oneoff
from ecs_ship.errors import InputError
from ecs_ship.plan import make_plan
from ecs_ship.spec import OneOffSpec
from tests.unit.test_plan import NEW_IMAGE, OLD_IMAGE, TD_ARN, ops, service_entry, spec, state

MIGRATE = OneOffSpec("migrate", None, ("bin/migrate", "up"), 120.0, (("DATABASE_URL", "postgres://u:pw@db/app"),))
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"]}}


def test_a_pre_deploy_task_runs_between_register_and_update_on_the_service_capacity() -> None:
    svc = replace(spec(), pre_deploy=(MIGRATE,))
    the_state = state(service=service_entry(networkConfiguration=NETWORK))
    plan = make_plan(svc, the_state, {"web": NEW_IMAGE})
    assert ops(plan) == ["ecs.register_task_definition", "ecs.run_task", "ecs.update_service"]
    call = plan.calls[1]
    assert call.params == {
        "cluster": "prod",
        "taskDefinition": "<new revision>",
        "count": 1,
        "startedBy": "ecs-ship/migrate",
        "overrides": {
            "containerOverrides": [
                {
                    "name": "web",
                    "command": ["bin/migrate", "up"],
                    "environment": [{"name": "DATABASE_URL", "value": "postgres://u:pw@db/app"}],
                }
            ]
        },
        "launchType": "FARGATE",
        "networkConfiguration": NETWORK,
    }
    printed = "\n".join(plan.lines())
    assert "DATABASE_URL=***" in printed and "pw@db" not in printed
    assert "pre_deploy migrate: must exit 0 in container web within 120s" in printed


def test_a_capacity_provider_strategy_is_used_instead_of_a_launch_type() -> None:
    strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    params = oneoff.run_task_params(MIGRATE, "web", {"capacityProviderStrategy": strategy}, "prod", "td:8")
    assert params["capacityProviderStrategy"] == strategy and "launchType" not in params


def test_the_container_is_the_entry_s_else_the_first_image_s_else_the_first() -> None:
    document = {"containerDefinitions": [{"name": "app"}, {"name": "web"}]}
    assert oneoff.container_of(MIGRATE, spec(), document, 0) == "app"
    assert oneoff.container_of(replace(MIGRATE, container="web"), spec(), document, 0) == "web"
    with pytest.raises(InputError) as err:
        oneoff.container_of(replace(MIGRATE, container="db"), spec(), document, 3)
    assert "no container 'db' (it has: app, web)" in str(err.value) and "pre_deploy[3].container" in (
        err.value.fix or ""
    )


WARM = OneOffSpec("warm", None, ("warm", "--all"), 30.0, (("API_TOKEN", "tok-123"),), "post_deploy")


def test_post_deploy_tasks_are_made_once_the_revision_serves_listed_after_the_deploy_calls() -> None:
    svc = replace(spec(), pre_deploy=(MIGRATE,), post_deploy=(WARM,))
    plan = make_plan(svc, state(service=service_entry(networkConfiguration=NETWORK)), {"web": NEW_IMAGE})
    assert ops(plan) == ["ecs.register_task_definition", "ecs.run_task", "ecs.update_service"]
    [after] = plan.after
    assert after.params == {
        **plan.calls[1].params,
        "startedBy": "ecs-ship/warm",
        "overrides": {
            "containerOverrides": [
                {
                    "name": "web",
                    "command": ["warm", "--all"],
                    "environment": [{"name": "API_TOKEN", "value": "tok-123"}],
                }
            ]
        },
    }
    lines = plan.lines()
    at = lines.index("  once the new revision serves:")
    assert lines[at - 1].startswith("    3. ecs.update_service(")
    assert lines[at + 1].startswith("    4. ecs.run_task(cluster='prod', taskDefinition='<new revision>'")
    assert lines[at + 1].endswith("# post_deploy warm: must exit 0 in container web within 30s")
    assert "API_TOKEN=***" in lines[at + 1] and "tok-123" not in "\n".join(lines)


def test_a_post_deploy_container_the_task_definition_lacks_is_bad_input_naming_its_key() -> None:
    svc = replace(spec(), post_deploy=(WARM, replace(WARM, name="verify", container="db")))
    with pytest.raises(InputError) as err:
        make_plan(svc, state(), {"web": NEW_IMAGE})
    assert str(err.value).startswith("failed to plan post_deploy task verify of hello: the task definition has no")
    assert err.value.fix == "set post_deploy[1].container to one of those"


def test_a_redeploy_of_the_running_revision_runs_post_deploy_tasks_with_it() -> None:
    svc = replace(spec(), post_deploy=(WARM,))
    plan = make_plan(svc, state(), {"web": OLD_IMAGE})
    assert not plan.register and plan.after[0].params["taskDefinition"] == TD_ARN
