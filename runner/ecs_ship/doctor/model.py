"""What each setting of a service costs every deploy, and what it would cost as suggested (pure).

The formulae are the ones AWS documents for a rolling update behind an Application Load Balancer:

* A new target counts as healthy after ``HealthyThresholdCount`` consecutive passing checks, one every
  ``HealthCheckIntervalSeconds``; the first comes within an interval of its registration, so it takes on average
  (threshold - 1/2) x interval, at most threshold x interval (AWS's defaults: 5 x 30 s, about 135 s).
* An old target drains for ``deregistration_delay.timeout_seconds`` (default 300 s) before ECS stops its task:
  the deploy is not complete (``stable``) before the last one has drained.
* ``maximumPercent`` bounds the tasks running during the deploy (rounded down) and ``minimumHealthyPercent`` the
  tasks that must stay in service (rounded up): each wave replaces (max - desired) + (desired - min) tasks, and
  a deploy takes ceil(desired / wave) waves. With no room above the desired count, every wave first drains and
  stops old tasks before new ones can start. With neither, ECS cannot replace any task: the deploy never ends.
* The health-check grace period holds off ECS's reaction to failing checks after a task starts: a broken deploy
  is noticed after max(grace, UnhealthyThresholdCount x interval). Shorter than the app's start, it breaks
  deploys: ECS stops each new task for failing its health checks before it can answer them. No API says when
  an app became ready; tasks that ECS stopped so while the same image serves now are the evidence.
* When an old task has drained, ECS sends its containers SIGTERM and kills any still running ``stopTimeout``
  seconds later (30 s unless the container definition says otherwise). An app that exits on SIGTERM costs
  nothing here; one that ignores it (a process running as PID 1 with no handler does) costs the whole timeout
  on every old task, before the deploy is complete. The evidence: tasks ECS's scheduler stopped whose
  containers exited 137 (SIGKILL) with no out-of-memory reason.

A task's own start (placement, image pull, the containers starting) is measured from the service's tasks (their
createdAt to startedAt); with none to measure, an assumed figure is used and said to be one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .. import timing
from ..matcher import accepts_errors

OK, SLOW, BREAKS = "ok", "slow", "breaks"

# AWS's floors: an interval of at least 5 s, a healthy threshold of at least 2. Ten seconds x 2 is a fast,
# still-robust choice: a target serving its path is healthy within about 15 s.
FAST_INTERVAL = 10
FAST_THRESHOLD = 2
# Long enough for the requests of most web apps to finish on the old task; long-lived connections need more.
FAST_DEREGISTRATION = 30
ASSUMED_START = {"FARGATE": 30.0, "EC2": 10.0}  # when no task of the service can be measured
DEFAULT_STOP_TIMEOUT = 30  # ECS's, on Fargate and in the EC2 agent (ECS_CONTAINER_STOP_TIMEOUT)
# After the drain no request is in flight on the old task: a few seconds is enough for an app to close cleanly.
FAST_STOP_TIMEOUT = 5


@dataclass(frozen=True)
class TargetGroupSettings:
    arn: str
    name: str
    interval: int  # HealthCheckIntervalSeconds
    timeout: int  # HealthCheckTimeoutSeconds
    healthy_threshold: int  # HealthyThresholdCount
    unhealthy_threshold: int  # UnhealthyThresholdCount
    matcher: str  # Matcher.HttpCode ("200", "200-299", "200,302"); "" for a TCP check
    path: str | None
    deregistration_delay: int  # deregistration_delay.timeout_seconds


@dataclass(frozen=True)
class Settings:
    cluster: str
    service: str
    desired: int
    minimum_healthy_percent: int
    maximum_percent: int
    grace_period: int
    circuit_breaker: bool
    strategy: str  # ROLLING, or BLUE_GREEN / LINEAR / CANARY
    bake_minutes: int
    launch_type: str  # FARGATE or EC2
    target_groups: tuple[TargetGroupSettings, ...]
    # (container, stopTimeout) for each container of the service's task definition; None: ECS's default
    stop_timeouts: tuple[tuple[str, int | None], ...] = ()

    @property
    def stop_timeout(self) -> int:
        """How long ECS may wait for the task's containers to exit once it asked them to (the longest)."""
        return max(
            (DEFAULT_STOP_TIMEOUT if seconds is None else seconds for _, seconds in self.stop_timeouts),
            default=DEFAULT_STOP_TIMEOUT,
        )


