"""Pre-flight checks end to end: worlds built with plain boto3, each broken the way users break theirs, caught by
`ecs-ship verify` and by `deploy` before any write (counted by the sandbox), each with its fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.conftest import App
from tests.e2e.conftest import assert_iam_listed, aws, ecs_ship, poll, spec_for, writes
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.simulator import LABEL


def current_task_definition(sandbox: Sandbox, w: World) -> dict[str, Any]:
    ecs = aws(sandbox, "ecs", w.region)
    return dict(ecs.describe_task_definition(taskDefinition=w.task_definition_arn)["taskDefinition"])


def with_task_definition(app: App, w: World, td: dict[str, Any]) -> None:
    """The spec deploys `td`, as a user's taskdef.json copied from the console and edited."""
    (app.root / "taskdef.json").write_text(json.dumps(td, default=str))
    app.write_spec(spec_for(w, extra="task_definition: taskdef.json\n"))


def broken_task_definition(sandbox: Sandbox, w: World) -> dict[str, Any]:
    """The world's revision, as a user would copy it into taskdef.json, with references to what is not there:
    an SSM parameter, a Secrets Manager secret (and a malformed reference to a real one), a log group, and a
    task role that only EC2 may assume."""
    iam, sm, ssm = (
        aws(sandbox, "iam", w.region),
        aws(sandbox, "secretsmanager", w.region),
        aws(sandbox, "ssm", w.region),
    )
    td = current_task_definition(sandbox, w)
    ssm.put_parameter(Name=f"/{w.family}/present", Value="x", Type="SecureString")
    real = sm.create_secret(Name=f"{w.family}-db", SecretString=json.dumps({"password": "p"}))["ARN"]
    ec2_only = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    task_role = iam.create_role(RoleName=f"{w.family}-app", AssumeRolePolicyDocument=json.dumps(ec2_only))["Role"]
    web = td["containerDefinitions"][0]
    web["secrets"] = [
        {"name": "PRESENT", "valueFrom": f"/{w.family}/present"},
        {"name": "MISSING", "valueFrom": f"/{w.family}/missing"},
        {"name": "DB_PASSWORD", "valueFrom": f"{real}:password::"},
        {"name": "DB_SHORT", "valueFrom": f"{real}:password"},
        {"name": "GONE", "valueFrom": real.replace(f"{w.family}-db", f"{w.family}-gone")},
    ]
    web["logConfiguration"]["options"]["awslogs-group"] = f"/ecs/{w.family}-nowhere"
    td["taskRoleArn"] = task_role["Arn"]
    return dict(td)


def refused_before_any_write(sandbox: Sandbox, app: App, wanted: str) -> None:
    """A deploy of `app` stops at its pre-flight checks, saying `wanted`, before any write."""
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 1, run.text
    assert wanted in run.text, (wanted, run.text)
    assert writes(sandbox, mark) == []


def test_verify_names_every_broken_reference_and_deploy_writes_nothing(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    with_task_definition(app, w, broken_task_definition(sandbox, w))

    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "verify", "--spec", str(app.spec))
    assert run.code == 1, run.text
    failures = [line for line in run.text.splitlines() if "failure" in line]
    for wanted in (
        f"secret MISSING of web: no SSM parameter /{w.family}/missing",
        "secret DB_SHORT of web: ",
        "secret GONE of web: no secret",
        f"log group of web /ecs/{w.family}-nowhere: no log group",
        f"task role {w.family}-app: its trust policy does not let ecs-tasks.amazonaws.com assume it",
    ):
        assert any(wanted in line for line in failures), (wanted, run.text)
    assert "ok      secret PRESENT of web" in run.text and "ok      secret DB_PASSWORD of web" in run.text
    assert "ok      execution role" in run.text and "ok      target group" in run.text
    read = {c.action for c in sandbox.ledger.calls_since(mark)}
    assert not read & {"GetSecretValue", "GetParameter", "GetParameters"}  # metadata only: no secret value read
    assert writes(sandbox, mark) == []
    assert_iam_listed(sandbox, mark)

    mark = sandbox.ledger.mark()
    deployed = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert deployed.code == 1, deployed.text
    assert "failed the pre-flight check of" in deployed.text and "(and 4 more: see above)" in deployed.text
    assert writes(sandbox, mark) == []  # nothing built was registered, no service was touched


def sound(make_world: Callable[..., World], make_app: Callable[[], App]) -> App:
    """A world as the sandbox builds it (roles, log group, network, target group all there) and its app."""
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w))
    return app


