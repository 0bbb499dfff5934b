"""Pipeline decisions: whether to roll back, what a failed write leaves behind, which exit code a run of
several services ends with, that every service is prepared before any writes, and how a deploy whose
post_deploy task fails (or is interrupted) ends. No AWS, no docker."""

from __future__ import annotations

import argparse
import io
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecs_ship import aws, cli, deploy, fanout
from ecs_ship.commands import Command, deploy_end
from ecs_ship.commands import deploy as deploy_command
from ecs_ship.context import Context
from ecs_ship.errors import DeploymentFailed, InputError, Interrupted
from ecs_ship.fanout import InterruptedRun, run_services
from ecs_ship.gha import Reporter
from ecs_ship.plan import ApiCall, TargetGroupInfo, rollback_target
from ecs_ship.rollout import RollbackStarted, decide_rollback
from ecs_ship.spec import OneOffSpec, ServiceSpec, SmokeSpec
from ecs_ship.summary import summarise
from ecs_ship.watch import Outcome, Verdict
from tests.unit.test_oneoff_run import ARN as TASK
from tests.unit.test_oneoff_run import World as oneoff_world
from tests.unit.test_plan import NEW_IMAGE, TG_ARN, make_plan, service_entry, spec, state

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
        ["verify", "--image-tag", "v1\n::error::injected"],
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
    assert args.image_tag == "3f2c1a0_b.v-2" and args.timeout == 90.5 and not args.no_verify
    assert cli.parser().parse_args(["deploy", "--no-verify"]).no_verify
    assert cli.parser().parse_args(["plan", "--no-verify"]).no_verify
    assert cli.parser().parse_args(["verify", "--env", "staging"]).command == "verify"


def test_a_failed_pre_flight_check_is_exit_1_naming_the_first_and_counting_the_rest() -> None:
    from ecs_ship.verify import FAILURE, Finding, PreflightFailed

    failures = [
        Finding("secret DB of web", FAILURE, "no SSM parameter /db", "create it"),
        Finding("log group of web /ecs/x", FAILURE, "no log group /ecs/x", "create the group"),
    ]
    err = PreflightFailed(failures)
    assert cli.exit_code(err) == 1
    assert str(err) == "failed the pre-flight check of secret DB of web: no SSM parameter /db (and 1 more: see above)"
    assert err.fix == "create it"


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


# ---------------------------------------------------------------------------------------------------------------------
# a post_deploy task, once the new revision serves: its failure fails the deploy as a failed smoke check does
# ---------------------------------------------------------------------------------------------------------------------
WARM = OneOffSpec("warm", None, ("warm", "--all"), 30.0, phase="post_deploy")
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"]}}
SERVING = Outcome(ok=True, verdict=Verdict("serving"), milestones={"serving": 12.0}, diagnosis=[], last=None)