@dataclass(frozen=True)
class History:
    """What the service's recent deploys measured (seconds); None where nothing could be measured."""

    start: float | None = None  # median of the tasks' createdAt -> startedAt
    start_samples: int = 0
    completed: tuple[float, ...] = ()  # recent successful deploys, start to finish (to `stable`), newest first
    completed_from: str | None = None  # what told them: "its service deployments" or "its events"
    # How long tasks lived that ECS stopped for failing ELB health checks while their image serves now.
    stopped_before_ready: tuple[float, ...] = ()
    # Tasks ECS's scheduler stopped (a deploy replacing them, a scale-in) whose containers' exit codes are known,
    # and the containers of those that did not exit on SIGTERM and were killed when stopTimeout ran out.
    stops: int = 0
    killed: tuple[str, ...] = ()


@dataclass(frozen=True)
class PathCheck:
    """What the image answered, run locally, to a target group's health check (``doctor --run-local``)."""

    target_group: str  # its name
    path: str  # HealthCheckPath
    codes: str  # Matcher.HttpCode
    served: bool
    answer: str  # "HTTP 404", "ConnectionError", ...
    answered: bool  # an HTTP status came back: a refusal is the app's, not a start too slow to check


@dataclass(frozen=True)
class Change:
    """The exact change: as the API, the AWS CLI and Terraform name it."""

    api: str
    cli: str
    terraform: str


@dataclass(frozen=True)
class Row:
    """One setting: its value, what it costs each deploy, and the suggestion (None: it is fine as it is)."""

    setting: str
    value: str
    cost: str
    level: str  # ok | slow | breaks
    suggested: str | None = None
    saves: float | None = None  # seconds a deploy saves with the suggestion (to `stable`)
    why: str | None = None  # for `breaks`: what goes wrong
    change: Change | None = None


@dataclass(frozen=True)
class Estimate:
    serving: float | None  # None: the deploy can never finish
    stable: float | None
    failure_noticed: float | None  # a broken health check, from the first task's start


def health_seconds(tg: TargetGroupSettings) -> float:
    """Average time from registration to healthy: the first check within an interval, then threshold - 1 more."""
    return timing.health_seconds(tg.interval, tg.healthy_threshold)


def waves(desired: int, minimum_healthy_percent: int, maximum_percent: int) -> tuple[int, bool] | None:
    """How many waves a rolling update takes, and whether each must stop old tasks before starting new ones;
    None when ECS can replace no task at all."""
    if desired <= 0:
        return 0, False
    room = max(0, math.floor(desired * maximum_percent / 100) - desired)
    stoppable = max(0, desired - math.ceil(desired * minimum_healthy_percent / 100))
    per_wave = room + stoppable
    if per_wave <= 0:
        return None
    return math.ceil(desired / per_wave), room == 0


def stop_seconds(s: Settings, h: History) -> int:
    """What stopping an old task costs after its drain: the timeout where its app was seen to ignore SIGTERM."""
    return s.stop_timeout if h.killed else 0


def estimate(s: Settings, h: History) -> Estimate:
    start = h.start if h.start is not None else ASSUMED_START.get(s.launch_type, ASSUMED_START["FARGATE"])
    health = max((health_seconds(tg) for tg in s.target_groups), default=0.0)
    # An old task is gone (and its room free) once it has drained and its containers have exited.
    drain = max((tg.deregistration_delay for tg in s.target_groups), default=0) + stop_seconds(s, h)
    noticed = (
        start
        + max(
            float(s.grace_period),
            max((tg.unhealthy_threshold * tg.interval for tg in s.target_groups), default=0),
        )
        if s.target_groups
        else None
    )
    if s.strategy != "ROLLING":
        # The green tasks start beside blue in full; production traffic moves, then blue drains after the bake.
        serving = start + health
        return Estimate(serving, serving + s.bake_minutes * 60 + drain, noticed)
    counted = waves(s.desired, s.minimum_healthy_percent, s.maximum_percent)
    if counted is None:
        return Estimate(None, None, noticed)
    n, stop_first = counted
    wave = start + health + (drain if stop_first else 0)
    serving = n * wave
    return Estimate(serving, serving + drain, noticed)


