"""The fault suite: every fault and interruption ends in a known state, and no secret reaches any output.

Each row breaks something real in the sandbox (the registry behind its fault proxy, the AWS endpoint, the
credentials, the app, the process) before or while `ecs-ship deploy` runs as in GitHub Actions, then checks
the state the service is left in with plain boto3 calls and what the load balancer serves — the old revision
or the new one, as the exit code and the message say — and scans stdout, stderr, the step outputs, the job
summary, CloudWatch Logs and the registry's image metadata for the secrets planted in the world.
"""

from __future__ import annotations

import base64
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import App
from tests.e2e.conftest import describe, ecs_ship_env, poll, served, spec_for, started_task, writes
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox

# --------------------------------------------------------------------------------------------
# secrets planted in every world, and the scan
# --------------------------------------------------------------------------------------------
AWS_SECRET = "aws-" + secrets.token_urlsafe(24)
DB_PASSWORD = "db-" + secrets.token_urlsafe(18)
PRIVATE_KEY = "\n".join(
    ["-----BEGIN PRIVATE KEY-----", *(secrets.token_urlsafe(48) for _ in range(4)), "-----END PRIVATE KEY-----"]
)


def planted(sandbox: Sandbox) -> dict[str, str]:
    """name -> value of every secret a run could leak; a multi-line key counts line by line."""
    assert sandbox.registry is not None
    auth = base64.b64encode(f"{sandbox.registry.user}:{sandbox.registry.password}".encode()).decode()
    found = {
        "AWS secret key": AWS_SECRET,
        "registry password": sandbox.registry.password,
        "registry auth header": auth,
        "DB_PASSWORD": DB_PASSWORD,
    }
    for i, line in enumerate(PRIVATE_KEY.splitlines()[1:-1]):
        found[f"PRIVATE_KEY line {i + 1}"] = line
    return found


def leaks(sources: dict[str, str], secret_values: dict[str, str]) -> list[str]:
    hits = []
    for where, text in sources.items():
        # GitHub's runner consumes ::add-mask:: lines; they are how a secret is hidden, never shown.
        shown = "\n".join(line for line in text.splitlines() if not line.startswith("::add-mask::"))
        hits += [f"{name} in {where}" for name, value in secret_values.items() if value in shown]
    return hits


def cloudwatch_text(sandbox: Sandbox, w: World) -> str:
    logs = sandbox.clients()["logs"]
    events = logs.filter_log_events(logGroupName=w.log_group).get("events", [])
    return "\n".join(str(e.get("message", "")) for e in events)


