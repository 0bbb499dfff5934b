from __future__ import annotations

import copy
import datetime
import json
from typing import Any

import pytest

from ecs_ship import taskdef
from ecs_ship.errors import InputError

DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32


def describe_output() -> dict[str, Any]:
    """describe_task_definition(..., include=["TAGS"]) as boto3 returns it."""
    return {
        "taskDefinition": {
            "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/hello:7",
            "containerDefinitions": [
                {
                    "name": "web",
                    "image": f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@{DIGEST}",
                    "cpu": 0,
                    "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
                    "essential": True,
                    "environment": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
                    "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/tmp/scratch", "readOnly": False}],
                    "volumesFrom": [],
                    "secrets": [
                        {
                            "name": "DATABASE_URL",
                            "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hello/db-AbCdEf",
                        }
                    ],
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": "/ecs/hello",
                            "awslogs-region": "eu-west-1",
                            "awslogs-stream-prefix": "web",
                        },
                    },
                },
                {
                    "name": "log-router",
                    "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.2",
                    "cpu": 0,
                    "portMappings": [{"containerPort": 2020, "hostPort": 2020, "protocol": "tcp"}],
                    "essential": False,
                    "environment": [],
                    "mountPoints": [],
                    "volumesFrom": [],
                    "secrets": [{"name": "API_KEY", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/key"}],
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {"awslogs-group": "/ecs/hello", "awslogs-region": "eu-west-1"},
                    },
                },
            ],
            "family": "hello",
            "taskRoleArn": "arn:aws:iam::123456789012:role/hello-task",
            "executionRoleArn": "arn:aws:iam::123456789012:role/hello-exec",
            "networkMode": "awsvpc",
            "revision": 7,
            "volumes": [
                {"name": "scratch", "host": {}},
                {
                    "name": "shared",
                    "efsVolumeConfiguration": {"fileSystemId": "fs-0123456789abcdef0", "transitEncryption": "ENABLED"},
                },
            ],
            "status": "ACTIVE",
            "requiresAttributes": [
                {"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"},
                {"name": "ecs.capability.execution-role-awslogs"},
                {"name": "ecs.capability.secrets.asm.environment-variables"},
            ],
            "placementConstraints": [],
            "compatibilities": ["EC2", "FARGATE"],
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256",
            "memory": "512",
            "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
            "registeredAt": datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc),
            "registeredBy": "arn:aws:sts::123456789012:assumed-role/deployer/ci",
        },
        "tags": [{"key": "team", "value": "platform"}, {"key": "service", "value": "hello"}],
        "ResponseMetadata": {"RequestId": "5f0e7a52-0000-4000-8000-000000000000", "HTTPStatusCode": 200},
    }