class Ending:
    """A deploy of hello:9 that serves, its post_deploy task `warm`, ECS and CloudWatch Logs stubbed, and the
    rollback replaced by a record of what it was asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, on_failure: str = "rollback", no_rollback: bool = False):
        self.aws = oneoff_world()
        self.ctx = Context(
            args=argparse.Namespace(no_rollback=no_rollback, timeout=None),
            out=Reporter(stream=io.StringIO(), environ={}),
        )
        svc = replace(spec(), post_deploy=(WARM,), on_failure=on_failure)  # type: ignore[arg-type]
        the_plan = make_plan(svc, state(service=service_entry(networkConfiguration=NETWORK)), {"web": NEW_IMAGE})
        applied = deploy.Applied(NEWER, PREVIOUS, PREVIOUS, "ecs-svc/9", registered=True)
        clients = aws.Clients("eu-west-1", self.aws.ecs, None, self.aws.logs, None)  # type: ignore[arg-type]
        self.deployed = deploy_end.Deployed(svc, clients, the_plan, applied, None, {}, 60.0, 0.0)
        self.rollbacks: list[tuple[str, bool]] = []

        def roll_back(ctx: Context, s: ServiceSpec, c: Any, target: str, *args: Any) -> bool:
            self.rollbacks.append((target, True))
            return True

        def start_rollback(ctx: Context, s: ServiceSpec, c: Any, target: str, *args: Any, follow: bool) -> Any:
            self.rollbacks.append((target, follow))
            return RollbackStarted("ecs-svc/10", target, {})

        monkeypatch.setattr(deploy_end, "roll_back", roll_back)
        monkeypatch.setattr(deploy_end, "start_rollback", start_rollback)

    def task_runs(self) -> None:
        """ECS starts the post_deploy task with the new revision, on the service's launch type and network."""
        call = self.deployed.plan.after[0]
        self.aws.ecs_stub.add_response(
            "run_task",
            {"tasks": [{"taskArn": TASK, "lastStatus": "PROVISIONING"}], "failures": []},
            {**call.params, "taskDefinition": NEWER},
        )

    def task_stops(self, code: int, line: str) -> None:
        self.aws.poll(
            "STOPPED",
            [line],
            containers=[{"name": "web", "exitCode": code}],
            stoppedReason="Essential container in task exited",
            stopCode="EssentialContainerExited",
        )
        self.aws.log_lines([])

    def finish(self) -> None:
        with self.aws.ecs_stub, self.aws.logs_stub:
            deploy_end.finish(self.ctx, self.deployed, SERVING)
        self.aws.ecs_stub.assert_no_pending_responses()

    @property
    def said(self) -> str:
        stream = self.ctx.out.stream
        assert isinstance(stream, io.StringIO)
        return stream.getvalue()


@pytest.mark.parametrize(
    ("on_failure", "no_rollback", "rolled_back", "outcome"),
    [
        ("rollback", False, True, "failed, rolled back"),
        ("rollback", True, False, "failed, left as is (--no-rollback was given)"),
        ("stop", False, False, "failed, left as is (on_failure is 'stop')"),
    ],
)
def test_a_failed_post_deploy_task_fails_the_deploy_and_rolls_back_as_on_failure_says(
    monkeypatch: pytest.MonkeyPatch, on_failure: str, no_rollback: bool, rolled_back: bool, outcome: str
) -> None:
    e = Ending(monkeypatch, on_failure=on_failure, no_rollback=no_rollback)
    e.task_runs()
    e.task_stops(1, "warm-up failed: 3 keys missing")
    with pytest.raises(DeploymentFailed) as caught:
        e.finish()
    err = caught.value
    assert str(err) == "failed to deploy hello: post_deploy task warm failed: container web exited 1"
    assert err.diagnosis == [
        "post_deploy task warm failed: container web exited 1",
        "task abc123 stopped: Essential container in task exited (EssentialContainerExited)",
        "last log lines:",
        "  [web] warm-up failed: 3 keys missing",
    ]
    assert err.rolled_back is rolled_back and cli.exit_code(err) == 1
    assert e.rollbacks == ([(PREVIOUS, True)] if rolled_back else [])
    assert e.ctx.result("hello")["outcome"] == outcome
    if not rolled_back:
        assert "the service was left on hello:9" in (err.fix or "")
    assert "  [warm] warm-up failed: 3 keys missing" in e.said and "deployed hello:9" not in e.said


def test_a_post_deploy_task_that_exits_0_lets_the_deploy_succeed_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    e = Ending(monkeypatch)
    e.task_runs()
    e.task_stops(0, "cache warm")
    e.finish()
    assert e.ctx.result("hello")["outcome"] == "deployed" and e.rollbacks == []
    lines = e.said.splitlines()
    exited = next(i for i, ln in enumerate(lines) if "post_deploy warm: container web exited 0" in ln)
    assert any("deployed hello:9" in ln for ln in lines[exited:]), e.said


