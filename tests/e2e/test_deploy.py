"""ecs-ship end to end: the real CLI, real docker builds and pushes to the authenticated registry, moto
server and the ECS/ALB simulator. Each test makes its own service and its own app repository (a git
checkout of examples/hello), and checks what a user sees: exit code, output, and what the ALB serves.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import App, HelloImages
from tests.e2e.conftest import (
    Hammer,
    assert_iam_listed,
    describe,
    ecs_ship,
    register_revision,
    served,
    spec_for,
    targets,
    writes,
)
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.services import free_port


# --------------------------------------------------------------------------------------------
# deploys that work
# --------------------------------------------------------------------------------------------
def test_first_deploy_then_redeploy_of_same_commit(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    repo = f"e2e-{uuid.uuid4().hex[:6]}"
    app.write_spec(spec_for(w, repo=repo, build_args={"VERSION": "v2"}))
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=app.root, capture_output=True, text=True).stdout.strip()

    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    assert served(w) == "hello v2"
    assert f"{repo}:{sha}" in run.text  # tag = the commit
    assert f"naming to {sandbox.registry.address}/{repo}:{sha}" in run.text  # type: ignore[union-attr]  # BuildKit
    assert writes(sandbox, mark) == ["RegisterTaskDefinition", "UpdateService"]
    ecs = sandbox.clients()["ecs"]
    svc = describe(ecs, w)
    assert svc["taskDefinition"].endswith(":2")
    image = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"][
        "containerDefinitions"
    ][0]["image"]
    assert image.startswith(f"{sandbox.registry.address}/{repo}@sha256:")  # type: ignore[union-attr]
    # ECS's record of the digest it resolved for the revision agrees with the one pushed, and the run said so.
    sd = ecs.describe_service_deployments(serviceDeploymentArns=[svc["currentServiceDeployment"]])
    revision = sd["serviceDeployments"][0]["targetServiceRevision"]["arn"]
    resolved = ecs.describe_service_revisions(serviceRevisionArns=[revision])["serviceRevisions"][0]
    assert [i["imageDigest"] for i in resolved["containerImages"]] == [image.split("@", 1)[1]]
    assert "the new tasks run web at the digests pushed" in run.text
    first_deployment = svc["deployments"][0]["id"]

    # Same commit again: nothing to build or push, no new revision, but still a forced deployment.
    mark = sandbox.ledger.mark()
    again = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert again.code == 0, again.text
    assert "already in the registry" in again.text
    assert "building with" not in again.text
    assert writes(sandbox, mark) == ["UpdateService"]
    svc = describe(ecs, w)
    assert svc["taskDefinition"].endswith(":2")
    assert svc["deployments"][0]["id"] != first_deployment
    assert served(w) == "hello v2"


def test_new_version_switches_with_no_failed_request(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    app.write_spec(
        spec_for(
            w,
            build_args={"VERSION": "v7"},
            extra="smoke:\n  path: /\n  contains: hello v7\n",
        )
    )
    hammer = Hammer(w.url + "/")
    hammer.start()
    try:
        run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    finally:
        hammer.stop()
    assert run.code == 0, run.text
    assert "smoke check: GET" in run.text
    assert hammer.failures == []
    assert "hello v1" in hammer.bodies and hammer.bodies[-1] == "hello v7"
    assert "serving:" in run.text and w.url in run.text


def test_load_balancer_url_is_the_url_the_plan_names_the_smoke_check_requests_and_the_run_reports(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    """`load_balancer.url` overrides the URL found from the listeners: a wrong one fails the smoke check (and the
    deploy rolls back), the right one passes; the DNS name found from the listener is never used instead."""
    w = make_world()
    app = make_app()
    wrong, right = f"http://localhost:{free_port()}", f"http://localhost:{w.listener_port}"
    smoke = "smoke:\n  path: /\n  contains: hello v2\n"
    for url, code in ((wrong, 1), (right, 0)):
        doc = yaml.safe_load(spec_for(w, build_args={"VERSION": "v2"}, extra=smoke))
        doc["load_balancer"]["url"] = url
        app.write_spec(yaml.safe_dump(doc, sort_keys=False))
        plan = ecs_ship(sandbox, "plan", "--spec", str(app.spec))
        assert f"  service URL: {url}" in plan.out, plan.out
        run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
        assert run.code == code, run.text
        assert w.dns_name not in run.out, run.out
        if code:
            assert f"smoke check: GET {url}/ failed" in run.text and "rolled back" in run.text, run.text
            assert served(w) == "hello v1"
        else:
            assert f"smoke check: GET {url}/ -> 200" in run.out and f"serving at {url}" in run.out, run.out
            assert served(w) == "hello v2"


def test_dry_run_and_plan_make_no_write(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w))
    mark = sandbox.ledger.mark()
    for args in (("deploy", "--dry-run"), ("plan",), ("render",), ("status",), ("validate",)):
        run = ecs_ship(sandbox, *args, "--spec", str(app.spec))
        assert run.code == 0, (args, run.text)
    assert writes(sandbox, mark) == []
    assert sandbox.ledger.count_by_action(mark)["DescribeServices"] >= 3
    plan = ecs_ship(sandbox, "plan", "--spec", str(app.spec))
    assert "ecs.register_task_definition(" in plan.out and "ecs.update_service(" in plan.out
    assert "forceNewDeployment=True" in plan.out
    assert "(to be built)" in plan.out
    assert served(w) == "hello v1"


# --------------------------------------------------------------------------------------------
# deploys that fail
# --------------------------------------------------------------------------------------------
def test_broken_health_is_diagnosed_and_rolled_back(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v3", "HEALTH": "500"}))
    ecs = sandbox.clients()["ecs"]
    before = describe(ecs, w)["taskDefinition"]
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 1, run.text
    assert "Target.ResponseCodeMismatch" in run.text
    assert "Health checks failed with these codes: [500]" in run.text
    assert "rolled back" in run.text
    svc = describe(ecs, w)
    assert svc["taskDefinition"] == before
    assert len(svc["deployments"]) == 1
    assert served(w) == "hello v1"


def test_rollback_returns_to_the_last_completed_revision_not_an_untried_one(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App], hello: HelloImages
) -> None:
    # Someone else's rollout of a broken revision is stuck in progress (no circuit breaker): the service's
    # current task definition never served. A failed deploy over it must return to the one that did.
    w = make_world()
    ecs = sandbox.clients()["ecs"]
    untried = register_revision(ecs, w, hello.get("v2", health="500"))
    ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=untried, forceNewDeployment=True)
    svc = describe(ecs, w)
    assert svc["taskDefinition"] == untried
    assert [d["rolloutState"] for d in svc["deployments"]] == ["IN_PROGRESS", "COMPLETED"]

    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v3", "HEALTH": "500"}))
    plan = ecs_ship(sandbox, "plan", "--spec", str(app.spec))
    assert f"rollback target: {w.task_definition_arn.rsplit('/', 1)[-1]}" in plan.out, plan.text
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 1, run.text
    assert f"rolled back: {w.task_definition_arn.rsplit('/', 1)[-1]} is serving again" in run.text
    assert describe(ecs, w)["taskDefinition"] == w.task_definition_arn
    assert served(w) == "hello v1"


def test_crash_at_start_shows_exit_code_and_log_line(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v4", "CRASH": "1"}))
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), "--no-rollback")
    assert run.code == 1, run.text
    assert "Essential container in task exited" in run.text
    assert "exit code 3" in run.text
    assert "fatal: hello v4 refusing to start" in run.text  # from CloudWatch Logs
    assert "rolled back" not in run.text
    assert served(w) == "hello v1"  # the old task still serves: ECS never stopped it


def test_timeout_fails_without_waiting_forever(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    # Within the grace period neither ECS nor ecs-ship may judge the slow starter: only the timeout can end it.
    w = make_world(grace_period=120)
    app = make_app()
    app.write_spec(spec_for(w, build_args={"START_DELAY": "60"}))
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), "--timeout", "6", "--no-rollback")
    assert run.code == 1, run.text
    assert "timed out after 6s" in run.text


def test_bad_input_exits_2_and_writes_nothing(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    mark = sandbox.ledger.mark()
    app.write_spec(spec_for(w, repo="x").replace("wait:", "waitt:"))
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 2 and "waitt" in run.err and "did you mean 'wait'" in run.err, run.text

    app.write_spec(spec_for(w, repo="x").replace(w.service, "no-such-service"))
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 2 and "no-such-service" in run.err, run.text

    app.write_spec(spec_for(w, repo="x").replace("/health", "/healthz"))
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 2 and "/healthz" in run.err and "apply_health_check_path" in run.err, run.text

    app.write_spec(spec_for(w))
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), "--image-tag", "does-not-exist")
    assert run.code == 2 and "does-not-exist" in run.err, run.text

    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), env={"ECS_SHIP_REGISTRY_PASSWORD": "wrong"})
    assert run.code == 2 and "wrong" not in run.text, run.text
    assert writes(sandbox, mark) == []
    assert served(w) == "hello v1"


# --------------------------------------------------------------------------------------------
# shapes of tasks and specs
# --------------------------------------------------------------------------------------------
def test_task_definition_file_from_describe_output(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    ecs = sandbox.clients()["ecs"]
    described = ecs.describe_task_definition(taskDefinition=w.task_definition_arn, include=["TAGS"])
    described.pop("ResponseMetadata")
    doc = json.loads(json.dumps(described, default=str))
    doc["taskDefinition"]["containerDefinitions"][0]["environment"] = [{"name": "GREETING", "value": "hi"}]
    (app.root / "taskdef.json").write_text(json.dumps(doc, indent=2))
    app.write_spec(spec_for(w, build_args={"VERSION": "v5"}, extra="task_definition: taskdef.json\n"))
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    td = ecs.describe_task_definition(taskDefinition=describe(ecs, w)["taskDefinition"])["taskDefinition"]
    assert td["containerDefinitions"][0]["environment"] == [{"name": "GREETING", "value": "hi"}]
    assert served(w) == "hello v5"


def test_two_container_task(sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]) -> None:
    w = make_world()
    app = make_app()
    ecs = sandbox.clients()["ecs"]
    base = ecs.describe_task_definition(taskDefinition=w.task_definition_arn)["taskDefinition"]
    web = base["containerDefinitions"][0]
    sidecar = {**web, "name": "sidecar", "essential": False, "environment": [{"name": "VERSION", "value": "sidecar"}]}
    doc: dict[str, Any] = {
        k: base[k] for k in ("family", "networkMode", "requiresCompatibilities", "cpu", "memory", "executionRoleArn")
    }
    doc["containerDefinitions"] = [web, sidecar]
    (app.root / "taskdef.json").write_text(json.dumps(doc, indent=2))
    app.write_spec(spec_for(w, build_args={"VERSION": "v6"}, extra="task_definition: taskdef.json\n"))
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    svc = describe(ecs, w)
    tasks = ecs.describe_tasks(
        cluster=w.cluster, tasks=ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"]
    )["tasks"]
    assert {c["name"] for c in tasks[0]["containers"]} == {"web", "sidecar"}
    assert all(c["lastStatus"] == "RUNNING" for c in tasks[0]["containers"])
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    images = {c["name"]: c["image"] for c in td["containerDefinitions"]}
    assert images["sidecar"] == web["image"] and images["web"] != web["image"]  # only the built one changed
    assert served(w) == "hello v6"


def test_two_services_in_one_spec_deploy_in_parallel(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    a, b = make_world(), make_world()
    app = make_app()
    repo = f"e2e-{uuid.uuid4().hex[:6]}"
    app.write_spec(f"""\
        version: 1
        region: {a.region}
        images:
          - container: web
            repository: ${{REGISTRY}}/{repo}
            build_args: {{VERSION: v8}}
        load_balancer: {{health_check_path: /health}}
        wait: {{until: stable, timeout: 90, poll_interval: 0.5}}
        services:
          - {{name: first, cluster: {a.cluster}, service: {a.service}}}
          - {{name: second, cluster: {b.cluster}, service: {b.service}}}
        """)
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    assert "[first]" in run.out and "[second]" in run.out
    assert served(a) == "hello v8" and served(b) == "hello v8"
    elbv2 = sandbox.clients()["elbv2"]
    assert "healthy" in [s for s, _, _ in targets(elbv2, a).values()]


# --------------------------------------------------------------------------------------------
# redeploys, rollbacks, interrupts, outputs
# --------------------------------------------------------------------------------------------
def test_image_tag_redeploy_and_rollback_command(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    repo = f"e2e-{uuid.uuid4().hex[:6]}"
    app.write_spec(spec_for(w, repo=repo, build_args={"VERSION": "v2"}))
    sha_v2 = subprocess.run(["git", "rev-parse", "HEAD"], cwd=app.root, capture_output=True, text=True).stdout.strip()
    assert ecs_ship(sandbox, "deploy", "--spec", str(app.spec)).code == 0
    app.write_spec(spec_for(w, repo=repo, build_args={"VERSION": "v3"}))
    assert ecs_ship(sandbox, "deploy", "--spec", str(app.spec)).code == 0
    assert served(w) == "hello v3"

    # workflow_dispatch redeploy of an earlier build: no build, the tag's digest is deployed.
    mark = sandbox.ledger.mark()
    # No Docker engine is needed for it (credentials come from the environment or config.json).
    run = ecs_ship(
        sandbox, "deploy", "--spec", str(app.spec), "--image-tag", sha_v2, env={"DOCKER_HOST": "unix:///nonexistent"}
    )
    assert run.code == 0, run.text
    assert "building with" not in run.text and "already in the registry" in run.text
    assert writes(sandbox, mark) == ["RegisterTaskDefinition", "UpdateService"]
    assert served(w) == "hello v2"
    ecs = sandbox.clients()["ecs"]
    assert describe(ecs, w)["taskDefinition"].endswith(":4")

    # On demand: back one revision (v3), then to an explicit one (the very first, v1).
    run = ecs_ship(sandbox, "rollback", "--spec", str(app.spec))
    assert run.code == 0, run.text
    assert describe(ecs, w)["taskDefinition"].endswith(":3") and served(w) == "hello v3"
    run = ecs_ship(sandbox, "rollback", "--spec", str(app.spec), "--to-revision", "1")
    assert run.code == 0, run.text
    assert describe(ecs, w)["taskDefinition"].endswith(":1") and served(w) == "hello v1"
    listed = ecs.list_task_definitions(familyPrefix=w.family)["taskDefinitionArns"]
    assert len(listed) == 4  # nothing was deregistered


def test_github_actions_outputs_and_summary(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App], tmp_path: Path
) -> None:
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v9"}))
    outputs, summary = tmp_path / "out", tmp_path / "summary.md"
    assert sandbox.registry is not None
    run = ecs_ship(
        sandbox,
        "deploy",
        "--spec",
        str(app.spec),
        "--json",
        str(tmp_path / "reports" / "deploy.json"),
        env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert run.code == 0, run.text
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)
    assert values["image"].startswith(f"{sandbox.registry.address}/") and "@sha256:" in values["image"]
    assert values["image-digest"].startswith("sha256:")
    assert values["task-definition-arn"].endswith(":2") and values["previous-task-definition-arn"].endswith(":1")
    assert values["deployment-id"].startswith("ecs-svc/")
    assert values["service-url"] == w.url
    assert f"::add-mask::{sandbox.registry.password}" in run.out
    assert sandbox.registry.password not in run.out.replace(f"::add-mask::{sandbox.registry.password}", "")
    assert "::group::image" in run.out
    text = summary.read_text()
    assert "deployed" in text and "`" + values["image"] + "`" in text
    # --json FILE: the same run for a team to track, with where its time went.
    doc = json.loads((tmp_path / "reports" / "deploy.json").read_text())["services"][w.service]
    assert doc["outcome"] == "deployed" and doc["serving-task-definition-arn"] == values["task-definition-arn"]
    assert doc["image"] == values["image"] and doc["deployment-id"] == values["deployment-id"]
    assert 0 < doc["milestones"]["serving"] <= doc["milestones"]["stable"], doc
    assert {"preparation", "build and push", "register and update", "healthy"} <= set(doc["phases"]), doc
    assert all(v >= 0 for v in doc["phases"].values()), doc


def test_run_local_command_reports_the_container_exit_code_as_a_failure(
    sandbox: Sandbox, make_app: Callable[[], App]
) -> None:
    # No AWS at all: an inline task definition, and the service names are never looked up.
    app = make_app()
    text = spec_for(
        World("us-east-1", "no-cluster", "no-service", "", "", "", "", "", 0, "", "", [], ""),
        build_args={"CRASH": "1", "VERSION": "v13"},
        extra="""\
        task_definition:
          family: hello-local
          networkMode: awsvpc
          containerDefinitions:
            - {name: web, image: placeholder, essential: true, portMappings: [{containerPort: 8080}]}
        """,
    )
    app.write_spec(text)
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "run-local", "--spec", str(app.spec), "--port", str(free_port()), cwd=app.root, timeout=120)
    assert run.code == 1, run.text
    assert "exit code 3" in run.text and "fatal: hello v13 refusing to start" in run.text
    assert sandbox.ledger.calls_since(mark) == []


# --------------------------------------------------------------------------------------------
# faults
# --------------------------------------------------------------------------------------------
def test_registry_down_fails_cleanly_before_any_aws_write(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    from tests.sandbox.services import pause_registry, resume_registry

    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v14"}))
    assert sandbox.registry is not None
    mark = sandbox.ledger.mark()
    pause_registry(sandbox.registry)
    try:
        run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    finally:
        resume_registry(sandbox.registry)
    assert run.code == 1, run.text
    assert f"failed to reach registry {sandbox.registry.address}" in run.err
    assert "check that the registry is up" in run.err
    assert writes(sandbox, mark) == []
    assert served(w) == "hello v1"
    # Once the registry is back, the same command goes through.
    again = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert again.code == 0, again.text
    assert served(w) == "hello v14"


def test_throttling_is_ridden_out(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v15"}))
    mark = sandbox.ledger.mark()
    for action in ("DescribeServices", "DescribeTargetHealth", "ListTasks", "UpdateService"):
        sandbox.ledger.throttle(action, 2)
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    throttled = {c.action for c in sandbox.ledger.calls_since(mark) if c.throttled}
    assert throttled == {"DescribeServices", "DescribeTargetHealth", "ListTasks", "UpdateService"}
    assert served(w) == "hello v15"


# --------------------------------------------------------------------------------------------
# services without a load balancer, and environment overlays
# --------------------------------------------------------------------------------------------
def test_worker_service_without_load_balancer(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world(attach_load_balancer=False)
    app = make_app()
    doc = yaml.safe_load(spec_for(w, build_args={"VERSION": "v16"}))
    del doc["load_balancer"]
    app.write_spec(yaml.safe_dump(doc))
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0, run.text
    assert "url:" not in run.out  # no load balancer, no URL
    ecs = sandbox.clients()["ecs"]
    svc = describe(ecs, w)
    assert svc["taskDefinition"].endswith(":2") and svc["runningCount"] == 1 and len(svc["deployments"]) == 1

    doc["images"][0]["build_args"] = {"VERSION": "v17", "CRASH": "1"}
    app.write_spec(yaml.safe_dump(doc))
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 1, run.text
    assert "Essential container in task exited" in run.text and "exit code 3" in run.text
    assert describe(ecs, w)["taskDefinition"].endswith(":2")  # rolled back


def test_environment_overlay_picks_the_target(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    prod, staging = make_world(), make_world()
    app = make_app()
    doc = yaml.safe_load(spec_for(prod, build_args={"VERSION": "v18"}))
    doc["images"][0]["tag"] = "{git_short_sha}-{env}"
    doc["environments"] = {"staging": {"cluster": staging.cluster, "service": staging.service}}
    app.write_spec(yaml.safe_dump(doc))
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), "--env", "staging")
    assert run.code == 0, run.text
    assert served(staging) == "hello v18" and served(prod) == "hello v1"
    assert "-staging" in run.text  # the {env} placeholder reached the tag
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), "--env", "stagin")
    assert run.code == 2 and "did you mean 'staging'" in run.err, run.text


def test_several_tasks_all_must_be_healthy(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world(desired_count=3)
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v19"}))
    hammer = Hammer(w.url + "/")
    hammer.start()
    try:
        run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    finally:
        hammer.stop()
    assert run.code == 0, run.text
    elbv2 = sandbox.clients()["elbv2"]
    states = [s for s, _, _ in targets(elbv2, w).values()]
    assert states.count("healthy") == 3
    assert "serving:" in run.text and "stable:" in run.text
    assert hammer.failures == [] and hammer.bodies[-1] == "hello v19"
    assert {served(w) for _ in range(6)} == {"hello v19"}


def test_readme_iam_list_names_every_call_ecs_ship_makes(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    """The IAM section of the README is a promise: every API action a deploy (with pre_deploy and
    keep_revisions), a failed deploy with its rollback, `rollback`, `status` and `prune` make must be listed
    there."""
    w = make_world()
    app = make_app()
    doc = yaml.safe_load(spec_for(w, build_args={"VERSION": "v20"}))
    doc["load_balancer"] = {"health_check_path": "/", "apply_health_check_path": True}
    doc["pre_deploy"] = [{"name": "migrate", "command": ["true"]}]
    doc["keep_revisions"] = 1
    app.write_spec(yaml.safe_dump(doc))
    ecs = sandbox.clients()["ecs"]
    image = ecs.describe_task_definition(taskDefinition=w.task_definition_arn)["taskDefinition"]
    register_revision(ecs, w, image["containerDefinitions"][0]["image"])  # one for keep_revisions to deregister
    mark = sandbox.ledger.mark()
    assert ecs_ship(sandbox, "deploy", "--spec", str(app.spec)).code == 0
    doc["images"][0]["build_args"] = {"VERSION": "v21", "CRASH": "1"}
    app.write_spec(yaml.safe_dump(doc))
    assert ecs_ship(sandbox, "deploy", "--spec", str(app.spec)).code == 1
    assert ecs_ship(sandbox, "rollback", "--spec", str(app.spec)).code == 0
    assert ecs_ship(sandbox, "status", "--spec", str(app.spec)).code == 0
    assert ecs_ship(sandbox, "prune", "--spec", str(app.spec), "--dry-run").code == 0
    actions = assert_iam_listed(sandbox, mark)
    assert {"ModifyTargetGroup", "GetLogEvents", "ListTaskDefinitions", "UpdateService", "RunTask"} <= actions
    assert {"DeregisterTaskDefinition", "ListClusters", "ListServices", "ListServiceDeployments"} <= actions