def register_style() -> dict[str, Any]:
    """The same definition as a hand-written register-task-definition file: no AWS-filled empties."""
    return {
        "family": "hello",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["EC2"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [
            {"name": "web", "image": "hello:1.4.2", "essential": True, "environment": []},
            {"name": "sidecar", "image": "busybox"},
        ],
    }


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# --- normalise ---------------------------------------------------------------------------------------------------


def test_read_only_and_register_keys_match_botocore_model() -> None:
    import botocore.session  # type: ignore[import-untyped]

    model = botocore.session.get_session().get_service_model("ecs")
    output = set(model.shape_for("TaskDefinition").members)
    register = list(model.operation_model("RegisterTaskDefinition").input_shape.members)
    assert set(taskdef.READ_ONLY_KEYS) == output - set(register)
    assert set(taskdef.REGISTER_KEYS) == set(register)


def test_normalise_describe_output_drops_exactly_read_only_keys() -> None:
    raw = describe_output()
    before = copy.deepcopy(raw)
    doc = taskdef.normalise(raw)

    expected = {k: v for k, v in raw["taskDefinition"].items() if k not in taskdef.READ_ONLY_KEYS}
    expected["tags"] = raw["tags"]
    assert as_json(doc) == as_json(expected)
    assert list(doc) == list(expected)  # order kept
    dropped = set(raw["taskDefinition"]) - set(doc)
    assert dropped == {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
    }
    assert raw == before  # input untouched
    doc["containerDefinitions"][0]["environment"].append({"name": "X", "value": "1"})
    assert raw == before  # deep copy


def test_normalise_register_style_is_identity_and_idempotent() -> None:
    raw = register_style()
    doc = taskdef.normalise(raw)
    assert doc == raw
    assert taskdef.normalise(doc) == doc
    described = taskdef.normalise(describe_output())
    assert taskdef.normalise(described) == described


def test_normalise_drops_none_and_empty_tags() -> None:
    raw = describe_output()
    raw["tags"] = []
    raw["taskDefinition"]["pidMode"] = None
    doc = taskdef.normalise(raw)
    assert "tags" not in doc
    assert "pidMode" not in doc


def test_normalise_unknown_key_suggests_closest() -> None:
    raw = register_style()
    raw["containerDefinition"] = raw.pop("containerDefinitions")
    with pytest.raises(InputError) as err:
        taskdef.normalise(raw)
    assert "'containerDefinition'" in err.value.message
    assert err.value.fix is not None
    assert "'containerDefinitions'" in err.value.fix
    assert err.value.exit_code == 2

    raw = register_style()
    raw["ExecutionRoleArn"] = "arn:aws:iam::123456789012:role/x"
    with pytest.raises(InputError) as err:
        taskdef.normalise(raw)
    assert err.value.fix == "did you mean 'executionRoleArn'?"


def test_normalise_unknown_key_without_close_match_lists_valid_keys() -> None:
    raw = register_style()
    raw["zzz"] = 1
    with pytest.raises(InputError) as err:
        taskdef.normalise(raw)
    assert err.value.fix is not None
    assert "family" in err.value.fix
    assert "containerDefinitions" in err.value.fix


def test_normalise_requires_family_and_containers() -> None:
    raw = register_style()
    del raw["family"]
    with pytest.raises(InputError, match="'family'"):
        taskdef.normalise(raw)

    bad: tuple[Any, ...] = (None, [], "web")
    for containers in bad:
        raw = register_style()
        raw["containerDefinitions"] = containers
        with pytest.raises(InputError, match="containerDefinitions"):
            taskdef.normalise(raw)


def test_normalise_requires_container_names() -> None:
    raw = register_style()
    del raw["containerDefinitions"][1]["name"]
    with pytest.raises(InputError, match=r"containerDefinitions\[1\] has no 'name'"):
        taskdef.normalise(raw)

    raw = register_style()
    raw["containerDefinitions"][1]["name"] = "web"
    with pytest.raises(InputError, match=r"containerDefinitions\[1\] repeats the name 'web'"):
        taskdef.normalise(raw)


def test_normalise_rejects_stray_keys_next_to_task_definition() -> None:
    raw = describe_output()
    raw["family"] = "hello"
    with pytest.raises(InputError, match="'family'"):
        taskdef.normalise(raw)


# --- render ------------------------------------------------------------------------------------------------------


def ec2_base() -> dict[str, Any]:
    raw = describe_output()
    raw["taskDefinition"]["requiresCompatibilities"] = ["EC2"]
    return taskdef.normalise(raw)


def test_render_swaps_only_named_image() -> None:
    base = ec2_base()
    before = copy.deepcopy(base)
    new_image = f"127.0.0.1:5000/hello@{OTHER_DIGEST}"
    out = taskdef.render(base, {"web": new_image})

    assert out.document["containerDefinitions"][0]["image"] == new_image
    assert base == before
    expected = copy.deepcopy(base)
    expected["containerDefinitions"][0]["image"] = new_image
    assert as_json(out.document) == as_json(expected)
    assert list(out.document) == list(base)
    assert out.warnings == ()


def test_render_unknown_container_lists_names() -> None:
    with pytest.raises(InputError) as err:
        taskdef.render(ec2_base(), {"api": f"hello@{DIGEST}"})
    assert "'api'" in err.value.message
    assert "'web'" in err.value.message
    assert "'log-router'" in err.value.message
    assert err.value.fix


def with_host_path(base: dict[str, Any]) -> dict[str, Any]:
    base["volumes"].append({"name": "code", "host": {"sourcePath": "/home/ci/app"}})
    return base


def test_render_refuses_host_source_path() -> None:
    with pytest.raises(InputError) as err:
        taskdef.render(with_host_path(ec2_base()), {"web": f"hello@{DIGEST}"})
    message = err.value.message
    assert "'code'" in message
    assert "sourcePath" in message
    assert "must carry its code" in message
    assert "FARGATE" not in message
    assert err.value.fix is not None
    assert "COPY" in err.value.fix
    assert "Dockerfile" in err.value.fix
    assert "allow_host_volumes: true" in err.value.fix


def test_render_allows_host_source_path_with_flag() -> None:
    out = taskdef.render(with_host_path(ec2_base()), {"web": f"hello@{DIGEST}"}, allow_host_volumes=True)
    assert out.document["volumes"][-1] == {"name": "code", "host": {"sourcePath": "/home/ci/app"}}


def test_render_refuses_host_source_path_on_fargate_even_with_flag() -> None:
    base = with_host_path(taskdef.normalise(describe_output()))
    for allowed in (False, True):
        with pytest.raises(InputError) as err:
            taskdef.render(base, {"web": f"hello@{DIGEST}"}, allow_host_volumes=allowed)
        assert "Fargate" in err.value.message
        assert "must carry its code" in err.value.message


def test_render_accepts_efs_and_docker_managed_volumes() -> None:
    base = taskdef.normalise(describe_output())  # FARGATE, EFS + host volume without sourcePath
    base["volumes"].append({"name": "cache"})
    base["volumes"].append({"name": "tmp", "host": {"sourcePath": ""}})
    out = taskdef.render(base, {"web": f"hello@{DIGEST}"})
    assert out.document["volumes"] == base["volumes"]


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "busybox:latest",
        "127.0.0.1:5000/hello",
        "127.0.0.1:5000/hello:latest",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app",
    ],
)
def test_render_warns_on_mutable_image(image: str) -> None:
    base = ec2_base()
    base["containerDefinitions"][1]["image"] = image
    out = taskdef.render(base, {"web": f"hello@{DIGEST}"})
    assert out.warnings == (
        f"container 'log-router' uses mutable image {image!r}; pin a tag or digest so a redeploy runs what you tested",
    )


