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
