"""make_plan on realistic read-phase state: which API calls, in which order, and what it refuses. No AWS."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ecs_ship.errors import InputError
from ecs_ship.plan import ApiCall, CurrentState, Plan, TargetGroupInfo, make_plan, require_ecs_controller
from ecs_ship.spec import (
    DeploymentSpec,
    ImageSpec,
    LoadBalancerSpec,
    ServiceSpec,
    TaskDefinitionSource,
    WaitSpec,
    load_spec,
)

REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello"
OLD_DIGEST = "sha256:" + "ab" * 32
NEW_DIGEST = "sha256:" + "cd" * 32
OLD_IMAGE = f"{REPO}@{OLD_DIGEST}"
NEW_IMAGE = f"{REPO}@{NEW_DIGEST}"
TD_ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition/hello:7"
TG_ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/hello-tg/0123456789abcdef"
ALB_ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/hello/fedcba9876543210"
URL = "http://hello-123.eu-west-1.elb.amazonaws.com"


def describe_task_definition() -> dict[str, Any]:
    """describe_task_definition(taskDefinition=..., include=["TAGS"]) as boto3 returns it."""
    return {
        "taskDefinition": {
            "taskDefinitionArn": TD_ARN,
            "containerDefinitions": [
                {
                    "name": "web",
                    "image": OLD_IMAGE,
                    "cpu": 0,
                    "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
                    "essential": True,
                    "environment": [{"name": "PORT", "value": "8080"}],
                    "mountPoints": [],
                    "volumesFrom": [],
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {"awslogs-group": "/ecs/hello", "awslogs-region": "eu-west-1"},
                    },
                },
                {
                    "name": "sidecar",
                    "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.2",
                    "cpu": 0,
                    "portMappings": [],
                    "essential": False,
                    "environment": [],
                    "mountPoints": [],
                    "volumesFrom": [],
                },
            ],
            "family": "hello",
            "executionRoleArn": "arn:aws:iam::123456789012:role/hello-exec",
            "networkMode": "awsvpc",
            "revision": 7,
            "volumes": [],
            "status": "ACTIVE",
            "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"}],
            "placementConstraints": [],
            "compatibilities": ["EC2", "FARGATE"],
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256",
            "memory": "512",
            "registeredAt": "2024-05-01T12:00:00+00:00",
            "registeredBy": "arn:aws:iam::123456789012:role/deployer",
        },
        "tags": [{"key": "team", "value": "web"}],
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }


def service_entry(**overrides: Any) -> dict[str, Any]:
    """describe_services()["services"][0]."""
    entry: dict[str, Any] = {
        "serviceArn": "arn:aws:ecs:eu-west-1:123456789012:service/prod/hello",
        "serviceName": "hello",
        "clusterArn": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
        "status": "ACTIVE",
        "desiredCount": 2,
        "runningCount": 2,
        "launchType": "FARGATE",
        "taskDefinition": TD_ARN,
        "deploymentController": {"type": "ECS"},
        "loadBalancers": [{"targetGroupArn": TG_ARN, "containerName": "web", "containerPort": 8080}],
    }
    entry.update(overrides)
    return entry


def state(*, service: dict[str, Any] | None = None, health_path: str | None = "/healthz", tgs: int = 1) -> CurrentState:
    groups = tuple(TargetGroupInfo(TG_ARN, "hello-tg", health_path, (ALB_ARN,)) for _ in range(tgs))
    return CurrentState(
        service=service if service is not None else service_entry(),
        task_definition=describe_task_definition(),
        target_groups=groups,
        url=URL,
    )


def spec(
    *,
    health_check_path: str | None = "/healthz",
    apply: bool = False,
    source: TaskDefinitionSource | None = None,
    allow_host_volumes: bool = False,
) -> ServiceSpec:
    return ServiceSpec(
        name="hello",
        region="eu-west-1",
        cluster="prod",
        service="hello",
        images=(),
        task_definition=source or TaskDefinitionSource("current"),
        load_balancer=LoadBalancerSpec(health_check_path, apply),
        wait=WaitSpec("serving", 600.0, 5.0),
        on_failure="rollback",
        allow_host_volumes=allow_host_volumes,
        smoke=None,
    )


def ops(plan: Plan) -> list[str]:
    return [f"{c.service}.{c.operation}" for c in plan.calls]


# ---------------------------------------------------------------------------------------------------------------------
# new image vs same image
# ---------------------------------------------------------------------------------------------------------------------


def test_new_image_registers_then_updates_service() -> None:
    plan = make_plan(spec(), state(), {"web": NEW_IMAGE})

    assert plan.register is True
    assert ops(plan) == ["ecs.register_task_definition", "ecs.update_service"]
    register, update = plan.calls
    assert register.params["family"] == "hello"
    assert [c["image"] for c in register.params["containerDefinitions"]] == [
        NEW_IMAGE,
        "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.2",
    ]
    # Read-only describe keys never reach register_task_definition; the tags do.
    for key in ("taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities", "registeredAt"):
        assert key not in register.params
    assert register.params["tags"] == [{"key": "team", "value": "web"}]
    assert dict(update.params) == {
        "cluster": "prod",
        "service": "hello",
        "taskDefinition": "<new revision>",
        "forceNewDeployment": True,
    }
    assert plan.document == dict(register.params)
    assert plan.previous_task_definition_arn == TD_ARN
    assert plan.images == {"web": NEW_IMAGE}
    assert plan.url == URL


def test_new_image_diff_names_old_and_new_image() -> None:
    plan = make_plan(spec(), state(), {"web": NEW_IMAGE})

    removed = [line for line in plan.diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line for line in plan.diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert removed == [f'-      "image": "{OLD_IMAGE}",']
    assert added == [f'+      "image": "{NEW_IMAGE}",']
    assert plan.diff.splitlines()[:2] == ["--- hello:7", "+++ new"]


def test_register_call_params_are_a_copy_of_the_document() -> None:
    plan = make_plan(spec(), state(), {"web": NEW_IMAGE})
    plan.document["containerDefinitions"][0]["image"] = "changed"
    assert plan.calls[0].params["containerDefinitions"][0]["image"] == NEW_IMAGE


def test_same_image_redeploys_current_revision_without_registering() -> None:
    plan = make_plan(spec(), state(), {"web": OLD_IMAGE})

    assert plan.register is False
    assert plan.diff == ""
    assert ops(plan) == ["ecs.update_service"]
    assert dict(plan.calls[0].params) == {
        "cluster": "prod",
        "service": "hello",
        "taskDefinition": TD_ARN,
        "forceNewDeployment": True,
    }


def test_no_images_redeploys_current_revision() -> None:
    plan = make_plan(spec(), state(), {})
    assert plan.register is False
    assert ops(plan) == ["ecs.update_service"]
    assert plan.calls[0].params["taskDefinition"] == TD_ARN


def test_make_plan_does_not_change_the_state() -> None:
    current = state()
    before = copy.deepcopy(dict(current.task_definition))
    make_plan(spec(), current, {"web": NEW_IMAGE})
    assert current.task_definition == before


# ---------------------------------------------------------------------------------------------------------------------
# health check path
# ---------------------------------------------------------------------------------------------------------------------


def test_health_path_mismatch_without_apply_is_an_input_error() -> None:
    with pytest.raises(InputError) as caught:
        make_plan(spec(health_check_path="/ready"), state(health_path="/"), {"web": NEW_IMAGE})

    err = caught.value
    assert err.exit_code == 2
    assert "hello-tg" in err.message
    assert "'/'" in err.message
    assert "'/ready'" in err.message
    assert err.fix is not None
    assert "apply_health_check_path" in err.fix


def test_health_path_mismatch_with_apply_modifies_target_group_first() -> None:
    plan = make_plan(spec(health_check_path="/ready", apply=True), state(health_path="/"), {"web": NEW_IMAGE})

    assert ops(plan) == ["elbv2.modify_target_group", "ecs.register_task_definition", "ecs.update_service"]
    assert dict(plan.calls[0].params) == {"TargetGroupArn": TG_ARN, "HealthCheckPath": "/ready"}
    # A rollback must put the old path back: the old revision was healthy with it, not with the new one.
    assert [dict(c.params) for c in plan.undo] == [{"TargetGroupArn": TG_ARN, "HealthCheckPath": "/"}]


def test_unchanged_health_path_has_nothing_to_undo() -> None:
    plan = make_plan(spec(health_check_path="/healthz", apply=True), state(health_path="/healthz"), {})
    assert plan.undo == ()


def test_code_deploy_and_external_services_are_refused_before_any_write() -> None:
    for controller in ("CODE_DEPLOY", "EXTERNAL"):
        with pytest.raises(InputError) as caught:
            require_ecs_controller(service_entry(deploymentController={"type": controller}), "hello", "roll back")
        assert controller in caught.value.message and caught.value.exit_code == 2
    require_ecs_controller(service_entry(), "hello", "roll back")


def test_health_path_with_apply_and_same_image_still_modifies_then_updates() -> None:
    plan = make_plan(spec(health_check_path="/ready", apply=True), state(health_path=None), {"web": OLD_IMAGE})
    assert ops(plan) == ["elbv2.modify_target_group", "ecs.update_service"]
    assert plan.calls[1].params["taskDefinition"] == TD_ARN


def test_matching_health_path_makes_no_target_group_call() -> None:
    plan = make_plan(spec(health_check_path="/healthz", apply=True), state(health_path="/healthz"), {})
    assert ops(plan) == ["ecs.update_service"]


def test_no_health_path_in_spec_leaves_target_group_alone() -> None:
    plan = make_plan(spec(health_check_path=None), state(health_path="/whatever"), {"web": NEW_IMAGE})
    assert "elbv2.modify_target_group" not in ops(plan)


def test_health_path_without_target_group_is_a_warning() -> None:
    plan = make_plan(spec(health_check_path="/ready"), state(tgs=0), {"web": NEW_IMAGE})
    assert ops(plan) == ["ecs.register_task_definition", "ecs.update_service"]
    assert len(plan.warnings) == 1
    assert "'/ready'" in plan.warnings[0]
    assert "no target group" in plan.warnings[0]


# ---------------------------------------------------------------------------------------------------------------------
# services ecs-ship refuses
# ---------------------------------------------------------------------------------------------------------------------


def test_inactive_service_is_an_input_error() -> None:
    with pytest.raises(InputError) as caught:
        make_plan(spec(), state(service=service_entry(status="INACTIVE")), {"web": NEW_IMAGE})
    assert "INACTIVE" in caught.value.message
    assert "hello" in caught.value.message
    assert "prod" in caught.value.message
    assert caught.value.fix is not None and "create the service" in caught.value.fix


def test_code_deploy_service_is_an_input_error() -> None:
    current = state(service=service_entry(deploymentController={"type": "CODE_DEPLOY"}))
    with pytest.raises(InputError) as caught:
        make_plan(spec(), current, {"web": NEW_IMAGE})
    assert "CODE_DEPLOY" in caught.value.message
    assert caught.value.fix is not None and "CodeDeploy" in caught.value.fix


def test_service_without_deployment_controller_is_treated_as_ecs() -> None:
    entry = service_entry()
    del entry["deploymentController"]
    plan = make_plan(spec(), state(service=entry), {"web": NEW_IMAGE})
    assert ops(plan) == ["ecs.register_task_definition", "ecs.update_service"]


# ---------------------------------------------------------------------------------------------------------------------
# task definition sources
# ---------------------------------------------------------------------------------------------------------------------


def file_document() -> dict[str, Any]:
    return {
        "family": "hello-from-file",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "512",
        "memory": "1024",
        "executionRoleArn": "arn:aws:iam::123456789012:role/hello-exec",
        "containerDefinitions": [
            {
                "name": "web",
                "image": "placeholder",
                "essential": True,
                "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                "environment": [{"name": "FROM_FILE", "value": "yes"}],
            }
        ],
    }


def test_inline_task_definition_replaces_the_current_one() -> None:
    source = TaskDefinitionSource("inline", document=file_document())
    plan = make_plan(spec(source=source), state(), {"web": NEW_IMAGE})

    assert plan.register is True
    register = plan.calls[0]
    assert register.operation == "register_task_definition"
    assert register.params["family"] == "hello-from-file"
    assert register.params["cpu"] == "512"
    assert [c["name"] for c in register.params["containerDefinitions"]] == ["web"]
    assert register.params["containerDefinitions"][0]["image"] == NEW_IMAGE
    assert register.params["containerDefinitions"][0]["environment"] == [{"name": "FROM_FILE", "value": "yes"}]
    assert "tags" not in register.params
    assert register.why == "new revision of hello-from-file"
    # The source belongs to the spec: planning must not write the image into it.
    assert source.document is not None
    assert source.document["containerDefinitions"][0]["image"] == "placeholder"


def test_file_task_definition_loaded_by_load_spec_is_used(tmp_path: Path) -> None:
    describe = {"taskDefinition": {**file_document(), "revision": 3, "status": "ACTIVE"}, "tags": []}
    (tmp_path / "taskdef.json").write_text(json.dumps(describe), encoding="utf-8")
    (tmp_path / "ecs-ship.yml").write_text(
        "version: 1\n"
        "cluster: prod\n"
        "service: hello\n"
        "task_definition: taskdef.json\n"
        "load_balancer:\n"
        "  health_check_path: /healthz\n",
        encoding="utf-8",
    )
    svc = load_spec(tmp_path / "ecs-ship.yml", environ={}).services[0]
    assert svc.task_definition.kind == "file"

    plan = make_plan(svc, state(), {"web": NEW_IMAGE})

    assert ops(plan) == ["ecs.register_task_definition", "ecs.update_service"]
    assert plan.document["family"] == "hello-from-file"
    assert "revision" not in plan.document
    assert plan.document["containerDefinitions"][0]["image"] == NEW_IMAGE
    assert '-  "family": "hello",' in plan.diff.splitlines()
    assert '+  "family": "hello-from-file",' in plan.diff.splitlines()


def test_file_task_definition_equal_to_current_is_not_registered() -> None:
    # The same definition as running, given as a file: nothing to register.
    source = TaskDefinitionSource("file", path=Path("/x/td.json"), document=describe_task_definition())
    plan = make_plan(spec(source=source), state(), {"web": OLD_IMAGE})
    assert plan.register is False
    assert ops(plan) == ["ecs.update_service"]


def test_unknown_container_is_an_input_error() -> None:
    with pytest.raises(InputError) as caught:
        make_plan(spec(), state(), {"api": NEW_IMAGE})
    assert "'api'" in caught.value.message
    assert "'web'" in caught.value.message
    assert "'sidecar'" in caught.value.message


# ---------------------------------------------------------------------------------------------------------------------
# host volumes
# ---------------------------------------------------------------------------------------------------------------------


def ec2_document_with_host_volume() -> dict[str, Any]:
    doc = file_document()
    doc["family"] = "hello-ec2"
    doc["requiresCompatibilities"] = ["EC2"]
    doc["networkMode"] = "bridge"
    doc["volumes"] = [{"name": "code", "host": {"sourcePath": "/srv/hello"}}]
    doc["containerDefinitions"][0]["mountPoints"] = [{"sourceVolume": "code", "containerPath": "/app"}]
    return doc


def test_host_bind_mount_is_refused_by_default() -> None:
    source = TaskDefinitionSource("inline", document=ec2_document_with_host_volume())
    with pytest.raises(InputError) as caught:
        make_plan(spec(source=source), state(), {"web": NEW_IMAGE})
    assert "'code'" in caught.value.message
    assert "host.sourcePath" in caught.value.message
    assert caught.value.fix is not None and "allow_host_volumes: true" in caught.value.fix


def test_host_bind_mount_is_allowed_with_allow_host_volumes() -> None:
    source = TaskDefinitionSource("inline", document=ec2_document_with_host_volume())
    plan = make_plan(spec(source=source, allow_host_volumes=True), state(), {"web": NEW_IMAGE})
    assert plan.register is True
    assert plan.document["volumes"] == [{"name": "code", "host": {"sourcePath": "/srv/hello"}}]


# ---------------------------------------------------------------------------------------------------------------------
# the printed plan
# ---------------------------------------------------------------------------------------------------------------------


def test_lines_list_every_call_without_dumping_container_definitions() -> None:
    plan = make_plan(spec(health_check_path="/ready", apply=True), state(health_path="/"), {"web": NEW_IMAGE})
    lines = plan.lines()

    assert lines[0] == "service hello in cluster prod"
    assert "  running revision: hello:7" in lines
    assert f"  image for web: {NEW_IMAGE}" in lines
    assert "  API calls:" in lines
    calls_at = lines.index("  API calls:")
    assert lines[calls_at + 1 : calls_at + 4] == [f"    {i}. {c.summary()}" for i, c in enumerate(plan.calls, 1)]
    assert lines[-1] == f"  service URL: {URL}"

    register_line = lines[calls_at + 2]
    assert register_line.startswith("    2. ecs.register_task_definition(family='hello', ")
    assert "containerDefinitions='<2 containers>'" in register_line
    assert register_line.endswith("  # new revision of hello")
    # No line shows a whole container definition.
    assert not any("logConfiguration" in line and "portMappings" in line for line in lines)
    assert not any("'essential': True" in line for line in lines)

    assert lines[calls_at + 1] == (
        f"    1. elbv2.modify_target_group(TargetGroupArn={TG_ARN!r}, HealthCheckPath='/ready')"
        "  # health check path '/' -> '/ready'"
    )
    assert lines[calls_at + 3] == (
        "    3. ecs.update_service(cluster='prod', service='hello', taskDefinition='<new revision>', "
        "forceNewDeployment=True)  # start a new deployment"
    )


def test_lines_show_the_diff_only_when_registering() -> None:
    changed = make_plan(spec(), state(), {"web": NEW_IMAGE}).lines()
    assert "  task definition changes:" in changed
    assert f'    -      "image": "{OLD_IMAGE}",' in changed
    assert f'    +      "image": "{NEW_IMAGE}",' in changed

    same = make_plan(spec(), state(), {"web": OLD_IMAGE}).lines()
    assert "  task definition changes:" not in same
    assert "  task definition unchanged: the running revision is redeployed" in same
    assert not any(OLD_IMAGE in line and line.lstrip().startswith("-") for line in same)


def test_lines_include_warnings_for_mutable_sidecar_images() -> None:
    current = state()
    td = copy.deepcopy(dict(current.task_definition))
    td["taskDefinition"]["containerDefinitions"][1]["image"] = "amazon/aws-for-fluent-bit:latest"
    plan = make_plan(spec(), replace(current, task_definition=td), {"web": NEW_IMAGE})
    assert len(plan.warnings) == 1
    assert "'sidecar'" in plan.warnings[0]
    assert f"  warning: {plan.warnings[0]}" in plan.lines()


def test_summary_without_container_definitions_shows_params_as_given() -> None:
    call = ApiCall("ecs", "update_service", {"cluster": "c", "forceNewDeployment": True}, "why")
    assert call.summary() == "ecs.update_service(cluster='c', forceNewDeployment=True)  # why"


def test_plan_output_never_prints_environment_values() -> None:
    current = state()
    td = copy.deepcopy(dict(current.task_definition))
    td["taskDefinition"]["containerDefinitions"][0]["environment"] = [
        {"name": "DATABASE_URL", "value": "postgres://app:hunter2@db/app"}
    ]
    td["taskDefinition"]["volumes"] = [
        {"name": "share", "dockerVolumeConfiguration": {"driver": "local", "driverOpts": {"o": "password=Pa55"}}}
    ]
    source = copy.deepcopy(td["taskDefinition"])
    source["containerDefinitions"][0]["environment"][0]["value"] = "postgres://app:rotated@db/app"
    s = spec(source=TaskDefinitionSource(kind="file", path=Path("td.json"), document=source))
    plan = make_plan(s, replace(current, task_definition=td), {"web": NEW_IMAGE})
    text = "\n".join(plan.lines())
    assert "hunter2" not in text and "rotated" not in text and "Pa55" not in text
    assert "    ~ environment DATABASE_URL in container web (value changed)" in plan.lines()
    # The API call about to be made still carries the real values; only what is printed hides them.
    register = next(c for c in plan.calls if c.operation == "register_task_definition")
    assert register.params["containerDefinitions"][0]["environment"][0]["value"] == "postgres://app:rotated@db/app"
    assert (
        "volumes=[{'name': 'share', 'dockerVolumeConfiguration': {'driver': 'local', 'driverOpts': {'o': '***'}}}]"
        in (register.summary())
    )


# ---------------------------------------------------------------------------------------------------------------------
# the image's platform against the task definition's runtimePlatform
# ---------------------------------------------------------------------------------------------------------------------
def platform_plan(platform: tuple[str, ...], runtime: dict[str, str] | None, **service: Any) -> Plan:
    image = ImageSpec("web", REPO, Path("/app"), Path("/app/Dockerfile"), platform, {}, None, "{git_sha}")
    td = copy.deepcopy(describe_task_definition())
    if runtime is not None:
        td["taskDefinition"]["runtimePlatform"] = runtime
    current = replace(state(service=service_entry(**service)), task_definition=td)
    return make_plan(replace(spec(), images=(image,)), current, {"web": NEW_IMAGE})


@pytest.mark.parametrize(
    ("platform", "runtime", "service"),
    [
        (("linux/amd64",), None, {}),  # Fargate's default is X86_64
        (("linux/arm64",), {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}, {}),
        (("linux/amd64", "linux/arm64/v8"), {"cpuArchitecture": "ARM64"}, {}),
        (("linux/arm64",), None, {"launchType": "EC2"}),  # the instance decides
        (("linux/arm64",), None, {"launchType": None, "capacityProviderStrategy": [{"capacityProvider": "arm-asg"}]}),
    ],
)
def test_an_image_built_for_the_tasks_platform_plans(
    platform: tuple[str, ...], runtime: dict[str, str] | None, service: dict[str, Any]
) -> None:
    assert platform_plan(platform, runtime, **service).register


def test_an_amd64_image_for_arm64_tasks_is_refused_with_both_named() -> None:
    with pytest.raises(InputError) as caught:
        platform_plan(("linux/amd64",), {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"})
    assert caught.value.message == (
        "failed to plan a deployment of service hello: the image of container web is built for linux/amd64, but the "
        "task definition's runtimePlatform is ARM64/LINUX; its tasks would fail to start with 'exec format error'"
    )
    assert caught.value.fix == (
        "build for linux/arm64 (images[0].platform; a list builds one image for several platforms), or set "
        "runtimePlatform.cpuArchitecture to X86_64 in the task definition"
    )


@pytest.mark.parametrize(
    "service", [{}, {"launchType": None, "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT"}]}]
)
def test_an_arm64_image_on_fargate_without_runtime_platform_is_refused(service: dict[str, Any]) -> None:
    with pytest.raises(InputError) as caught:
        platform_plan(("linux/arm64",), None, **service)
    assert "runtimePlatform is X86_64 (Fargate's default" in caught.value.message
    assert caught.value.fix is not None and caught.value.fix.startswith("build for linux/amd64 ")


def test_a_linux_image_for_windows_tasks_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        platform_plan(
            ("linux/amd64",), {"cpuArchitecture": "X86_64", "operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}
        )
    assert caught.value.fix is not None and caught.value.fix.startswith("build for windows/amd64 ")
    assert caught.value.fix.endswith("change the task definition's runtimePlatform to match the image")


SPOT_MIX = [{"capacityProvider": "FARGATE", "base": 1, "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 3}]


@pytest.mark.parametrize("strategy", [SPOT_MIX, [{"capacityProvider": "FARGATE_SPOT"}]])
def test_arm64_tasks_on_fargate_spot_are_refused(strategy: list[dict[str, Any]]) -> None:
    with pytest.raises(InputError) as caught:
        platform_plan(
            ("linux/arm64",), {"cpuArchitecture": "ARM64"}, launchType=None, capacityProviderStrategy=strategy
        )
    assert "places tasks on FARGATE_SPOT, which runs only X86_64 tasks" in caught.value.message
    assert caught.value.fix is not None and "weight 0 and no base" in caught.value.fix


def test_arm64_tasks_with_fargate_spot_at_weight_0_plan() -> None:
    strategy = [{"capacityProvider": "FARGATE", "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 0}]
    plan = platform_plan(
        ("linux/arm64",), {"cpuArchitecture": "ARM64"}, launchType=None, capacityProviderStrategy=strategy
    )
    assert plan.register


# ---------------------------------------------------------------------------------------------------------------------
# the deployment strategy
# ---------------------------------------------------------------------------------------------------------------------
def test_the_specs_deployment_goes_into_update_service_and_the_plan_prints_its_steps() -> None:
    paired = {
        "targetGroupArn": TG_ARN,
        "containerName": "web",
        "containerPort": 8080,
        "advancedConfiguration": {"alternateTargetGroupArn": "tg/green", "productionListenerRule": "rule/prod"},
    }
    entry = service_entry(loadBalancers=[paired], deploymentConfiguration={"maximumPercent": 200})
    wanted = replace(spec(), deployment=DeploymentSpec(strategy="CANARY", canary_percent=20, bake_time=1))
    p = make_plan(wanted, state(service=entry), {})
    (update,) = [c for c in p.calls if c.operation == "update_service"]
    assert update.params["deploymentConfiguration"] == {
        "maximumPercent": 200,
        "strategy": "CANARY",
        "bakeTimeInMinutes": 1,
        "canaryConfiguration": {"canaryPercent": 20},
    }
    assert "  deployment: production traffic: 20% at +0 min, 100% at +10 min; the old revision is kept 1 min more, " \
        "then stopped" in p.lines()  # fmt: skip
    # Without a `deployment:` the service's own configuration is printed and left alone.
    same = make_plan(spec(), state(service=entry), {})
    assert "deploymentConfiguration" not in same.calls[-1].params
    assert any(line.startswith("  deployment: ROLLING") for line in same.lines())


def test_calls_made_once_the_revision_serves_are_listed_after_the_deploy_calls() -> None:
    plan = make_plan(spec(), state(), {"web": NEW_IMAGE})
    later = ApiCall("ecs", "deregister_task_definition", {"taskDefinition": "hello:3"}, "older than the newest 2")
    lines = replace(plan, after=(later,)).lines()
    at = lines.index("  once the new revision serves:")
    assert lines[at - 1].startswith("    2. ecs.update_service(")
    assert lines[at + 1] == "    3. ecs.deregister_task_definition(taskDefinition='hello:3')  # older than the newest 2"
    assert "  once the new revision serves:" not in plan.lines()
