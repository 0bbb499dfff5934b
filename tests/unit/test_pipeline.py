"""Pipeline decisions: whether to roll back, what a failed write leaves behind, which exit code a run of
several services ends with, and that every service is prepared before any writes. No AWS, no docker."""

from __future__ import annotations

import argparse
import io
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from ecs_ship import cli, deploy, fanout
from ecs_ship.commands import Command
from ecs_ship.context import Context
from ecs_ship.errors import DeploymentFailed, InputError, Interrupted
from ecs_ship.fanout import InterruptedRun, run_services
from ecs_ship.gha import Reporter
from ecs_ship.plan import ApiCall, rollback_target
from ecs_ship.rollout import decide_rollback
from ecs_ship.spec import ServiceSpec
from ecs_ship.summary import summarise
from ecs_ship.watch import Verdict
from tests.unit.test_plan import NEW_IMAGE, TG_ARN, make_plan, spec, state

PREVIOUS = "arn:aws:ecs:eu-west-1:123456789012:task-definition/hello:7"
NEWER = "arn:aws:ecs:eu-west-1:123456789012:task-definition/hello:9"


# ---------------------------------------------------------------------------------------------------------------------
# whether to roll back
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("on_failure", "no_rollback", "verdict", "expected"),
    [
        ("rollback", False, Verdict("failed", "unhealthy"), True),
        ("rollback", True, Verdict("failed", "unhealthy"), False),
        ("stop", False, Verdict("failed", "unhealthy"), False),
        # Another run deployed a newer revision over ours: rolling back would undo it.
        ("rollback", False, Verdict("failed", "replaced", superseded_by=NEWER), False),
        # The replacement already runs our previous revision (circuit breaker, someone's rollback): safe.
        ("rollback", False, Verdict("failed", "replaced", superseded_by=PREVIOUS), True),
        # Interrupted while watching: follows on_failure.
        ("rollback", False, None, True),
        ("stop", False, None, False),
    ],
)
def test_decide_rollback(on_failure: str, no_rollback: bool, verdict: Verdict | None, expected: bool) -> None:
    d = decide_rollback(on_failure=on_failure, no_rollback=no_rollback, verdict=verdict, previous_arn=PREVIOUS)
    assert d.roll_back is expected
    assert bool(d.why) is not expected  # a refusal always says why


def test_superseded_refusal_names_the_newer_revision() -> None:
    d = decide_rollback(
        on_failure="rollback", no_rollback=False, verdict=Verdict("failed", "x", NEWER), previous_arn=PREVIOUS
    )
    assert "hello:9" in d.why


def test_no_completed_deployment_means_no_rollback() -> None:
    d = decide_rollback(on_failure="rollback", no_rollback=False, verdict=Verdict("failed", "x"), previous_arn=None)
    assert d.roll_back is False
    assert "completed" in d.why


# ---------------------------------------------------------------------------------------------------------------------
# what to roll back to
# ---------------------------------------------------------------------------------------------------------------------
def deployment(status: str, td: str, rollout: str | None, created: float = 0.0) -> dict[str, Any]:
    d: dict[str, Any] = {"status": status, "taskDefinition": td, "createdAt": datetime.fromtimestamp(created, UTC)}
    if rollout is not None:
        d["rolloutState"] = rollout
    return d


OLDER = "arn:aws:ecs:eu-west-1:123456789012:task-definition/hello:5"
UNTRIED = "arn:aws:ecs:eu-west-1:123456789012:task-definition/hello:8"


@pytest.mark.parametrize(
    ("deployments", "expected"),
    [
        # At rest: the running revision served.
        ([deployment("PRIMARY", PREVIOUS, "COMPLETED")], PREVIOUS),
        # Mid-rollout of someone else's revision: it never served; the ACTIVE one did.
        ([deployment("PRIMARY", UNTRIED, "IN_PROGRESS", 2), deployment("ACTIVE", PREVIOUS, "COMPLETED", 1)], PREVIOUS),
        # An earlier run left a failed rollout behind: still the completed one.
        ([deployment("PRIMARY", UNTRIED, "FAILED", 2), deployment("ACTIVE", PREVIOUS, "COMPLETED", 1)], PREVIOUS),
        # Several completed ACTIVE deployments (a rollout over a rollout): the newest of them.
        (
            [
                deployment("PRIMARY", UNTRIED, "IN_PROGRESS", 3),
                deployment("ACTIVE", OLDER, "COMPLETED", 1),
                deployment("ACTIVE", PREVIOUS, "COMPLETED", 2),
            ],
            PREVIOUS,
        ),
        # The service's first deployment has not completed: nothing is known to serve.
        ([deployment("PRIMARY", UNTRIED, "IN_PROGRESS")], None),
        ([deployment("PRIMARY", UNTRIED, "IN_PROGRESS", 2), deployment("ACTIVE", OLDER, "FAILED", 1)], None),
        # No rolloutState at all (an implementation without it): a lone deployment is at rest.
        ([deployment("PRIMARY", PREVIOUS, None)], PREVIOUS),
        ([deployment("PRIMARY", UNTRIED, None, 2), deployment("ACTIVE", PREVIOUS, None, 1)], None),
    ],
)
def test_rollback_target(deployments: list[dict[str, Any]], expected: str | None) -> None:
    assert rollback_target({"deployments": deployments}) == expected