@pytest.mark.parametrize(
    "image",
    [
        "busybox:1.36",
        "127.0.0.1:5000/hello:1.4.2",
        f"127.0.0.1:5000/hello@{DIGEST}",
        f"busybox:latest@{DIGEST}",
        f"repo@{DIGEST}",
    ],
)
def test_render_no_warning_for_pinned_image(image: str) -> None:
    base = ec2_base()
    base["containerDefinitions"][1]["image"] = image
    assert taskdef.render(base, {"web": f"hello@{DIGEST}"}).warnings == ()


def test_render_does_not_warn_for_replaced_container() -> None:
    base = ec2_base()
    base["containerDefinitions"][0]["image"] = "hello:latest"
    assert taskdef.render(base, {"web": f"hello@{DIGEST}"}).warnings == ()


def test_render_empty_image_refused() -> None:
    with pytest.raises(InputError, match="'web'"):
        taskdef.render(ec2_base(), {"web": ""})


# --- image_ref ---------------------------------------------------------------------------------------------------


def test_image_ref_joins_repository_and_digest() -> None:
    assert taskdef.image_ref("127.0.0.1:5000/hello", DIGEST) == f"127.0.0.1:5000/hello@{DIGEST}"
    assert taskdef.image_ref("repo", DIGEST) == f"repo@{DIGEST}"


@pytest.mark.parametrize(
    "digest",
    ["", "ab" * 32, "sha256:" + "ab" * 31, "sha256:" + "AB" * 32, "sha512:" + "ab" * 32, "sha256:" + "zz" * 32],
)
def test_image_ref_rejects_bad_digest(digest: str) -> None:
    with pytest.raises(InputError, match="digest"):
        taskdef.image_ref("repo", digest)


@pytest.mark.parametrize("repository", ["repo:1.0", "127.0.0.1:5000/hello:latest", f"repo@{DIGEST}", "", "re po"])
def test_image_ref_rejects_tagged_or_bad_repository(repository: str) -> None:
    with pytest.raises(InputError):
        taskdef.image_ref(repository, DIGEST)