def fast_checks(tg: TargetGroupSettings) -> TargetGroupSettings:
    """The group with the suggested health checks (never slower than it is; the timeout under the interval)."""
    interval = min(tg.interval, FAST_INTERVAL)
    return replace(
        tg,
        interval=interval,
        healthy_threshold=min(tg.healthy_threshold, FAST_THRESHOLD),
        timeout=min(tg.timeout, interval - 1),
    )


def suggested(s: Settings) -> Settings:
    """The settings with every suggestion applied."""
    groups = tuple(
        replace(
            fast_checks(tg),
            deregistration_delay=min(tg.deregistration_delay, FAST_DEREGISTRATION),
            matcher="200-399" if accepts_errors(tg.matcher) else tg.matcher,
        )
        for tg in s.target_groups
    )
    counted = waves(s.desired, s.minimum_healthy_percent, s.maximum_percent)
    slow = s.strategy == "ROLLING" and (counted is None or counted[0] > 1 or counted[1])
    return replace(
        s,
        target_groups=groups,
        maximum_percent=200 if slow else s.maximum_percent,
        minimum_healthy_percent=100 if slow else s.minimum_healthy_percent,
        circuit_breaker=True,
        stop_timeouts=_fast_stops(s),
    )


def _fast_stops(s: Settings) -> tuple[tuple[str, int | None], ...]:
    timeouts = s.stop_timeouts or (("", None),)
    return tuple(
        (name, min(DEFAULT_STOP_TIMEOUT if seconds is None else seconds, FAST_STOP_TIMEOUT))
        for name, seconds in timeouts
    )


def _saves(now: Estimate, after: Estimate) -> float | None:
    if now.stable is None or after.stable is None:
        return None
    return max(0.0, now.stable - after.stable)


def rows(s: Settings, h: History, checks: Sequence[PathCheck] = ()) -> list[Row]:
    """One row per setting that matters to a deploy's time or outcome, each with its own suggestion alone
    (``saves``: what that one change saves, the others left as they are); ``checks``, what the image answered
    locally to each group's health check, where it was run."""
    now = estimate(s, h)
    out: list[Row] = []
    for i, tg in enumerate(s.target_groups):
        out += _target_group_rows(s, h, now, i, tg)
        out += [_path_row(c) for c in checks if c.target_group == tg.name]
    out += _rollout_rows(s, h, now)
    out.append(_grace_row(s, h))
    out.append(_stop_row(s, h, now))
    out.append(_breaker_row(s))
    return out


def _with_group(s: Settings, i: int, tg: TargetGroupSettings) -> Settings:
    groups = list(s.target_groups)
    groups[i] = tg
    return replace(s, target_groups=tuple(groups))