# ---------------------------------------------------------------------------------------------------------------------
# what a failed write leaves behind
# ---------------------------------------------------------------------------------------------------------------------
class FakeElbv2:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def modify_target_group(self, **params: Any) -> None:
        self.calls.append(params)


class FailingEcs:
    def register_task_definition(self, **params: Any) -> dict[str, Any]:
        raise RuntimeError("register refused")


class Clients:
    def __init__(self) -> None:
        self.elbv2 = FakeElbv2()
        self.ecs = FailingEcs()
        self.region = "eu-west-1"


def test_a_failed_register_puts_the_health_check_path_back() -> None:
    plan = make_plan(spec(health_check_path="/ready", apply=True), state(health_path="/"), {"web": NEW_IMAGE})
    clients = Clients()
    with pytest.raises(RuntimeError, match="register refused"):
        deploy.apply(plan, clients)  # type: ignore[arg-type]
    paths = [c["HealthCheckPath"] for c in clients.elbv2.calls]
    assert paths == ["/ready", "/"]
    assert all(c["TargetGroupArn"] == TG_ARN for c in clients.elbv2.calls)


def test_undo_failure_is_reported_with_the_first_failure() -> None:
    plan = make_plan(spec(health_check_path="/ready", apply=True), state(health_path="/"), {"web": NEW_IMAGE})
    clients = Clients()
    calls = 0

    def modify(**params: Any) -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RuntimeError("elbv2 down")

    clients.elbv2.modify_target_group = modify  # type: ignore[method-assign]
    with pytest.raises(Exception, match=r"register refused.*elbv2 down") as caught:
        deploy.apply(plan, clients)  # type: ignore[arg-type]
    assert "by hand" in str(getattr(caught.value, "fix", ""))


# ---------------------------------------------------------------------------------------------------------------------
# several services: prepare all before any executes; the worst exit code wins
# ---------------------------------------------------------------------------------------------------------------------
def svc(name: str) -> ServiceSpec:
    return replace(spec(), name=name, service=name)


def ctx() -> Context:
    return Context(args=argparse.Namespace(), out=Reporter(stream=io.StringIO(), environ={}))


def test_bad_input_in_one_service_means_no_service_executes() -> None:
    executed: list[str] = []

    def prepare(c: Context, s: Any, service: ServiceSpec) -> ServiceSpec:
        if service.name == "bad":
            raise InputError("failed to find service 'bad'")
        return service

    command = Command(prepare, lambda c, p: executed.append(p.name))
    failures = run_services(ctx(), None, [svc("good"), svc("bad"), svc("other")], command)  # type: ignore[arg-type]
    assert executed == []
    assert [f.service.name for f in failures] == ["bad"]


def test_every_service_runs_and_the_worst_exit_code_wins() -> None:
    def execute(c: Context, service: ServiceSpec) -> None:
        if service.name == "failing":
            raise DeploymentFailed("failed to deploy failing: unhealthy")
        if service.name == "broken":
            raise ValueError("a bug")

    command = Command(lambda c, s, service: service, execute)
    failures = run_services(ctx(), None, [svc("ok"), svc("failing"), svc("broken")], command)  # type: ignore[arg-type]
    assert sorted(f.service.name for f in failures) == ["broken", "failing"]
    assert max(cli.exit_code(f.error) for f in failures) == 3
    assert cli.exit_code(DeploymentFailed("x")) == 1
    assert cli.exit_code(InputError("x")) == 2
    assert cli.exit_code(Interrupted("x")) == 130


def test_interrupt_cancels_every_service_and_keeps_their_reports() -> None:
    """A signal cancels; services stop at their next check and what they said is kept."""
    c = ctx()
    started = threading.Barrier(3)

    def execute(cx: Context, service: ServiceSpec) -> None:
        started.wait(5)
        cx.sleep(30)  # a watch: returns at once when cancelled

    def signal_soon() -> None:
        started.wait(5)
        c.interrupt()

    threading.Thread(target=signal_soon).start()
    command = Command(lambda cx, s, service: service, execute)
    with pytest.raises(InterruptedRun) as caught:
        run_services(c, None, [svc("a"), svc("b")], command)  # type: ignore[arg-type]
    assert c.cancel.is_set()
    assert sorted(f.service.name for f in caught.value.failures) == ["a", "b"]
    assert all(isinstance(f.error, Interrupted) for f in caught.value.failures)