# --- diff / same_definition / container_images --------------------------------------------------------------------


def test_diff_shows_changed_image() -> None:
    old = ec2_base()
    new = taskdef.render(old, {"web": f"127.0.0.1:5000/hello@{OTHER_DIGEST}"}).document
    text = taskdef.diff(old, new)
    lines = text.splitlines()
    assert lines[0] == "--- running"
    assert lines[1] == "+++ new"
    assert f'-      "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@{DIGEST}",' in lines
    assert f'+      "image": "127.0.0.1:5000/hello@{OTHER_DIGEST}",' in lines
    changed = [line for line in lines[2:] if line[:1] in "+-"]
    assert len(changed) == 2


def test_diff_empty_when_equal_and_ignores_order_and_read_only() -> None:
    raw = describe_output()
    doc = taskdef.normalise(raw)
    reordered = dict(reversed(list(doc.items())))
    assert taskdef.diff(raw, reordered) == ""
    assert taskdef.diff(doc, doc) == ""


def test_diff_from_nothing_is_all_additions() -> None:
    new = register_style()
    del new["containerDefinitions"][0]["environment"]  # empty lists are left out of the comparison form
    text = taskdef.diff(None, new, old_label="none", new_label="hello:1")
    lines = text.splitlines()
    assert lines[:2] == ["--- none", "+++ hello:1"]
    body = [line for line in lines[2:] if not line.startswith("@@")]
    assert body
    assert all(line.startswith("+") for line in body)
    assert json.loads("\n".join(line[1:] for line in body)) == new


def test_same_definition_ignores_read_only_keys() -> None:
    raw = describe_output()
    doc = taskdef.normalise(raw)
    assert taskdef.same_definition(raw, doc)

    later = describe_output()
    later["taskDefinition"].update(revision=8, registeredAt=datetime.datetime(2024, 6, 1, tzinfo=datetime.timezone.utc))
    later["taskDefinition"]["taskDefinitionArn"] = later["taskDefinition"]["taskDefinitionArn"][:-1] + "8"
    later["ResponseMetadata"] = {"RequestId": "other"}
    assert taskdef.same_definition(raw, later)

    changed = taskdef.render(doc, {"web": f"hello@{OTHER_DIGEST}"}).document
    assert not taskdef.same_definition(raw, changed)


def test_same_definition_treats_aws_filled_empty_lists_as_absent() -> None:
    written = register_style()
    described = copy.deepcopy(written)
    described["volumes"] = []
    described["placementConstraints"] = []
    described["containerDefinitions"][1].update(environment=[], mountPoints=[], volumesFrom=[], portMappings=[])
    assert taskdef.same_definition(written, {"taskDefinition": described, "tags": []})
    assert taskdef.diff(written, described) == ""

    described["containerDefinitions"][1]["environment"] = [{"name": "A", "value": "1"}]
    assert not taskdef.same_definition(written, described)


def test_container_images() -> None:
    expected = {
        "web": f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@{DIGEST}",
        "log-router": "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.2",
    }
    assert taskdef.container_images(describe_output()) == expected
    assert taskdef.container_images(taskdef.normalise(describe_output())) == expected


# --- values that may be credentials ----------------------------------------------------------------------------------

DB_URL = "postgres://app:hunter2@db.internal:5432/app"


