"""`ecs-ship continue`: only a deployment held at a PAUSE hook is continued; anything else is bad input (exit
2) with no write."""

from __future__ import annotations

import argparse
import io
from typing import Any

import pytest

from ecs_ship import aws, deploy
from ecs_ship.cli import main, parser
from ecs_ship.commands import continue_deployment
from ecs_ship.errors import InputError
from ecs_ship.gha import Reporter
from tests.unit.test_pipeline import ctx, svc
from tests.unit.test_service_deployments import AT, NEW, OLD, SD, service, stubbed

__all__ = ["stubbed"]  # the fixture, used by name

REVISION = "arn:aws:ecs:us-east-1:1:service-revision/prod/hello/111"


def held(status: str = "IN_PROGRESS", hooks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    record = {
        "serviceDeploymentArn": SD,
        "status": status,
        "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
        "createdAt": AT,
        "sourceServiceRevisions": [{"arn": REVISION, "requestedTaskCount": 1}],
        "lifecycleHookDetails": hooks or [],
    }
    return {"serviceDeployments": [record], "failures": []}


def with_current(resp: dict[str, Any]) -> dict[str, Any]:
    resp["services"][0]["currentServiceDeployment"] = SD
    return resp


PAUSE = {"hookId": "h-1", "targetType": "PAUSE", "status": "AWAITING_ACTION", "timeoutAction": "ROLLBACK"}


@pytest.fixture
def prepared(stubbed: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    clients, stub = stubbed
    monkeypatch.setattr(aws, "make_clients", lambda region: clients)
    stub.add_response("describe_services", with_current(service((NEW, "PRIMARY", "td:2"), (OLD, "ACTIVE", "td:1"))))
    return stub


def test_a_deployment_held_at_a_pause_hook_is_prepared_with_its_hook_and_what_it_replaces(prepared: Any) -> None:
    prepared.add_response("describe_service_deployments", held(hooks=[PAUSE]), {"serviceDeploymentArns": [SD]})
    prepared.add_response(
        "describe_service_revisions",
        {"serviceRevisions": [{"serviceRevisionArn": REVISION, "taskDefinition": "td:1"}], "failures": []},
        {"serviceRevisionArns": [REVISION]},
    )
    p = continue_deployment.prepare(ctx(), None, svc("hello"))  # type: ignore[arg-type]
    assert (p.hook_id, p.deployment_id, p.task_definition, p.source) == ("h-1", NEW, "td:2", "td:1")
    prepared.assert_no_pending_responses()


@pytest.mark.parametrize(
    "hooks",
    [[], [{**PAUSE, "status": "SUCCEEDED"}], [{**PAUSE, "targetType": "AWS_LAMBDA", "status": "IN_PROGRESS"}]],
)
def test_nothing_held_is_bad_input_with_no_write(prepared: Any, hooks: list[dict[str, Any]]) -> None:
    prepared.add_response("describe_service_deployments", held(hooks=hooks))
    with pytest.raises(InputError) as caught:
        continue_deployment.prepare(ctx(), None, svc("hello"))  # type: ignore[arg-type]
    assert caught.value.exit_code == 2
    assert "service deployment abc is IN_PROGRESS at POST_TEST_TRAFFIC_SHIFT, and no PAUSE hook awaits" in str(
        caught.value
    )
    prepared.assert_no_pending_responses()  # and the stub would have refused any write


def test_the_action_follows_the_flag(stubbed: Any) -> None:
    clients, stub = stubbed
    for action in ("CONTINUE", "ROLLBACK"):
        stub.add_response(
            "continue_service_deployment",
            {"serviceDeploymentArn": SD},
            {"serviceDeploymentArn": SD, "hookId": "h-1", "action": action},
        )
    deploy.continue_service_deployment(clients, SD, "h-1", rollback=False)
    deploy.continue_service_deployment(clients, SD, "h-1", rollback=True)
    stub.assert_no_pending_responses()


def test_the_command_line_takes_rollback_and_timeout() -> None:
    args = parser().parse_args(["continue", "--rollback", "--timeout", "60"])
    assert isinstance(args, argparse.Namespace) and args.rollback and args.timeout == 60.0


@pytest.mark.parametrize("controller", ["CODE_DEPLOY", "EXTERNAL"])
def test_rollback_of_a_service_another_controller_deploys_is_bad_input_with_no_write(
    stubbed: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str], controller: str
) -> None:
    clients, stub = stubbed
    monkeypatch.setattr(aws, "make_clients", lambda region: clients)
    resp = service((NEW, "PRIMARY", "td:2"))
    resp["services"][0]["deploymentController"] = {"type": controller}
    stub.add_response("describe_services", resp)
    spec = tmp_path / "ecs-ship.yml"
    spec.write_text("version: 1\ncluster: prod\nservice: hello\nregion: us-east-1\n")
    code = main(["rollback", "--spec", str(spec)], out=Reporter(stream=io.StringIO(), environ={}))
    assert code == 2
    assert f"failed to roll back service hello: its deployment controller is {controller}" in capsys.readouterr().err
    stub.assert_no_pending_responses()  # one read, and the stub refuses any call not queued, writes included