def ignoring_cancel(release: threading.Event, started: threading.Event) -> Command:
    """A service stuck where a cancel cannot reach it (a build or push)."""

    def execute(cx: Context, service: ServiceSpec) -> None:
        started.set()
        release.wait(30)

    return Command(lambda cx, s, service: service, execute)


def test_a_service_that_ignores_the_cancel_is_left_after_the_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "GRACE_SECONDS", 0.3)
    c, release, started = ctx(), threading.Event(), threading.Event()
    c.result("stuck")["stage"] = "building repo:tag"
    threading.Thread(target=lambda: started.wait(5) and c.interrupt()).start()
    try:
        with pytest.raises(InterruptedRun) as caught:
            run_services(c, None, [svc("stuck")], ignoring_cancel(release, started))  # type: ignore[arg-type]
    finally:
        release.set()
    (failure,) = caught.value.failures
    assert "interrupted while building repo:tag; it was not waited for" in str(failure.error)


def test_a_second_signal_ends_the_grace_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "GRACE_SECONDS", 60)
    c, release, started = ctx(), threading.Event(), threading.Event()

    def sigint_then_sigterm() -> None:
        started.wait(5)
        c.interrupt()
        c.interrupt()

    threading.Thread(target=sigint_then_sigterm).start()
    began = time.monotonic()
    try:
        with pytest.raises(InterruptedRun):
            run_services(c, None, [svc("stuck")], ignoring_cancel(release, started))  # type: ignore[arg-type]
    finally:
        release.set()
    assert time.monotonic() - began < 30  # not the 60 s grace


# ---------------------------------------------------------------------------------------------------------------------
# arguments anyone who can dispatch the workflow controls
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["deploy", "--image-tag", "v1\n::error::injected"],
        ["deploy", "--image-tag=-rf"],
        ["deploy", "--image-tag", "a" * 129],
        ["deploy", "--image-tag", ""],
        ["deploy", "--timeout", "nan"],
        ["deploy", "--timeout", "inf"],
        ["deploy", "--timeout=-5"],
        ["deploy", "--timeout", "soon"],
        ["rollback", "--timeout", "nan"],
        ["run-local", "--image-tag", "x y"],
    ],
)
def test_hostile_arguments_exit_2_before_anything(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*argv, "--spec", "/nonexistent/ecs-ship.yml"]) == 2
    err = capsys.readouterr().err
    # Refused by the argument itself, before the spec is even read.
    assert "is not a Docker tag" in err or "number of seconds" in err, err
    assert "/nonexistent" not in err
    assert "\n::error::" not in err  # a newline never reaches the log unescaped


def test_good_arguments_parse() -> None:
    args = cli.parser().parse_args(["deploy", "--image-tag", "3f2c1a0_b.v-2", "--timeout", "90.5"])
    assert args.image_tag == "3f2c1a0_b.v-2" and args.timeout == 90.5


def test_undo_calls_are_kept_only_for_changes_made() -> None:
    plan = make_plan(spec(health_check_path="/ready", apply=True), state(health_path="/"), {"web": NEW_IMAGE})

    class Ecs:
        def register_task_definition(self, **params: Any) -> dict[str, Any]:
            return {"taskDefinition": {"taskDefinitionArn": NEWER}}

        def update_service(self, **params: Any) -> dict[str, Any]:
            return {"service": {"deployments": [{"id": "ecs-svc/1", "status": "PRIMARY"}]}}

    clients = Clients()
    clients.ecs = Ecs()  # type: ignore[assignment]
    applied = deploy.apply(plan, clients)  # type: ignore[arg-type]
    assert applied.deployment_id == "ecs-svc/1" and applied.task_definition_arn == NEWER
    assert applied.undo == (
        ApiCall(
            "elbv2", "modify_target_group", {"TargetGroupArn": TG_ARN, "HealthCheckPath": "/"}, applied.undo[0].why
        ),
    )


# ---------------------------------------------------------------------------------------------------------------------
# the job summary
# ---------------------------------------------------------------------------------------------------------------------
def test_a_log_line_with_a_fence_cannot_break_out_of_the_summary(tmp_path: Any) -> None:
    summary_file = tmp_path / "summary.md"
    summary_file.touch()
    c = Context(
        args=argparse.Namespace(),
        out=Reporter(
            stream=io.StringIO(), environ={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary_file)}
        ),
    )
    hostile = ["container web: exit code 1", "```", "<img src=x onerror=alert(1)>", "````` **bold**"]
    summarise(c, svc("web"), {"outcome": "failed, rolled back", "diagnosis": hostile})
    text = summary_file.read_text()
    fence = "``````"  # one longer than the longest backtick run in the lines
    body = text.split(fence + "\n", 1)[1].split("\n" + fence, 1)[0]
    assert body.splitlines() == hostile