def with_credentials() -> dict[str, Any]:
    doc = register_style()
    web = doc["containerDefinitions"][0]
    web["environment"] = [{"name": "DATABASE_URL", "value": DB_URL}, {"name": "LOG_LEVEL", "value": "info"}]
    web["secrets"] = [{"name": "API_KEY", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/key"}]
    web["repositoryCredentials"] = {"credentialsParameter": "arn:aws:secretsmanager:eu-west-1:1:secret:reg"}
    web["logConfiguration"] = {
        "logDriver": "splunk",
        "options": {"splunk-url": "https://splunk.example.com:8088", "splunk-token": "tok-123456"},
    }
    doc["volumes"] = [
        {
            "name": "share",
            "dockerVolumeConfiguration": {
                "driver": "local",
                "driverOpts": {"type": "cifs", "device": "//fs/share", "o": "username=svc,password=Pa55word"},
            },
        }
    ]
    return doc


def test_diff_names_environment_variables_but_never_prints_values() -> None:
    old = with_credentials()
    new = copy.deepcopy(old)
    web = new["containerDefinitions"][0]
    web["image"] = "hello:1.4.3"
    web["environment"] = [
        {"name": "DATABASE_URL", "value": "postgres://app:n3w-s3cret@db.internal:5432/app"},
        {"name": "FEATURE_TOKEN", "value": "ft-abcdef"},
    ]
    text = taskdef.diff(old, new)
    lines = text.splitlines()
    for value in (DB_URL, "hunter2", "n3w-s3cret", "ft-abcdef", '"info"'):
        assert value not in text
    assert lines[-3:] == [
        "~ environment DATABASE_URL in container web (value changed)",
        "+ environment FEATURE_TOKEN in container web",
        "- environment LOG_LEVEL in container web",
    ]
    # Everything else is shown as before.
    assert '-      "image": "hello:1.4.2",' in lines and '+      "image": "hello:1.4.3",' in lines
    assert '-          "name": "LOG_LEVEL",' in lines and '+          "name": "FEATURE_TOKEN",' in lines


def test_diff_of_an_environment_value_alone_is_not_empty() -> None:
    old = with_credentials()
    new = copy.deepcopy(old)
    new["containerDefinitions"][0]["environment"][0]["value"] = DB_URL.replace("hunter2", "rotated")
    assert not taskdef.same_definition(old, new)
    assert taskdef.diff(old, new) == "~ environment DATABASE_URL in container web (value changed)"


def test_diff_hides_driver_options_that_carry_credentials() -> None:
    old = with_credentials()
    new = copy.deepcopy(old)
    new["containerDefinitions"][0]["logConfiguration"]["options"]["splunk-token"] = "tok-654321"
    new["containerDefinitions"][0]["logConfiguration"]["options"]["splunk-url"] = "https://other.example.com:8088"
    new["volumes"][0]["dockerVolumeConfiguration"]["driverOpts"]["o"] = "username=svc,password=N3wPass"
    text = taskdef.diff(old, new)
    for value in ("tok-123456", "tok-654321", "Pa55word", "N3wPass"):
        assert value not in text
    assert "~ logConfiguration.options splunk-token in container web (value changed)" in text.splitlines()
    assert "~ driverOpts o in volume share (value changed)" in text.splitlines()
    # Options that are not credentials still show their values.
    assert '+          "splunk-url": "https://other.example.com:8088"' in text.splitlines()


def test_diff_from_nothing_lists_every_environment_variable() -> None:
    text = taskdef.diff(None, with_credentials())
    assert DB_URL not in text and "tok-123456" not in text
    assert "+ environment DATABASE_URL in container web" in text.splitlines()
    assert "+ environment LOG_LEVEL in container web" in text.splitlines()


def test_redacted_hides_values_keeps_names_and_leaves_the_original() -> None:
    doc = with_credentials()
    before = copy.deepcopy(doc)
    shown = taskdef.redacted(doc)
    assert doc == before
    web = shown["containerDefinitions"][0]
    assert web["environment"] == [{"name": "DATABASE_URL", "value": "***"}, {"name": "LOG_LEVEL", "value": "***"}]
    assert web["logConfiguration"]["options"] == {
        "splunk-url": "https://splunk.example.com:8088",
        "splunk-token": "***",
    }
    assert shown["volumes"][0]["dockerVolumeConfiguration"]["driverOpts"] == {
        "type": "cifs",
        "device": "//fs/share",
        "o": "***",
    }
    # References to secrets are ARNs, not secrets: they stay, as does everything else.
    assert web["secrets"] == before["containerDefinitions"][0]["secrets"]
    assert web["repositoryCredentials"] == before["containerDefinitions"][0]["repositoryCredentials"]
    assert shown["containerDefinitions"][1] == before["containerDefinitions"][1]
    assert "hunter2" not in json.dumps(shown) and "Pa55word" not in json.dumps(shown)
