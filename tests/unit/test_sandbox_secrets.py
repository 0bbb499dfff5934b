"""The simulator reads a task's secrets as ECS does before its containers start: SSM parameters by name or ARN,
Secrets Manager secrets by ARN with an optional JSON key; what is not there stops the task."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from tests.sandbox.ledger import Ledger
from tests.sandbox.motoworld import ACCOUNT_ID, MotoWorld, SecretUnavailable

REGION = "us-east-1"


@pytest.fixture
def world() -> Iterator[tuple[MotoWorld, str]]:
    with mock_aws():
        kw = {"region_name": REGION, "aws_access_key_id": "k", "aws_secret_access_key": "s"}
        boto3.client("ssm", **kw).put_parameter(Name="/app/key", Value="k3y", Type="SecureString")
        boto3.client("ssm", **kw).put_parameter(Name="plain", Value="v", Type="String")
        arn = boto3.client("secretsmanager", **kw).create_secret(
            Name="db", SecretString=json.dumps({"password": "pw", "user": "u"})
        )["ARN"]
        yield MotoWorld(Ledger()), arn


def test_secrets_resolve_as_ecs_injects_them(world: tuple[MotoWorld, str]) -> None:
    w, arn = world
    assert w.secret_value(REGION, "/app/key") == "k3y"
    assert w.secret_value(REGION, f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:parameter/app/key") == "k3y"
    assert w.secret_value(REGION, f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:parameter/plain") == "v"
    assert json.loads(w.secret_value(REGION, arn)) == {"password": "pw", "user": "u"}
    assert w.secret_value(REGION, f"{arn}:password::") == "pw"


def test_a_secret_that_is_not_there_stops_the_task_with_ecs_words(world: tuple[MotoWorld, str]) -> None:
    w, arn = world
    for value_from, words in (
        ("/app/gone", "invalid ssm parameters: /app/gone"),
        (arn.replace("db", "gone"), "ResourceNotFoundException"),
        (f"{arn}:nokey::", "did not contain json key nokey"),
        (f"{arn}:password", "expected json-key:version-stage:version-id"),
    ):
        with pytest.raises(SecretUnavailable) as caught:
            w.secret_value(REGION, value_from)
        assert words in str(caught.value), (value_from, str(caught.value))


def test_environment_files_are_read_as_a_docker_env_file_and_a_missing_one_stops_the_task(
    world: tuple[MotoWorld, str],
) -> None:
    w, _ = world
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")
    s3.create_bucket(Bucket="cfg")
    body = b'# settings\nMODE=production\n\nQUOTED="kept as is"\nURL=http://x/?a=b\nFROM_HOST\n'
    s3.put_object(Bucket="cfg", Key="app/web.env", Body=body)
    assert w.env_file("arn:aws:s3:::cfg/app/web.env") == {
        "MODE": "production",
        "QUOTED": '"kept as is"',  # no quote handling, as ECS documents
        "URL": "http://x/?a=b",  # split at the first '='
    }
    for arn in ("arn:aws:s3:::cfg/app/gone.env", "arn:aws:s3:::nobucket/web.env"):
        with pytest.raises(SecretUnavailable) as caught:
            w.env_file(arn)
        assert "failed to download env files" in str(caught.value) and "NoSuchKey" in str(caught.value)


def test_ecs_takes_on_a_role_only_when_it_exists_and_trusts_ecs_tasks(world: tuple[MotoWorld, str]) -> None:
    w, _ = world
    iam = boto3.client("iam", region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")

    def role(name: str, service: str | list[str], action: str | list[str] = "sts:AssumeRole") -> str:
        doc = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": action}],
        }
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(doc))["Role"]["Arn"])

    assert w.role_assumable(role("tasks", "ecs-tasks.amazonaws.com"))
    assert w.role_assumable(role("both", ["ec2.amazonaws.com", "ecs-tasks.amazonaws.com"], ["sts:AssumeRole"]))
    assert not w.role_assumable(role("ec2", "ec2.amazonaws.com"))
    assert not w.role_assumable(role("tag-only", "ecs-tasks.amazonaws.com", "sts:TagSession"))
    assert not w.role_assumable(f"arn:aws:iam::{ACCOUNT_ID}:role/never-made")


def test_the_ledger_names_s3_calls_as_iam_does() -> None:
    from tests.sandbox.ledger import is_write
    from tests.sandbox.motoworld import _s3_action

    assert _s3_action("HEAD", "/cfg/app/web.env", {}) == "HeadObject" and not is_write("HeadObject")
    assert _s3_action("GET", "/cfg/app/web.env", {}) == "GetObject"
    assert _s3_action("PUT", "/cfg/web.env", {}) == "PutObject" and is_write("PutObject")
    assert _s3_action("PUT", "/cfg", {}) == "CreateBucket"
    assert _s3_action("GET", "/cfg", {"list-type": ["2"]}) == "ListObjectsV2"
    assert _s3_action("GET", "/", {}) == "ListBuckets"