def test_a_failed_smoke_check_runs_no_post_deploy_task(monkeypatch: pytest.MonkeyPatch) -> None:
    e = Ending(monkeypatch)
    d = e.deployed
    e.deployed = replace(d, svc=replace(d.svc, smoke=SmokeSpec("/", 200, None, 5.0)))
    with pytest.raises(DeploymentFailed, match="smoke check: the service has no load balancer URL"):
        e.finish()  # the stub refuses any run_task: none was expected
    assert e.rollbacks == [(PREVIOUS, True)]


def test_a_signal_during_a_post_deploy_task_stops_it_and_starts_the_rollback(monkeypatch: pytest.MonkeyPatch) -> None:
    e = Ending(monkeypatch)
    e.task_runs()

    def signal_once_started() -> float:
        e.ctx.interrupt()  # lands while the task runs: the run reads the clock right after RunTask
        return 0.0

    e.ctx.clock = signal_once_started
    e.aws.ecs_stub.add_response(
        "stop_task",
        {"task": {"taskArn": TASK}},
        {"cluster": "prod", "task": TASK, "reason": "ecs-ship: interrupted during post_deploy warm"},
    )
    with pytest.raises(Interrupted) as caught:
        e.finish()
    assert str(caught.value).startswith(
        "interrupted during post_deploy task warm of hello: started rolling back to hello:7 (deployment ecs-svc/10)"
    )
    assert e.rollbacks == [(PREVIOUS, False)]  # started, not watched: a cancelled job has seconds left
    assert e.ctx.result("hello")["outcome"] == "interrupted, rolling back to hello:7"


def test_credentials_that_stop_working_at_the_checks_are_exit_1_not_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The consistency check reads ECS after the writes: an expired session token there must not be reported as
    bad input (exit 2 promises no write was made)."""
    e = Ending(monkeypatch)
    e.aws.ecs_stub.add_client_error(
        "describe_service_revisions", service_error_code="ExpiredTokenException", http_status_code=400
    )
    last = SimpleNamespace(
        service_deployment=SimpleNamespace(target_revision="arn:aws:ecs:eu-west-1:1:rev/1"), tasks=()
    )
    d = replace(e.deployed, pushed={"web": "sha256:" + "a" * 64})
    with pytest.raises(DeploymentFailed) as caught, e.aws.ecs_stub, e.aws.logs_stub:
        deploy_end.finish(e.ctx, d, replace(SERVING, last=last))  # type: ignore[arg-type]
    assert cli.exit_code(caught.value) == 1
    assert "failed to check hello once it served: AWS refused the credentials (ExpiredTokenException)" in str(
        caught.value
    )
    assert e.rollbacks == []


def test_a_url_read_after_the_writes_is_a_warning_when_it_fails_and_the_url_when_it_does_not() -> None:
    """Without a smoke check the URL is only output: a deploy reads it while ECS rolls out, and a load balancer
    it may not read costs it the URL line, never the deploy."""

    class Elbv2:
        def __init__(self, fail: bool) -> None:
            self.fail = fail

        def describe_load_balancers(self, **_: Any) -> dict[str, Any]:
            if self.fail:
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeLoadBalancers")
            return {"LoadBalancers": [{"DNSName": "alb.example"}]}

        def get_paginator(self, name: str) -> Any:
            pages = {
                "describe_listeners": [
                    {"Listeners": [{"ListenerArn": "l", "Protocol": "HTTP", "Port": 80, "DefaultActions": []}]}
                ],
                "describe_rules": [{"Rules": [{"IsDefault": True, "Actions": [{"TargetGroupArn": "tg"}]}]}],
            }[name]
            return SimpleNamespace(paginate=lambda **_: pages)

    group = TargetGroupInfo("tg", "web-tg", "/", ("lb",))
    for fail, want in ((True, None), (False, "http://alb.example")):
        c = ctx()
        clients = aws.Clients("eu-west-1", None, Elbv2(fail))
        p = deploy_command.Prepared(svc("web"), clients, replace(state(), target_groups=(group,)), ())
        assert deploy_command.read_url_meanwhile(c, p).result(timeout=5) == want
        assert ("failed to read the service URL" in c.out.stream.getvalue()) == fail  # type: ignore[attr-defined]