def registry_text(sandbox: Sandbox, repository: str) -> str:
    """Every manifest and image config (history, labels, env) of one repository, as the registry serves them."""
    reg = sandbox.registry
    assert reg is not None
    out = []
    with reg.session() as s:
        tags = s.get(f"{reg.url}/v2/{repository}/tags/list", timeout=10)
        for tag in (tags.json().get("tags") or []) if tags.status_code == 200 else []:
            m = s.get(
                f"{reg.url}/v2/{repository}/manifests/{tag}",
                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
                timeout=10,
            )
            out.append(m.text)
            digest = (m.json().get("config") or {}).get("digest") if m.status_code == 200 else None
            if digest:
                out.append(s.get(f"{reg.url}/v2/{repository}/blobs/{digest}", timeout=10).text)
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# one run of ecs-ship as a GitHub Actions step
# --------------------------------------------------------------------------------------------
@dataclass
class StepRun:
    code: int
    out: str
    err: str
    outputs: str
    summary: str
    seconds_after_trigger: float | None = None

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Case:
    """A user's repository and service: hello v1 serving, a new commit to deploy, secrets in the task definition."""

    sandbox: Sandbox
    world: World
    app: App
    repo: str
    tmp: Path
    mark: int = 0

    def env(self) -> dict[str, str]:
        (self.tmp / "out").touch()
        (self.tmp / "summary").touch()
        return ecs_ship_env(
            self.sandbox,
            {
                "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
                "GITHUB_ACTIONS": "true",
                "GITHUB_OUTPUT": str(self.tmp / "out"),
                "GITHUB_STEP_SUMMARY": str(self.tmp / "summary"),
            },
        )

    def deploy(self, *args: str, **kw: Any) -> StepRun:
        return self.run("deploy", *args, **kw)

    def run(
        self,
        *args: str,
        trigger: str | None = None,
        during: Callable[[subprocess.Popen[str]], None] | None = None,
        timeout: float = 180,
        env: dict[str, str] | None = None,
    ) -> StepRun:
        """Run `ecs-ship ARGS`; when a line containing `trigger` is printed, call `during` (once)."""
        for name in ("out", "summary"):
            (self.tmp / name).write_text("")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ecs_ship", *args, "--spec", str(self.app.spec)],
            env={**self.env(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        err_lines: list[str] = []
        out_lines: list[str] = []
        fired_at: float | None = None

        def read_stdout() -> None:
            nonlocal fired_at
            assert proc.stdout is not None
            for line in proc.stdout:
                out_lines.append(line)
                if trigger is not None and fired_at is None and trigger in line:
                    fired_at = time.monotonic()
                    if during is not None:
                        during(proc)

        readers = [
            threading.Thread(target=read_stdout, daemon=True),
            threading.Thread(target=lambda: err_lines.extend(proc.stderr or []), daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            # A run that hangs fails here with what it printed, not at pytest's timeout with nothing.
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"ecs-ship {' '.join(args)} still running after {timeout} s:\n" + "".join(out_lines + err_lines)
            ) from None
        ended = time.monotonic()
        for reader in readers:
            reader.join(timeout=10)
        if trigger is not None:
            assert fired_at is not None, f"{trigger!r} never printed:\n" + "".join(out_lines + err_lines)
        return StepRun(
            code,
            "".join(out_lines),
            "".join(err_lines),
            (self.tmp / "out").read_text(),
            (self.tmp / "summary").read_text(),
            None if fired_at is None else ended - fired_at,
        )

    def primary(self) -> str:
        ecs = self.sandbox.clients()["ecs"]
        return str(
            next(d for d in describe(ecs, self.world)["deployments"] if d["status"] == "PRIMARY")["taskDefinition"]
        )

    def assert_no_leak(self, run: StepRun) -> None:
        sources = {
            "stdout": run.out,
            "stderr": run.err,
            "GITHUB_OUTPUT": run.outputs,
            "GITHUB_STEP_SUMMARY": run.summary,
            "CloudWatch Logs": cloudwatch_text(self.sandbox, self.world),
            "registry": registry_text(self.sandbox, self.repo),
        }
        found = leaks(sources, planted(self.sandbox))
        assert not found, found

    def assert_old_serving(self) -> None:
        """The service is back on (or never left) the revision it ran before, and the ALB serves it."""
        poll(self.primary, lambda arn: arn == self.world.task_definition_arn, 60, "the old revision as PRIMARY")
        poll(lambda: served(self.world), lambda text: text == "hello v1", 60, "hello v1 served")

    def assert_new_serving(self, version: str) -> None:
        assert self.primary() != self.world.task_definition_arn
        poll(lambda: served(self.world), lambda text: text == f"hello {version}", 60, f"hello {version} served")


@pytest.fixture
def case(sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App], tmp_path: Path) -> Any:
    def make(*, build_args: dict[str, str] | None = None, dockerfile_tail: str = "", **world: Any) -> Case:
        w = make_world(environment={"DB_PASSWORD": DB_PASSWORD, "PRIVATE_KEY": PRIVATE_KEY}, **world)
        app = make_app()
        if dockerfile_tail:
            dockerfile = app.root / "Dockerfile"
            dockerfile.write_text(dockerfile.read_text() + dockerfile_tail)
        repo = f"faults-{secrets.token_hex(4)}"
        app.write_spec(spec_for(w, repo=repo, build_args={"VERSION": "v2", **(build_args or {})}))
        return Case(sandbox, w, app, repo, tmp_path, sandbox.ledger.mark())

    return make


# --------------------------------------------------------------------------------------------
# the table: faults set before the run
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    name: str
    fault: Callable[[Sandbox], None]
    exit: int
    ends: str  # "old": the old revision serves, no AWS write; "new": the new one serves
    says: str = ""
    build_args: dict[str, str] = field(default_factory=dict)
    then_succeeds: bool = False  # the same command succeeds once the fault is gone
    rolls_back: bool = False  # "old" by a rollback (writes were made); else no AWS write at all
    # Proof the fault reached the run: "every action" (each AWS action it called failed first), or a
    # registry fault that hit a request ("cut_upload", "manifest_500 PUT").
    hit: str = ""


def _every_action(code: str, status: int) -> Callable[[Sandbox], None]:
    # Each action's first two calls fail: the SDK's retries must carry every call the run makes.
    return lambda sb: sb.ledger.burst_each(2, code, status)


def assert_hit(row: Row, sandbox: Sandbox, c: Case, registry_mark: int) -> None:
    if row.hit == "every action":
        calls = sandbox.ledger.calls_since(c.mark)
        missed = {call.action for call in calls} - {call.action for call in calls if call.error}
        assert calls and not missed, f"actions the fault never hit: {sorted(missed)}"
    elif row.hit:
        fault, _, method = row.hit.partition(" ")
        applied = sandbox.registry_faults.applied_since(registry_mark)
        assert any(a.fault == fault and method in ("", a.method) for a in applied), applied


ROWS = [
    Row("registry refuses auth", lambda sb: sb.registry_faults.refuse_auth(), 2, "old", "HTTP 401"),
    Row(
        "registry drops every upload", lambda sb: sb.registry_faults.cut_uploads(), 1, "old", "failed to push", {}, True
    ),
    Row("registry cuts the 2nd upload", lambda sb: sb.registry_faults.cut_upload(2), 0, "new", hit="cut_upload"),
    Row("registry manifest 500 once", lambda sb: sb.registry_faults.manifest_500(1), 0, "new", hit="manifest_500"),
    Row("registry manifest 500 always", lambda sb: sb.registry_faults.manifest_500(1000), 1, "old", "HTTP 500"),
    Row(
        "registry 500 on the pushed manifest",
        lambda sb: sb.registry_faults.manifest_500(1000, ("PUT",)),
        1,
        "old",
        "failed to push",
        then_succeeds=True,
        hit="manifest_500 PUT",
    ),
    Row("registry down", lambda sb: sb.pause_registry(), 1, "old", "failed to reach registry", {}, True),
    Row("AWS 503 on every action", _every_action("ServiceUnavailable", 503), 0, "new", hit="every action"),
    Row("AWS 500 on every action", _every_action("InternalFailure", 500), 0, "new", hit="every action"),
    Row("AWS throttling on every action", _every_action("ThrottlingException", 400), 0, "new", hit="every action"),
    Row("crash loop", lambda sb: None, 1, "old", "exit code 3", {"CRASH": "1"}, rolls_back=True),
    Row("health check fails", lambda sb: None, 1, "old", "ResponseCodeMismatch", {"HEALTH": "500"}, rolls_back=True),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_fault_before_the_run(row: Row, sandbox: Sandbox, case: Callable[..., Case]) -> None:
    c = case(build_args=row.build_args)
    registry_mark = len(sandbox.registry_faults.applied_since())
    row.fault(sandbox)
    run = c.deploy()
    assert_hit(row, sandbox, c, registry_mark)
    sandbox.clear_faults()  # the checks below read the world through the same endpoints
    assert run.code == row.exit, run.text
    assert row.says in run.text, run.text
    assert "Traceback" not in run.text
    if row.ends == "old" and row.rolls_back:
        assert "rolled back" in run.text, run.text
        c.assert_old_serving()
    elif row.ends == "old":
        assert writes(sandbox, c.mark) == [], "a registry fault must stop the run before any AWS write"
        c.assert_old_serving()
    else:
        c.assert_new_serving("v2")
    c.assert_no_leak(run)
    if row.then_succeeds:
        again = c.deploy()
        assert again.code == 0, again.text
        c.assert_new_serving("v2")


# --------------------------------------------------------------------------------------------
# faults while it watches
# --------------------------------------------------------------------------------------------
def test_aws_errors_while_watching_are_ridden_out(sandbox: Sandbox, case: Callable[..., Case]) -> None:
    c = case()
    run = c.deploy(trigger="started deployment", during=lambda p: sandbox.ledger.burst("*", 5, "InternalFailure", 500))
    assert run.code == 0, run.text
    c.assert_new_serving("v2")
    c.assert_no_leak(run)


def test_aws_endpoint_restart_while_watching(sandbox: Sandbox, case: Callable[..., Case]) -> None:
    c = case()
    restarts: list[threading.Thread] = []

    def restart(proc: subprocess.Popen[str]) -> None:
        t = threading.Thread(target=sandbox.restart_aws, args=(3.0,), daemon=True)
        t.start()
        restarts.append(t)

    run = c.deploy(trigger="started deployment", during=restart)
    for t in restarts:
        t.join(timeout=30)
    assert run.code == 0, run.text
    c.assert_new_serving("v2")
    c.assert_no_leak(run)


def test_credentials_expiring_while_watching(sandbox: Sandbox, case: Callable[..., Case]) -> None:
    """Nothing more can be read or written: exit 1 (not 2: writes were made), the deployment named, no traceback;
    the deployment goes on in ECS and completes."""
    c = case()
    run = c.deploy(trigger="started deployment", during=lambda p: sandbox.ledger.expire_credentials())
    assert run.code == 1, run.text
    assert "AWS refused the credentials" in run.text and "continues in ECS" in run.text, run.text
    assert "Traceback" not in run.text
    sandbox.ledger.renew_credentials()
    c.assert_new_serving("v2")
    c.assert_no_leak(run)


def test_flapping_health_check_ends_in_the_state_the_exit_code_names(
    sandbox: Sandbox, case: Callable[..., Case]
) -> None:
    c = case(build_args={"HEALTH": "flap"})
    run = c.deploy()
    assert run.code in (0, 1), run.text
    if run.code == 0:
        assert c.primary() != c.world.task_definition_arn
    else:
        assert "rolled back" in run.text or "rollback unhealthy" in run.text, run.text
        assert c.primary() == c.world.task_definition_arn
    c.assert_no_leak(run)


def test_two_deploys_of_one_service_at_once(
    sandbox: Sandbox, case: Callable[..., Case], make_app: Callable[[], App]
) -> None:
    """The later deploy replaces the earlier one's deployment: the earlier run fails and says so, and does not
    roll back over the later one, which ends serving."""
    c = case()
    sandbox.slow_start(c.world.service, 3)
    other = make_app()
    other.write_spec(spec_for(c.world, repo=c.repo + "-b", build_args={"VERSION": "v3"}))
    later: list[StepRun] = []

    def deploy_other(proc: subprocess.Popen[str]) -> None:
        b = Case(sandbox, c.world, other, c.repo + "-b", c.tmp / "b")
        b.tmp.mkdir()
        t = threading.Thread(target=lambda: later.append(b.deploy()), daemon=True)
        t.start()
        threads.append(t)

    threads: list[threading.Thread] = []
    first = c.deploy(trigger="started deployment", during=deploy_other)
    for t in threads:
        t.join(timeout=200)
    (second,) = later
    assert second.code == 0, second.text
    if first.code != 0:
        assert first.code == 1 and "replaced" in first.text and "rolling back would undo it" in first.text, first.text
        assert "rolling back to" not in first.text
    c.assert_new_serving("v3")
    c.assert_no_leak(first)
    c.assert_no_leak(second)


# --------------------------------------------------------------------------------------------
# SIGINT and SIGTERM at each stage
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    name: str
    trigger: str
    set_up: Callable[[Sandbox], None] = lambda sb: None
    build_args: dict[str, str] = field(default_factory=dict)
    dockerfile_tail: str = ""
    says: str = ""
    updated: bool = False  # whether update_service may have been called before the signal
    grace_period: int = 0  # the service's health-check grace period (AWS seconds)


STAGES = [
    Stage("build", "RUN sleep 20", dockerfile_tail="RUN sleep 20\n", says="interrupted while building"),
    Stage(
        "push",
        "The push refers to repository",
        set_up=lambda sb: sb.registry_faults.slow_uploads(4),
        says="interrupted while building",
    ),
    Stage(
        "register",
        "task definition changes",
        set_up=lambda sb: sb.ledger.throttle("RegisterTaskDefinition", 3),
        says="interrupted",
    ),
    Stage(
        "update",
        "task definition changes",
        set_up=lambda sb: sb.ledger.throttle("UpdateService", 2),
        says="interrupted",
        updated=True,
    ),
    Stage(
        "watch",
        "RUNNING",
        build_args={"START_DELAY": "60"},
        says="started rolling back",
        updated=True,
        grace_period=120,
    ),
    Stage("rollback", "rolling back to", build_args={"HEALTH": "500"}, says="interrupted while rolling", updated=True),
]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("stage", STAGES, ids=[s.name for s in STAGES])
def test_signal_at_each_stage(stage: Stage, sig: signal.Signals, sandbox: Sandbox, case: Callable[..., Case]) -> None:
    """GitHub cancels with SIGINT, then SIGTERM 7.5 s later, then SIGKILL: each stage ends in time, exit 130,
    with the outputs and the summary written and the service in the state the message names."""
    c = case(build_args=stage.build_args, dockerfile_tail=stage.dockerfile_tail, grace_period=stage.grace_period)
    stage.set_up(sandbox)
    run = c.deploy(trigger=stage.trigger, during=lambda p: p.send_signal(sig))
    assert run.code == 130, run.text
    assert run.seconds_after_trigger is not None and run.seconds_after_trigger < 7.5, run.seconds_after_trigger
    assert stage.says in run.text, run.text
    assert "Traceback" not in run.text
    assert "interrupted" in run.summary, run.summary
    assert any(line.startswith("outcome=") and "interrupted" in line for line in run.outputs.splitlines()), run.outputs
    # Every log group is closed, also one a build left open: the error must not be folded away inside it.
    assert run.out.count("::group::") == run.out.count("::endgroup::"), run.out
    if not stage.updated:
        assert "UpdateService" not in writes(sandbox, c.mark)
    c.assert_old_serving()
    c.assert_no_leak(run)


def test_sigint_then_sigterm_during_a_build_still_ends_cleanly(sandbox: Sandbox, case: Callable[..., Case]) -> None:
    """GitHub's own sequence, with a build that ignores the cancel: the second signal ends the grace at once."""
    c = case(dockerfile_tail="RUN sleep 20\n")

    def cancel(proc: subprocess.Popen[str]) -> None:
        # GitHub's 7.5 s gap between the two, shortened to none: the second must end the grace.
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGTERM)

    run = c.deploy(trigger="RUN sleep 20", during=cancel)
    assert run.code == 130, run.text
    assert run.seconds_after_trigger is not None and run.seconds_after_trigger < 4, run.seconds_after_trigger
    assert writes(sandbox, c.mark) == []
    c.assert_old_serving()
    c.assert_no_leak(run)


def _signal_during_a_one_off_task(c: Case, sig: signal.Signals, phase: str) -> StepRun:
    """Deploy with a `phase` task that runs on (`hang`), signal the run once the task started, and see it stopped."""
    doc = yaml.safe_load(c.app.spec.read_text())
    doc[phase] = [{"name": "hang", "command": ["sleep", "600"], "timeout": 120}]
    c.app.write_spec(yaml.safe_dump(doc, sort_keys=False))
    run = c.deploy(trigger=f"{phase} hang: started task", during=lambda p: p.send_signal(sig))
    assert run.code == 130, run.text
    assert run.seconds_after_trigger is not None and run.seconds_after_trigger < 7.5, run.seconds_after_trigger
    assert f"{phase} hang: stopping task" in run.text, run.text
    assert "StopTask" in writes(c.sandbox, c.mark), writes(c.sandbox, c.mark)
    ecs = c.sandbox.clients()["ecs"]
    poll(
        lambda: started_task(ecs, c.world.cluster, run.out, f"{phase} hang")["lastStatus"],
        lambda status: status == "STOPPED",
        30,
        f"the interrupted {phase} task to stop",
    )
    return run


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_pre_deploy_task_stops_the_task_and_leaves_the_service(
    sig: signal.Signals, sandbox: Sandbox, case: Callable[..., Case]
) -> None:
    c = case()
    run = _signal_during_a_one_off_task(c, sig, "pre_deploy")
    assert "interrupted before" in run.text, run.text
    assert "UpdateService" not in writes(sandbox, c.mark)
    c.assert_old_serving()
    c.assert_no_leak(run)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_post_deploy_task_stops_the_task_and_starts_the_rollback(
    sig: signal.Signals, sandbox: Sandbox, case: Callable[..., Case]
) -> None:
    """The new revision serves but has not done what the deploy promised: as when interrupted while watching,
    `on_failure: rollback` starts the rollback (ECS completes it)."""
    c = case()
    run = _signal_during_a_one_off_task(c, sig, "post_deploy")
    assert "interrupted during post_deploy task hang" in run.text and "started rolling back" in run.text, run.text
    made = writes(sandbox, c.mark)
    assert made[:3] == ["RegisterTaskDefinition", "UpdateService", "RunTask"] and "StopTask" in made[3:], made
    assert "interrupted" in run.summary, run.summary
    c.assert_old_serving()
    c.assert_no_leak(run)


def test_a_build_that_prints_its_multi_line_secret_shows_none_of_it(
    sandbox: Sandbox, case: Callable[..., Case]
) -> None:
    """The user's build prints the build secret it was given (a multi-line key): every line of it is masked
    (`::add-mask::`, one per line, for the runner) and shown as *** in ecs-ship's own output."""
    # BuildKit leaves secrets out of its cache keys: a fresh NONCE makes the step run (and print) again.
    c = case(
        build_args={"NONCE": secrets.token_hex(8)},
        dockerfile_tail="ARG NONCE\nRUN --mount=type=secret,id=key cat /run/secrets/key && echo $NONCE\n",
    )
    doc = yaml.safe_load(c.app.spec.read_text())
    doc["images"][0]["secrets"] = [{"id": "key", "env": "BUILD_KEY"}]
    c.app.write_spec(yaml.safe_dump(doc, sort_keys=False))
    run = c.deploy(env={"BUILD_KEY": PRIVATE_KEY})
    assert run.code == 0, run.text
    masked = [line for line in run.out.splitlines() if line.startswith("::add-mask::")]
    assert all(f"::add-mask::{line}" in masked for line in PRIVATE_KEY.splitlines()[1:-1]), masked
    # The build did print it, as *** where each line of the key was.
    assert sum("***" in line for line in run.out.splitlines() if not line.startswith("::")) >= 4, run.out
    c.assert_new_serving("v2")
    c.assert_no_leak(run)


def test_plan_and_render_print_no_environment_value(sandbox: Sandbox, case: Callable[..., Case]) -> None:
    c = case()
    for command in (("plan",), ("render",), ("deploy", "--dry-run")):
        run = c.run(*command)
        assert run.code == 0, run.text
        c.assert_no_leak(run)
    assert writes(sandbox, c.mark) == []
    # Asked for, the values are there: the scan above could have found them.
    shown = c.run("render", "--show-environment")
    assert shown.code == 0 and DB_PASSWORD in shown.out


def test_the_scan_finds_a_planted_secret() -> None:
    """The scan itself can fail: a leak in any source, or one line of the multi-line key, is found."""
    values = {"k": "s3cr3t-value", "key line": "line-two-of-key"}
    assert leaks({"stdout": "x s3cr3t-value y"}, values) == ["k in stdout"]
    assert leaks({"summary": "a\nline-two-of-key\n"}, values) == ["key line in summary"]
    assert leaks({"stdout": "::add-mask::s3cr3t-value"}, values) == []