def test_a_sound_world_passes_and_a_deploy_says_so_in_one_line(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    app = sound(make_world, make_app)
    run = ecs_ship(sandbox, "verify", "--spec", str(app.spec))
    assert run.code == 0, run.text
    assert "failure" not in run.text and "warning" not in run.text
    for check in ("deployment controller", "Fargate task size", "execution role", "log group of web", "subnets"):
        assert f"ok      {check}" in run.text, (check, run.text)
    planned = ecs_ship(sandbox, "plan", "--spec", str(app.spec))
    assert planned.code == 0, planned.text
    assert "pre-flight checks (a deploy stops before its first write if one fails):" in planned.text
    assert "    ok      execution role" in planned.text
    deployed = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert deployed.code == 0, deployed.text
    assert "pre-flight: " in deployed.text and " checks passed" in deployed.text


def test_a_check_the_credentials_may_not_run_is_a_warning_naming_the_permission(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    app = sound(make_world, make_app)
    sandbox.ledger.fail("GetRole", 1, "AccessDenied", 403, "not authorized to perform: iam:GetRole")
    run = ecs_ship(sandbox, "verify", "--spec", str(app.spec))
    assert run.code == 0, run.text
    assert "warning execution role" in run.text and "iam:GetRole" in run.text


def test_no_verify_skips_the_checks(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    """A check that is wrong about a world (or a permission the deploying role lacks everywhere) must not stand
    between a user and a deploy: --no-verify goes straight to the writes."""
    w = make_world()
    app = make_app()
    td = current_task_definition(sandbox, w)
    td["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"] = f"/ecs/{w.family}-later"
    aws(sandbox, "logs", w.region).create_log_group(logGroupName=f"/ecs/{w.family}-later")
    with_task_definition(app, w, td)
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--no-verify", "--spec", str(app.spec))
    assert run.code == 0, run.text
    assert "pre-flight" not in run.text
    assert not any(c.service == "iam" for c in sandbox.ledger.calls_since(mark))  # only the checks read IAM


def test_a_missing_secret_stops_a_deploy_in_seconds_and_without_the_checks_only_after_its_tasks_fail(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    """With the checks, nothing is written; without them (--no-verify), ECS (here the simulator) stops each new
    task before it starts, as AWS does, and the deploy fails and rolls back once the rollout has been paid for."""
    w = make_world()
    app = make_app()
    td = current_task_definition(sandbox, w)
    td["containerDefinitions"][0]["secrets"] = [{"name": "API_KEY", "valueFrom": f"/{w.family}/api-key"}]
    with_task_definition(app, w, td)

    refused_before_any_write(
        sandbox, app, f"failed the pre-flight check of secret API_KEY of web: no SSM parameter /{w.family}/api-key"
    )

    mark = sandbox.ledger.mark()
    unchecked = ecs_ship(sandbox, "deploy", "--no-verify", "--spec", str(app.spec))
    assert unchecked.code == 1, unchecked.text
    assert "ResourceInitializationError: unable to pull secrets or registry auth" in unchecked.text
    assert writes(sandbox, mark)[:2] == ["RegisterTaskDefinition", "UpdateService"]

    # Once the parameter exists, the same spec deploys, its value reaches the container's environment as ECS
    # injects it, and it is never printed.
    aws(sandbox, "ssm", w.region).put_parameter(Name=f"/{w.family}/api-key", Value="s3cret", Type="SecureString")
    fixed = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert fixed.code == 0, fixed.text
    assert "s3cret" not in fixed.text
    assert sandbox.docker is not None
    ecs = aws(sandbox, "ecs", w.region)
    arns = ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"]
    running = [t for t in ecs.describe_tasks(cluster=w.cluster, tasks=arns)["tasks"] if t["lastStatus"] == "RUNNING"]
    new = [t for t in running if t["taskDefinitionArn"] != w.task_definition_arn]
    assert new, running
    envs = [
        dict(item.split("=", 1) for item in c.attrs["Config"]["Env"])
        for t in new
        for c in sandbox.docker.containers.list(filters={"label": f"{LABEL}.task={t['taskArn']}"})
    ]
    assert envs and all(env.get("API_KEY") == "s3cret" for env in envs), envs


def test_a_role_ecs_cannot_assume_is_caught_before_the_deploy_and_without_the_checks_fails_fast(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    """An execution role whose trust policy names EC2, not ECS tasks: ECS creates no task and says so in the
    service's events, retrying for ever; the deploy fails once the event has stood for the patience (not at the
    timeout), rolls back, and the old task never stopped serving."""
    w = make_world()
    app = make_app()
    ec2_only = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    iam = aws(sandbox, "iam", w.region)
    role = iam.create_role(RoleName=f"{w.family}-exec2", AssumeRolePolicyDocument=json.dumps(ec2_only))["Role"]
    td = current_task_definition(sandbox, w)
    td["executionRoleArn"] = role["Arn"]
    with_task_definition(app, w, td)

    refused_before_any_write(
        sandbox, app, f"execution role {w.family}-exec2: its trust policy does not let ecs-tasks.amazonaws.com"
    )

    unchecked = ecs_ship(sandbox, "deploy", "--no-verify", "--spec", str(app.spec))
    assert unchecked.code == 1, unchecked.text
    assert "ECS cannot launch any task of deployment" in unchecked.text, unchecked.text
    assert f"ECS was unable to assume the role '{role['Arn']}'" in unchecked.text
    assert "rolled back" in unchecked.text, unchecked.text
    ecs = aws(sandbox, "ecs", w.region)
    svc = ecs.describe_services(cluster=w.cluster, services=[w.service])["services"][0]
    assert svc["taskDefinition"] == w.task_definition_arn
    assert svc["runningCount"] == 1


def test_an_environment_file_is_checked_before_the_deploy_and_reaches_the_container(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    """A container's `environmentFiles` names an S3 object: missing, the checks name it and nothing is written;
    uploaded, the deploy passes and the container starts with its variables (`environment` wins a clash)."""
    w = make_world()
    app = make_app()
    s3 = aws(sandbox, "s3", w.region)
    bucket = f"{w.family}-config"
    s3.create_bucket(Bucket=bucket)
    td = current_task_definition(sandbox, w)
    web = td["containerDefinitions"][0]
    web["environmentFiles"] = [{"value": f"arn:aws:s3:::{bucket}/web.env", "type": "s3"}]
    web["environment"] = [*web.get("environment", []), {"name": "GREETING", "value": "from the task definition"}]
    with_task_definition(app, w, td)

    refused_before_any_write(sandbox, app, f"environment file of web: no object s3://{bucket}/web.env")

    s3.put_object(Bucket=bucket, Key="web.env", Body=b"# from S3\nFEATURE=on\nGREETING=from the file\n")
    deployed = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert deployed.code == 0, deployed.text
    assert sandbox.docker is not None
    ecs = aws(sandbox, "ecs", w.region)
    arns = ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"]
    running = [t for t in ecs.describe_tasks(cluster=w.cluster, tasks=arns)["tasks"] if t["lastStatus"] == "RUNNING"]
    envs = [
        dict(item.split("=", 1) for item in c.attrs["Config"]["Env"])
        for t in running
        if t["taskDefinitionArn"] != w.task_definition_arn
        for c in sandbox.docker.containers.list(filters={"label": f"{LABEL}.task={t['taskArn']}"})
    ]
    assert envs and all(e.get("FEATURE") == "on" and e.get("GREETING") == "from the task definition" for e in envs)


def test_ecs_creates_no_task_whose_role_it_cannot_assume_and_says_so_in_the_events(
    sandbox: Sandbox, make_world: Callable[..., World]
) -> None:
    """The simulator alone, driven by plain boto3 calls as a user's script would: a revision naming an execution
    role that does not exist, and UpdateService. ECS places no task of the new deployment and writes its
    "failed to launch a task" event; the old task keeps running."""
    w = make_world()
    ecs = aws(sandbox, "ecs", w.region)
    td = current_task_definition(sandbox, w)
    keep = ("family", "networkMode", "requiresCompatibilities", "cpu", "memory", "containerDefinitions")
    missing = f"arn:aws:iam::123456789012:role/{w.family}-never-made"
    arn = ecs.register_task_definition(**{k: td[k] for k in keep}, executionRoleArn=missing)["taskDefinition"][
        "taskDefinitionArn"
    ]
    deployment = ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=arn)["service"]["deployments"][
        0
    ]["id"]
    wanted = f"failed to launch a task with (error ECS was unable to assume the role '{missing}'"
    svc = poll(
        lambda: ecs.describe_services(cluster=w.cluster, services=[w.service])["services"][0],
        lambda s: any(wanted in e["message"] for e in s["events"]),
        30,
        "the launch failure event",
    )
    ours = next(d for d in svc["deployments"] if d["id"] == deployment)
    assert ours["runningCount"] == ours["pendingCount"] == 0
    assert ecs.list_tasks(cluster=w.cluster, startedBy=deployment)["taskArns"] == []
    assert ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"]  # the old task still runs
