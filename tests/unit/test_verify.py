"""Pre-flight checks: the pure rules (Fargate sizes, platforms, references, trust policies, the service's shape)
and each account check against botocore Stubbers (every call expected, in order; an unexpected one fails)."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ecs_ship.aws import Clients
from ecs_ship.verify import FAILURE, OK, WARNING, Subject, iam, logs, secrets, service
from ecs_ship.verify.fargate import fargate_size, platform_match
from ecs_ship.verify.references import env_file_reference, secret_reference

SM = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
VERSION = "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def fargate(cpu: Any, memory: Any, **extra: Any) -> dict[str, Any]:
    return {"requiresCompatibilities": ["FARGATE"], "cpu": cpu, "memory": memory, **extra}


@pytest.mark.parametrize(
    ("cpu", "memory", "ok"),
    [
        ("256", "512", True),
        ("256", "3072", False),
        ("512", "4096", True),
        ("512", "5120", False),
        ("1 vCPU", "2GB", True),
        ("0.5 vCPU", "1 GB", True),
        (2048, 16384, True),
        (2048, 17408, False),
        (8192, 20480, True),  # 16 to 60 GB in 4 GB steps
        (8192, 18432, False),
        (16384, 32768, True),
        (16384, 36864, False),
        (3072, 8192, False),  # no such cpu
    ],
)
def test_fargate_offers_only_its_table_of_sizes(cpu: Any, memory: Any, ok: bool) -> None:
    found = fargate_size(fargate(cpu, memory))
    assert found is not None and (found.level == OK) == ok, found
    if not ok:
        assert found.fix and ("memory" in found.fix or "cpu" in found.fix)


def test_fargate_size_is_not_judged_for_ec2_and_windows_has_its_own_cpus() -> None:
    assert fargate_size({"requiresCompatibilities": ["EC2"], "cpu": "3"}) is None
    windows = {"runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}}
    assert fargate_size(fargate(512, 1024, **windows)).level == FAILURE  # type: ignore[union-attr]
    assert fargate_size(fargate(1024, 2048, **windows)).level == OK  # type: ignore[union-attr]
    missing = fargate_size(fargate(None, "512"))
    assert missing is not None and missing.level == FAILURE and "cpu" in missing.detail


def test_an_image_for_another_architecture_is_refused_before_the_deploy() -> None:
    arm = {"runtimePlatform": {"cpuArchitecture": "ARM64"}}
    assert platform_match(arm, "web", ["linux/arm64"]).level == OK  # type: ignore[union-attr]
    wrong = platform_match({}, "web", ["linux/arm64"])  # no runtimePlatform: ECS runs X86_64
    assert wrong is not None and wrong.level == FAILURE and "exec format error" in wrong.detail
    assert "linux/amd64" in (wrong.fix or "") and "ARM64" in (wrong.fix or "")
    assert platform_match({}, "web", ["linux/amd64", "linux/arm64"]).level == OK  # type: ignore[union-attr]
    assert platform_match({}, "web", []) is None  # nothing known: nothing said


def test_secret_references_are_read_as_ecs_reads_them() -> None:
    plain = secret_reference("web", "DB", SM)
    assert (plain.kind, plain.target, plain.problem) == ("secretsmanager", SM, None)
    keyed = secret_reference("web", "DB", f"{SM}:password::")
    assert (keyed.target, keyed.json_key, keyed.problem) == (SM, "password", None)
    staged = secret_reference("web", "DB", f"{SM}::AWSPREVIOUS:")
    assert staged.version_stage == "AWSPREVIOUS" and staged.problem is None
    short = secret_reference("web", "DB", f"{SM}:password")
    assert short.problem is not None and "three" in short.problem
    both = secret_reference("web", "DB", f"{SM}::AWSCURRENT:v1")
    assert both.problem is not None and "both" in both.problem
    assert secret_reference("web", "DB", "/app/db").kind == "ssm"
    ssm_arn = secret_reference("web", "DB", "arn:aws:ssm:eu-west-1:1:parameter/app/db")
    assert (ssm_arn.kind, ssm_arn.region, secrets.parameter_name(ssm_arn)) == ("ssm", "eu-west-1", "/app/db")
    assert secrets.parameter_name(secret_reference("w", "X", "arn:aws:ssm:us-east-1:1:parameter/plain")) == "plain"
    assert env_file_reference("web", "arn:aws:s3:::bucket/app.env", "s3").target == "bucket/app.env"
    assert env_file_reference("web", "arn:aws:s3:::bucket/app.txt", "s3").problem is not None


def test_a_trust_policy_must_let_ecs_tasks_assume_the_role() -> None:
    assert iam.trusts_ecs_tasks(TRUST)
    assert iam.trusts_ecs_tasks(urllib.parse.quote(json.dumps(TRUST)))  # as the API sends it
    listed = {"Statement": [{**TRUST["Statement"][0], "Principal": {"Service": ["ec2.amazonaws.com", iam.TASKS]}}]}
    assert iam.trusts_ecs_tasks(listed)
    ec2 = {"Statement": [{**TRUST["Statement"][0], "Principal": {"Service": "ec2.amazonaws.com"}}]}
    assert not iam.trusts_ecs_tasks(ec2)
    assert not iam.trusts_ecs_tasks({"Statement": [{**TRUST["Statement"][0], "Effect": "Deny"}]})


@pytest.fixture
def aws() -> Iterator[tuple[Clients, dict[str, Stubber]]]:
    kw: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
    made = {name: boto3.client(name, **kw) for name in ("iam", "ssm", "secretsmanager", "logs", "ec2", "s3")}
    clients = Clients("us-east-1", logs=made["logs"])
    clients._made.update(made)  # the clients a test stubs, in place of the factory's
    stubs = {name: Stubber(c) for name, c in made.items()}
    for stub in stubs.values():
        stub.activate()
    yield clients, stubs
    for stub in stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def subject(document: dict[str, Any], service_entry: dict[str, Any] | None = None) -> Subject:
    return Subject("us-east-1", "c", service_entry or {}, document)


def test_roles_must_exist_and_trust_ecs_tasks_and_a_denied_read_is_a_warning(aws: Any) -> None:
    clients, stubs = aws
    doc = {"executionRoleArn": ROLE, "taskRoleArn": "arn:aws:iam::1:role/app/app-role"}
    role = {"Path": "/", "RoleName": "r", "RoleId": "AROAEXAMPLEID1234567", "Arn": ROLE, "CreateDate": "2026-01-01"}
    stubs["iam"].add_response("get_role", {"Role": {**role, "AssumeRolePolicyDocument": json.dumps(TRUST)}})
    stubs["iam"].add_client_error("get_role", "NoSuchEntity", http_status_code=404)
    execution, task = iam.check(subject(doc), clients)
    assert execution.level == OK and execution.check == "execution role ecsTaskExecutionRole"
    assert task.level == FAILURE and task.check == "task role app-role" and "taskRoleArn" in (task.fix or "")
    assert iam.check(subject(doc), clients) == [execution, task]  # a role is read once per run
    clients.forget()  # the next run reads again
    stubs["iam"].add_client_error("get_role", "AccessDenied", http_status_code=403)
    (denied,) = iam.check(subject({"executionRoleArn": ROLE}), clients)
    assert denied.level == WARNING and "iam:GetRole" in denied.detail


def test_secrets_on_fargate_need_an_execution_role() -> None:
    doc = {"requiresCompatibilities": ["FARGATE"], "containerDefinitions": [{"name": "web", "secrets": [{}]}]}
    (missing,) = iam.check(subject(doc), Clients("us-east-1"))  # no call: there is no role to read
    assert missing.level == FAILURE and "secrets" in missing.detail


def test_each_secret_is_looked_up_by_its_metadata_alone(aws: Any) -> None:
    clients, stubs = aws
    doc = {
        "containerDefinitions": [
            {
                "name": "web",
                "secrets": [
                    {"name": "DB", "valueFrom": f"{SM}:password::"},
                    {"name": "KEY", "valueFrom": "/app/key"},
                    {"name": "GONE", "valueFrom": "/app/gone"},
                    {"name": "BAD", "valueFrom": f"{SM}:password"},
                ],
            }
        ]
    }
    stubs["secretsmanager"].add_response(
        "describe_secret", {"Name": "db", "VersionIdsToStages": {VERSION: ["AWSCURRENT"]}}, {"SecretId": SM}
    )
    stubs["ssm"].add_response(
        "describe_parameters",
        {"Parameters": [{"Name": "/app/key"}]},
        {"ParameterFilters": [{"Key": "Name", "Option": "Equals", "Values": ["/app/key", "/app/gone"]}]},
    )
    found = {f.check: f for f in secrets.check(subject(doc), clients)}
    assert found["secret DB of web"].level == OK and "JSON key password" in found["secret DB of web"].detail
    assert found["secret KEY of web"].level == OK
    assert found["secret GONE of web"].level == FAILURE and "put-parameter" in (found["secret GONE of web"].fix or "")
    assert found["secret BAD of web"].level == FAILURE and "three colons" in (found["secret BAD of web"].fix or "")


def test_a_missing_secret_and_a_missing_version_stage_fail(aws: Any) -> None:
    clients, stubs = aws
    stubs["secretsmanager"].add_client_error("describe_secret", "ResourceNotFoundException", http_status_code=400)
    stubs["secretsmanager"].add_response(
        "describe_secret", {"Name": "db", "VersionIdsToStages": {VERSION: ["AWSCURRENT"]}}
    )
    doc = {
        "containerDefinitions": [
            {"name": "web", "secrets": [{"name": "A", "valueFrom": SM}, {"name": "B", "valueFrom": f"{SM}::OLD:"}]}
        ]
    }
    a, b = secrets.check(subject(doc), clients)
    assert a.level == FAILURE and "ResourceInitializationError" in a.detail
    assert b.level == FAILURE and "stage OLD" in b.detail


def test_an_awslogs_group_must_exist_unless_ecs_creates_it(aws: Any) -> None:
    clients, stubs = aws

    def container(name: str, group: str, create: str | None = None) -> dict[str, Any]:
        options = {"awslogs-group": group, **({"awslogs-create-group": create} if create else {})}
        return {"name": name, "logConfiguration": {"logDriver": "awslogs", "options": options}}

    doc = {"containerDefinitions": [container("web", "/ecs/web"), container("side", "/ecs/x", "true")]}
    stubs["logs"].add_response("describe_log_groups", {"logGroups": [{"logGroupName": "/ecs/web-old"}]})
    web, side = logs.check(subject(doc), clients)
    assert web.level == FAILURE and "create-log-group" in (web.fix or "")
    assert side.level == OK and "created by ECS" in side.detail


def test_a_controller_ecs_ship_cannot_drive_is_refused_by_the_plan_and_express_mode_too() -> None:
    from ecs_ship.errors import InputError
    from ecs_ship.plan import require_ecs_controller

    require_ecs_controller({}, "web", "deploy")
    for service_entry, words in (
        ({"deploymentController": {"type": "CODE_DEPLOY"}}, "CODE_DEPLOY"),
        ({"deploymentController": {"type": "EXTERNAL"}}, "EXTERNAL"),
        ({"resourceManagementType": "ECS"}, "Express Mode"),
    ):
        with pytest.raises(InputError) as caught:
            require_ecs_controller(service_entry, "web", "deploy")
        assert words in str(caught.value) and caught.value.fix
    (line,) = service.controller(subject({}, {"deploymentConfiguration": {"strategy": "CANARY"}}), Clients("x"))
    assert (line.level, line.detail) == (OK, "ECS, strategy CANARY")


def test_a_target_group_must_name_a_container_and_port_of_the_task_with_a_fitting_target_type() -> None:
    tg = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-tg/abc"
    doc = {
        "networkMode": "awsvpc",
        "containerDefinitions": [{"name": "web", "portMappings": [{"containerPort": 8080}]}],
    }
    groups = {tg: {"TargetGroupName": "web-tg", "TargetType": "ip"}}

    def one(lb: dict[str, Any], known: Any = groups) -> Any:
        (found,) = service.target_groups(subject(doc, {"loadBalancers": [lb]}), Clients("us-east-1"), known)
        return found

    assert one({"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}).level == OK
    assert "does not have" in one({"targetGroupArn": tg, "containerName": "api", "containerPort": 8080}).detail
    assert "maps 8080" in one({"targetGroupArn": tg, "containerName": "web", "containerPort": 80}).detail
    instance = {tg: {"TargetGroupName": "web-tg", "TargetType": "instance"}}
    assert "by IP" in one({"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}, instance).detail
    assert "not found" in one({"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}, {}).detail


def test_subnets_and_security_groups_that_are_gone_fail(aws: Any) -> None:
    clients, stubs = aws
    vpc = {"awsvpcConfiguration": {"subnets": ["subnet-1", "subnet-2"], "securityGroups": ["sg-1"]}}
    # One call per set, by filter: EC2 answers with the ids that exist.
    by_id = {"Filters": [{"Name": "subnet-id", "Values": ["subnet-1", "subnet-2"]}]}
    stubs["ec2"].add_response("describe_subnets", {"Subnets": [{"SubnetId": "subnet-1"}]}, by_id)
    by_group = {"Filters": [{"Name": "group-id", "Values": ["sg-1"]}]}
    stubs["ec2"].add_response("describe_security_groups", {"SecurityGroups": [{"GroupId": "sg-1"}]}, by_group)
    subnets, groups = service.network(subject({}, {"networkConfiguration": vpc}), clients)
    assert subnets.level == FAILURE and "subnet-2" in subnets.detail and "subnet-1" not in subnets.detail
    assert groups.level == OK


def test_a_task_definition_of_the_wrong_shape_is_bad_input_naming_the_key_path() -> None:
    """Checked against botocore's model of RegisterTaskDefinition, before anything is built."""
    from ecs_ship.commands.deploy import check_register_input
    from ecs_ship.errors import SpecError

    kw: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
    clients = Clients("us-east-1", boto3.client("ecs", **kw))
    good = {"family": "f", "cpu": "256", "containerDefinitions": [{"name": "web", "image": "x", "essential": True}]}
    check_register_input(clients, good, "ecs-ship.yml")  # no call is made: the model is local
    wrong = {**good, "containerDefinitions": [{"name": "web", "image": "x", "portMappings": {"containerPort": 80}}]}
    with pytest.raises(SpecError) as caught:
        check_register_input(clients, wrong, "ecs-ship.yml")
    assert caught.value.key_path == "task_definition.containerDefinitions[0].portMappings"
    assert "a mapping where the API takes a list" in str(caught.value) and caught.value.exit_code == 2
    with pytest.raises(SpecError) as caught:
        check_register_input(clients, {**good, "cpu": 256, "memroy": "512"}, "ecs-ship.yml")
    assert "did you mean 'memory'" in str(caught.value) and "(and 1 more)" in str(caught.value)