def _target_group_rows(s: Settings, h: History, now: Estimate, i: int, tg: TargetGroupSettings) -> list[Row]:
    out: list[Row] = []
    fast = fast_checks(tg)
    health = f"{tg.interval} s x {tg.healthy_threshold}"
    if fast != tg:
        after = estimate(_with_group(s, i, fast), h)
        timeout = f" --health-check-timeout-seconds {fast.timeout}" if fast.timeout != tg.timeout else ""
        timeout_api = f", HealthCheckTimeoutSeconds={fast.timeout}" if fast.timeout != tg.timeout else ""
        timeout_tf = f", timeout = {fast.timeout}" if fast.timeout != tg.timeout else ""
        out.append(
            Row(
                f"health check of {tg.name} (interval x healthy threshold)",
                health,
                f"~{health_seconds(tg):.0f} s a wave before a new task is healthy",
                SLOW,
                f"{fast.interval} s x {fast.healthy_threshold} (~{health_seconds(fast):.0f} s)",
                _saves(now, after),
                change=Change(
                    f"ModifyTargetGroup HealthCheckIntervalSeconds={fast.interval}, "
                    f"HealthyThresholdCount={fast.healthy_threshold}{timeout_api}",
                    f"aws elbv2 modify-target-group --target-group-arn {tg.arn} --health-check-interval-seconds "
                    f"{fast.interval} --healthy-threshold-count {fast.healthy_threshold}{timeout}",
                    f"aws_lb_target_group health_check {{ interval = {fast.interval}, healthy_threshold = "
                    f"{fast.healthy_threshold}{timeout_tf} }}",
                ),
            )
        )
    else:
        out.append(
            Row(
                f"health check of {tg.name} (interval x healthy threshold)",
                health,
                f"~{health_seconds(tg):.0f} s a wave",
                OK,
            )
        )
    if tg.deregistration_delay > FAST_DEREGISTRATION:
        after = estimate(_with_group(s, i, replace(tg, deregistration_delay=FAST_DEREGISTRATION)), h)
        out.append(
            Row(
                f"deregistration delay of {tg.name}",
                f"{tg.deregistration_delay} s",
                f"{tg.deregistration_delay} s of draining before the old tasks stop (to stable)",
                SLOW,
                f"{FAST_DEREGISTRATION} s, if requests finish within it",
                _saves(now, after),
                change=Change(
                    f"ModifyTargetGroupAttributes deregistration_delay.timeout_seconds={FAST_DEREGISTRATION}",
                    f"aws elbv2 modify-target-group-attributes --target-group-arn {tg.arn} --attributes "
                    f"Key=deregistration_delay.timeout_seconds,Value={FAST_DEREGISTRATION}",
                    f"aws_lb_target_group deregistration_delay = {FAST_DEREGISTRATION}",
                ),
            )
        )
    else:
        out.append(Row(f"deregistration delay of {tg.name}", f"{tg.deregistration_delay} s", "drains quickly", OK))
    if tg.matcher and accepts_errors(tg.matcher):
        out.append(
            Row(
                f"success codes of {tg.name}",
                tg.matcher,
                "an app answering errors counts as healthy",
                BREAKS,
                "200-399",
                why=f"the health check passes on {tg.matcher}: a broken release is marked healthy and deployed",
                change=Change(
                    "ModifyTargetGroup Matcher.HttpCode=200-399",
                    f"aws elbv2 modify-target-group --target-group-arn {tg.arn} --matcher HttpCode=200-399",
                    'aws_lb_target_group health_check { matcher = "200-399" }',
                ),
            )
        )
    return out


def _path_row(c: PathCheck) -> Row:
    setting = f"health check path of {c.target_group}"
    wanted = f"HTTP {c.codes or '200'}"
    if c.served:
        return Row(setting, c.path, f"the image answers {c.answer} when run locally", OK)
    if not c.answered:
        return Row(setting, c.path, f"not checked: the image run locally gave no HTTP answer ({c.answer})", OK)
    return Row(
        setting,
        c.path,
        f"the image answers {c.answer} when run locally, not {wanted}",
        BREAKS,
        f"a path the app answers with {wanted}",
        why=f"GET {c.path} fails the group's check ({c.answer}, not {wanted}): every new task is marked unhealthy "
        "and replaced, and no deploy of this image succeeds",
    )


def _deployment_change(s: Settings, text: str, terraform: str) -> Change:
    return Change(
        f"UpdateService deploymentConfiguration.{text}",
        f"aws ecs update-service --cluster {s.cluster} --service {s.service} --deployment-configuration '{text}'",
        terraform,
    )


def _rollout_rows(s: Settings, h: History, now: Estimate) -> list[Row]:
    if s.strategy != "ROLLING":
        return [
            Row(
                "strategy",
                f"{s.strategy}, bake {s.bake_minutes} min",
                f"{s.bake_minutes * 60} s of bake before blue drains (to stable)",
                OK,
            )
        ]
    value = f"{s.minimum_healthy_percent} % / {s.maximum_percent} % of {s.desired}"
    counted = waves(s.desired, s.minimum_healthy_percent, s.maximum_percent)
    change = _deployment_change(
        s,
        "maximumPercent=200,minimumHealthyPercent=100",
        "aws_ecs_service deployment_maximum_percent = 200, deployment_minimum_healthy_percent = 100",
    )
    setting = "minimumHealthyPercent / maximumPercent"
    if counted is None:
        return [
            Row(
                setting,
                value,
                "no task can be replaced",
                BREAKS,
                "100 % / 200 %",
                why="ECS may neither start a task above the desired count nor stop one below it: no deploy ends",
                change=change,
            )
        ]
    n, stop_first = counted
    if n <= 1 and not stop_first:
        return [Row(setting, value, "one wave: every task replaced at once", OK)]
    after = estimate(replace(s, maximum_percent=200, minimum_healthy_percent=100), h)
    drains = ", each draining old tasks first" if stop_first else ""
    capacity = " (EC2: room for twice the tasks)" if s.launch_type == "EC2" else ""
    return [
        Row(setting, value, f"{n} waves{drains}", SLOW, f"100 % / 200 %{capacity}", _saves(now, after), change=change)
    ]


