"""Interruptions, rollbacks and several services end in a known state: the one the message names.

Through the real CLI against the sandbox. Each test checks the service afterwards with plain boto3 calls and
what the load balancer serves, not only what ecs-ship printed.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import App, HelloImages
from tests.e2e.conftest import describe, ecs_ship, register_revision, served, spec_for, start_ecs_ship, writes
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox


def primary(ecs: Any, w: World) -> dict[str, Any]:
    return next(d for d in describe(ecs, w)["deployments"] if d["status"] == "PRIMARY")


def start_deploy(sandbox: Sandbox, app: App, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    """Start `ecs-ship deploy` and return once its new task is RUNNING (it is then watching)."""
    proc = start_ecs_ship(sandbox, "deploy", "--spec", str(app.spec), *extra)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "task " in line and "RUNNING" in line:
            break
    return proc, seen


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_while_watching_starts_the_rollback(
    sig: signal.Signals, sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    """GitHub's cancel is SIGINT, then SIGTERM 7.5 s later: with on_failure: rollback (the default) the
    rollback is started at once and the process ends well before the SIGTERM."""
    w = make_world(grace_period=120)
    app = make_app()
    app.write_spec(spec_for(w, build_args={"START_DELAY": "60"}))
    proc, seen = start_deploy(sandbox, app)
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == 130, "".join(seen) + out + err
    assert "started rolling back to" in err, err
    assert took < 7.5, f"took {took:.1f}s after the signal"
    ecs = sandbox.clients()["ecs"]
    assert primary(ecs, w)["taskDefinition"] == w.task_definition_arn
    assert served(w) == "hello v1"


def test_interrupt_with_no_rollback_leaves_the_deployment_to_ecs(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world(grace_period=120)
    app = make_app()
    app.write_spec(spec_for(w, build_args={"START_DELAY": "60"}))
    proc, seen = start_deploy(sandbox, app, "--no-rollback")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen) + out + err
    assert "continues in ECS" in err and "ecs-ship rollback" in err
    ecs = sandbox.clients()["ecs"]
    svc = describe(ecs, w)
    assert len(svc["deployments"]) == 2  # the deployment goes on; the old one still serves
    assert primary(ecs, w)["taskDefinition"] != w.task_definition_arn
    assert served(w) == "hello v1"


def test_rollback_restores_the_health_check_path_it_changed(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    """The deploy moves the target group to a path the new version fails; the rollback puts the old path back,
    without which the old revision would fail its health checks too."""
    w = make_world()
    app = make_app()
    spec = spec_for(w, build_args={"VERSION": "v2"}).replace(
        "health_check_path: /health", "health_check_path: /nope\n  apply_health_check_path: true"
    )
    app.write_spec(spec)
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 1, run.text
    assert "rolled back" in run.text and "'/nope' -> '/health'" in run.text, run.text
    elbv2 = sandbox.clients()["elbv2"]
    tg = elbv2.describe_target_groups(TargetGroupArns=[w.target_group_arn])["TargetGroups"][0]
    assert tg["HealthCheckPath"] == "/health"
    assert served(w) == "hello v1"


def test_a_deployment_replaced_by_another_is_not_rolled_back_over(
    sandbox: Sandbox, hello: HelloImages, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    """While this run watches, another deploy (plain boto3, as another run or a person would) moves the service
    to a newer revision: this run fails, names it, and leaves the newer deploy alone."""
    w = make_world(grace_period=120)
    app = make_app()
    app.write_spec(spec_for(w, build_args={"START_DELAY": "60"}))
    proc, seen = start_deploy(sandbox, app)
    ecs = sandbox.clients()["ecs"]
    newer = register_revision(ecs, w, hello.get("v1"))
    ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=newer, forceNewDeployment=True)
    out, err = proc.communicate(timeout=90)
    text = "".join(seen) + out + err
    assert proc.returncode == 1, text
    assert "replaced" in text and "rolling back would undo it" in text, text
    assert "rolling back to" not in text
    assert primary(ecs, w)["taskDefinition"] == newer


def test_bad_input_in_one_service_stops_every_service_before_any_write(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    a = make_world()
    app = make_app()
    base = spec_for(a)
    app.write_spec(
        base
        + f"services:\n  - {{name: good, cluster: {a.cluster}, service: {a.service}}}\n"
        + f"  - {{name: bad, cluster: {a.cluster}, service: no-such-service}}\n"
    )
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 2, run.text
    assert "no-such-service" in run.err
    assert writes(sandbox, mark) == []
    assert served(a) == "hello v1"


def test_image_tag_for_a_missing_image_in_one_service_writes_nothing(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    a, b = make_world(), make_world()
    app = make_app()
    # The two services use different repositories; only the first has the tag.
    spec = spec_for(a, repo=f"known-{a.service}")
    app.write_spec(spec)
    assert ecs_ship(sandbox, "deploy", "--spec", str(app.spec)).code == 0
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=app.root, capture_output=True, text=True).stdout.strip()
    app.write_spec(
        spec
        + f"services:\n  - {{name: first, cluster: {a.cluster}, service: {a.service}}}\n"
        + f"  - name: second\n    cluster: {b.cluster}\n    service: {b.service}\n"
        + f"    images: [{{container: web, repository: '${{REGISTRY}}/unknown-{b.service}'}}]\n"
    )
    mark = sandbox.ledger.mark()
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec), "--image-tag", sha)
    assert run.code == 2, run.text
    assert f"unknown-{b.service}:{sha}" in run.err
    assert writes(sandbox, mark) == []


def test_interrupt_with_several_services_ends_each_in_a_named_state(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    """SIGTERM while two services deploy: each one stops at its next check, the run ends within GitHub's 7.5 s,
    and both services end on their old revision (rolled back, or never updated)."""
    a, b = make_world(grace_period=120), make_world(grace_period=120)
    app = make_app()
    app.write_spec(
        spec_for(a, build_args={"START_DELAY": "60"})
        + f"services:\n  - {{name: first, cluster: {a.cluster}, service: {a.service}}}\n"
        + f"  - {{name: second, cluster: {b.cluster}, service: {b.service}}}\n"
    )
    proc, seen = start_deploy(sandbox, app)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen) + out + err
    assert time.monotonic() - sent < 7.5
    assert "[first]" in err and "[second]" in err, err  # each service says where it was left
    ecs = sandbox.clients()["ecs"]
    for w in (a, b):
        assert primary(ecs, w)["taskDefinition"] == w.task_definition_arn
        assert served(w) == "hello v1"