def _grace_row(s: Settings, h: History) -> Row:
    lived = max(h.stopped_before_ready, default=None)
    if lived is not None and s.grace_period <= lived:
        # Twice as long as the stopped tasks lived, in whole tens, a minute at least: they were still starting.
        grace = max(60, math.ceil(2 * lived / 10) * 10)
        return Row(
            "health check grace period",
            f"{s.grace_period} s",
            f"{len(h.stopped_before_ready)} task(s) of the image serving now stopped for failing ELB health checks "
            f"{lived:.0f} s after they started",
            BREAKS,
            f"{grace} s (twice as long as they lived)",
            why="the app takes longer to answer its health check than the grace period allows: ECS stops new "
            "tasks before they can serve, and a deploy fails or never ends",
            change=Change(
                f"UpdateService healthCheckGracePeriodSeconds={grace}",
                f"aws ecs update-service --cluster {s.cluster} --service {s.service} "
                f"--health-check-grace-period-seconds {grace}",
                f"aws_ecs_service health_check_grace_period_seconds = {grace}",
            ),
        )
    interval = max((tg.unhealthy_threshold * tg.interval for tg in s.target_groups), default=0)
    if s.grace_period > interval and s.target_groups:
        return Row(
            "health check grace period",
            f"{s.grace_period} s",
            f"a broken release is noticed after {s.grace_period} s, not {interval} s",
            OK,
        )
    return Row("health check grace period", f"{s.grace_period} s", "none while the deploy is healthy", OK)


def _stop_row(s: Settings, h: History, now: Estimate) -> Row:
    setting = "stop timeout (stopTimeout)"
    own = any(seconds is not None for _, seconds in s.stop_timeouts)
    value = f"{s.stop_timeout} s" + ("" if own else " (ECS's default)")
    if not h.stops:
        return Row(setting, value, "not measured: no task stopped by ECS to learn from", OK)
    if not h.killed:
        return Row(setting, value, f"none: the {h.stops} task(s) ECS stopped exited on SIGTERM", OK)
    killed = ", ".join(sorted(set(h.killed)))
    names = ", ".join(name for name, _ in s.stop_timeouts) or "each container"
    fast = FAST_STOP_TIMEOUT
    return Row(
        setting,
        value,
        f"{s.stop_timeout} s on every old task after its drain: {killed} ignored SIGTERM and was killed "
        f"(exit 137) in {len(h.killed)} of {h.stops} task(s) ECS stopped",
        SLOW,
        f"an app that exits on SIGTERM (linuxParameters.initProcessEnabled gives PID 1 an init that passes it on), "
        f"else {fast} s",
        _saves(now, estimate(replace(s, stop_timeouts=_fast_stops(s)), h)),
        change=Change(
            f"RegisterTaskDefinition containerDefinitions[].stopTimeout={fast} ({names}), then deploy the revision",
            f'aws ecs register-task-definition --cli-input-json file://taskdef.json with "stopTimeout": {fast} in '
            f"{names} (ecs-ship's task_definition file takes the same key)",
            f"aws_ecs_task_definition container_definitions = jsonencode([{{ ..., stopTimeout = {fast} }}])",
        ),
    )


def _breaker_row(s: Settings) -> Row:
    if s.circuit_breaker or s.strategy != "ROLLING":
        return Row("deployment circuit breaker", "on" if s.circuit_breaker else "off", "none", OK)
    return Row(
        "deployment circuit breaker",
        "off",
        "tasks that never start are retried for ever",
        BREAKS,
        "on, with rollback",
        why="without it, ECS retries a release whose tasks never start until someone stops it",
        change=_deployment_change(
            s,
            "deploymentCircuitBreaker={enable=true,rollback=true}",
            "aws_ecs_service deployment_circuit_breaker { enable = true, rollback = true }",
        ),
    )


def summary(s: Settings, h: History) -> tuple[Estimate, Estimate]:
    """The expected times now, and with every suggestion applied."""
    return estimate(s, h), estimate(suggested(s), h)


def seconds_text(value: float | None) -> str:
    return "never" if value is None else f"~{value:.0f} s"
