"""ECS blue/green, linear and canary service deployments: the lifecycle walk, pure (the simulator applies it).

From the ECS API reference (DeploymentConfiguration, DeploymentLifecycleHook, LinearConfiguration,
CanaryConfiguration, ServiceDeployment.lifecycleStage, ContinueServiceDeployment) and the developer guide: the
new (green) revision scales up beside the old (blue) one in the alternate target group; test traffic, then
production traffic, shifts to it through the listener rules' weighted forward actions (all at once for
BLUE_GREEN, ``stepPercent`` at a time with ``stepBakeTimeInMinutes`` between steps for LINEAR,
``canaryPercent`` then the rest after ``canaryBakeTimeInMinutes`` for CANARY); both run for
``bakeTimeInMinutes``; CLEAN_UP stops blue. A PAUSE hook holds its stage until ContinueServiceDeployment or its
timeout action. Minutes are scaled by the caller (the sandbox's clock runs fast).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .service_deployments import ApiError

SHIFTING = ("BLUE_GREEN", "LINEAR", "CANARY")
STRATEGIES = ("ROLLING", *SHIFTING)
HOOK_STAGES = (
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
)
# DeploymentLifecycleHook.lifecycleStages: "PAUSE hooks cannot be configured at TEST_TRAFFIC_SHIFT or
# PRODUCTION_TRAFFIC_SHIFT stages. These stages are only valid for AWS_LAMBDA hooks."
NO_PAUSE = ("TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")
MAX_MINUTES = 1440
MAX_HOOK_MINUTES = 20160  # DeploymentLifecycleHookDuration
HOOK_TIMEOUT_MINUTES = 1440  # timeoutInMinutes default
HOOK_TIMEOUT_ACTION = "ROLLBACK"  # timeoutConfiguration.action default
LINEAR_DEFAULTS = {"stepPercent": 10.0, "stepBakeTimeInMinutes": 6}
CANARY_DEFAULTS = {"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 10}


def _invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterException", message)


def _tenths(value: Any, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _invalid(f"{name} must be a number.") from None
    if not low <= number <= high or abs(number * 10 - round(number * 10)) > 1e-6:
        raise _invalid(f"{name} must be a multiple of 0.1 from {low} to {high}.")
    return round(number, 1)


def _minutes(value: Any, name: str, high: int = MAX_MINUTES, low: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _invalid(f"{name} must be an integer from {low} to {high}.")
    return value


def validate(conf: dict[str, Any], load_balancers: list[dict[str, Any]]) -> dict[str, Any]:
    """The deploymentConfiguration ECS stores: checked as CreateService/UpdateService check it, defaults filled.

    Raises ApiError (InvalidParameterException) for what ECS refuses; AWS_LAMBDA hooks are refused too, as the
    sandbox cannot invoke Lambda.
    """
    out = dict(conf)
    strategy = out.get("strategy", "ROLLING")
    if strategy not in STRATEGIES:
        raise _invalid(f"Invalid deployment strategy {strategy!r}: use one of {', '.join(STRATEGIES)}.")
    out["strategy"] = strategy
    if strategy != "LINEAR" and "linearConfiguration" in out:
        raise _invalid("linearConfiguration is only valid when the deployment strategy is LINEAR.")
    if strategy != "CANARY" and "canaryConfiguration" in out:
        raise _invalid("canaryConfiguration is only valid when the deployment strategy is CANARY.")
    if strategy == "ROLLING":
        return out
    if "bakeTimeInMinutes" in out:
        out["bakeTimeInMinutes"] = _minutes(out["bakeTimeInMinutes"], "bakeTimeInMinutes")
    elif strategy == "BLUE_GREEN":
        raise _invalid("bakeTimeInMinutes must be provided for the BLUE_GREEN deployment strategy.")
    else:
        # Assumption: the reference states no default for LINEAR and CANARY; no bake after the last step.
        out["bakeTimeInMinutes"] = 0
    if strategy == "LINEAR":
        linear = {**LINEAR_DEFAULTS, **(out.get("linearConfiguration") or {})}
        linear["stepPercent"] = _tenths(linear["stepPercent"], "linearConfiguration.stepPercent", 3.0, 100.0)
        linear["stepBakeTimeInMinutes"] = _minutes(
            linear["stepBakeTimeInMinutes"], "linearConfiguration.stepBakeTimeInMinutes"
        )
        out["linearConfiguration"] = linear
    if strategy == "CANARY":
        canary = {**CANARY_DEFAULTS, **(out.get("canaryConfiguration") or {})}
        canary["canaryPercent"] = _tenths(canary["canaryPercent"], "canaryConfiguration.canaryPercent", 0.1, 100.0)
        canary["canaryBakeTimeInMinutes"] = _minutes(
            canary["canaryBakeTimeInMinutes"], "canaryConfiguration.canaryBakeTimeInMinutes"
        )
        out["canaryConfiguration"] = canary
    out["lifecycleHooks"] = [_hook(h) for h in out.get("lifecycleHooks") or []]
    for lb in load_balancers:
        advanced = lb.get("advancedConfiguration")
        if lb.get("targetGroupArn") and (
            not advanced or not advanced.get("alternateTargetGroupArn") or not advanced.get("productionListenerRule")
        ):
            raise _invalid(
                f"The {strategy} deployment strategy needs loadBalancers[].advancedConfiguration with "
                "alternateTargetGroupArn and productionListenerRule."
            )
        if advanced and advanced["alternateTargetGroupArn"] == lb["targetGroupArn"]:
            raise _invalid("alternateTargetGroupArn must differ from targetGroupArn.")
    return out


def _hook(hook: dict[str, Any]) -> dict[str, Any]:
    target = hook.get("targetType", "AWS_LAMBDA")  # the reference's default
    if target == "AWS_LAMBDA":
        raise _invalid(
            "The sandbox cannot invoke Lambda functions: AWS_LAMBDA lifecycle hooks are not supported; "
            "use targetType PAUSE."
        )
    if target != "PAUSE":
        raise _invalid(f"Invalid lifecycle hook targetType {target!r}: use AWS_LAMBDA or PAUSE.")
    stages = list(hook.get("lifecycleStages") or [])
    if not stages:
        raise _invalid("lifecycleStages must be provided for a deployment lifecycle hook.")
    for stage in stages:
        if stage not in HOOK_STAGES:
            raise _invalid(f"Invalid lifecycle stage {stage!r} for a lifecycle hook.")
        if stage in NO_PAUSE:
            raise _invalid(f"PAUSE hooks cannot be configured at the {stage} stage.")
    timeout = dict(hook.get("timeoutConfiguration") or {})
    minutes = _minutes(
        timeout.get("timeoutInMinutes", HOOK_TIMEOUT_MINUTES), "timeoutInMinutes", MAX_HOOK_MINUTES, low=1
    )
    action = timeout.get("action", HOOK_TIMEOUT_ACTION)
    if action not in ("CONTINUE", "ROLLBACK"):
        raise _invalid(f"Invalid timeout action {action!r}: use CONTINUE or ROLLBACK.")
    return {**hook, "targetType": "PAUSE", "timeoutConfiguration": {"timeoutInMinutes": minutes, "action": action}}


def production_steps(conf: dict[str, Any]) -> list[float]:
    """The percentages of production traffic green holds after each shift step."""
    strategy = conf["strategy"]
    if strategy == "LINEAR":
        step = float(conf["linearConfiguration"]["stepPercent"])
        return [round(min(100.0, step * i), 1) for i in range(1, math.ceil(100 / step - 1e-9) + 1)]
    if strategy == "CANARY":
        canary = float(conf["canaryConfiguration"]["canaryPercent"])
        return [canary, 100.0] if canary < 100 else [100.0]
    return [100.0]


def weights(green_percent: float) -> tuple[int, int]:
    """(blue, green) weights of the production rule's forward action for `green_percent` of the traffic.

    ELBv2 takes integer weights 0-999 and splits by their ratio; per-mille weights keep canaryPercent's tenths.
    Assumption: ECS's exact numbers are not documented; the ratio is what the ALB honours.
    """
    green = round(green_percent * 10)
    if green <= 0:
        return 1, 0
    if green >= 1000:
        return 0, 1
    return 1000 - green, green


@dataclass(frozen=True)
class Step:
    stage: str  # the lifecycleStage DescribeServiceDeployments shows
    hook_stage: str | None = None  # PAUSE hooks listing this stage hold it when it begins
    green_percent: float | None = None  # production traffic green gets when the step begins
    test_to_green: bool = False
    hold_minutes: float = 0
    until_green_ready: bool = False
    clean_up: bool = False


def plan(conf: dict[str, Any], *, reconcile: bool, blue: bool = True) -> list[Step]:
    """The steps of one deployment in order.

    RECONCILE_SERVICE happens only when more than one revision was active when the deployment began.
    PRE_PRODUCTION_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT repeat for every step of a linear or canary
    shift; the step bake follows each step but the last. Assumption: with no blue task (a new service) there
    is no traffic to move in steps, so the shift is one step.
    """
    out: list[Step] = []
    if reconcile:
        out.append(Step("RECONCILE_SERVICE", "RECONCILE_SERVICE"))
    out += [
        Step("PRE_SCALE_UP", "PRE_SCALE_UP"),
        Step("SCALE_UP", until_green_ready=True),
        Step("POST_SCALE_UP", "POST_SCALE_UP"),
        Step("TEST_TRAFFIC_SHIFT", "TEST_TRAFFIC_SHIFT", test_to_green=True),
        Step("POST_TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT", test_to_green=True),
    ]
    steps = production_steps(conf) if blue else [100.0]
    if conf["strategy"] == "LINEAR":
        between = float(conf["linearConfiguration"]["stepBakeTimeInMinutes"])
    elif conf["strategy"] == "CANARY":
        between = float(conf["canaryConfiguration"]["canaryBakeTimeInMinutes"])
    else:
        between = 0.0
    for i, percent in enumerate(steps):
        last = i == len(steps) - 1
        out.append(Step("PRE_PRODUCTION_TRAFFIC_SHIFT", "PRE_PRODUCTION_TRAFFIC_SHIFT", test_to_green=True))
        out.append(
            Step(
                "PRODUCTION_TRAFFIC_SHIFT",
                "PRODUCTION_TRAFFIC_SHIFT",
                green_percent=percent,
                test_to_green=True,
                hold_minutes=0 if last else between,
            )
        )
    out += [
        Step("POST_PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", test_to_green=True),
        Step("BAKE_TIME", test_to_green=True, hold_minutes=float(conf.get("bakeTimeInMinutes") or 0)),
        Step("CLEAN_UP", test_to_green=True, clean_up=True),
    ]
    return out


@dataclass
class HookRun:
    """One PAUSE hook holding one stage."""

    hook_id: str
    timeout_action: str
    expires_mono: float
    expires_at: datetime
    status: str = "AWAITING_ACTION"

    def api(self) -> dict[str, Any]:
        return {
            "hookId": self.hook_id,
            "targetType": "PAUSE",
            "status": self.status,
            "expiresAt": self.expires_at,
            "timeoutAction": self.timeout_action,
        }


@dataclass
class Shift:
    """Where one blue/green, linear or canary deployment is: the simulator ticks it and applies its traffic.

    ``minute`` is how many seconds a minute of bake or hook timeout lasts.
    """

    steps: list[Step]
    hooks: list[dict[str, Any]]
    minute: float
    index: int = 0
    entered: float | None = None
    green_percent: float = 0.0
    test_to_green: bool = False
    scaling: bool = False  # SCALE_UP began: green may launch
    cleaning: bool = False  # CLEAN_UP began: blue may stop
    running: list[HookRun] = field(default_factory=list)
    rollback_reason: str | None = None  # a hook wants a rollback; the simulator performs it
    halted_at: str | None = None  # the stage a rollback ended the walk in
    # Set by the simulator when the deployment begins: the target groups traffic moves from and to.
    blue_group: str | None = None
    green_group: str | None = None

    @property
    def done(self) -> bool:
        return self.index >= len(self.steps)

    @property
    def stage(self) -> str:
        return self.halted_at or self.steps[min(self.index, len(self.steps) - 1)].stage

    def tick(self, now: float, *, green_ready: bool, blue_gone: bool) -> None:
        """Go through as many steps as the clock, the tasks and the hooks allow."""
        while not self.done and self.rollback_reason is None:
            step = self.steps[self.index]
            if self.entered is None:
                self._enter(step, now)
            for run in self.running:
                if run.status == "AWAITING_ACTION" and now >= run.expires_mono:
                    run.status = "TIMED_OUT"
                    if run.timeout_action == "ROLLBACK":
                        self.rollback_reason = f"Lifecycle hook {run.hook_id} timed out at {step.stage}."
                        return
            if any(run.status == "AWAITING_ACTION" for run in self.running):
                return
            assert self.entered is not None
            if step.until_green_ready and not green_ready:
                return
            if step.clean_up and not blue_gone:
                return
            if now < self.entered + step.hold_minutes * self.minute:
                return
            self.index += 1
            self.entered = None
            self.running = []

    def _enter(self, step: Step, now: float) -> None:
        self.entered = now
        if step.green_percent is not None:
            self.green_percent = step.green_percent
        self.test_to_green = self.test_to_green or step.test_to_green
        self.scaling = self.scaling or step.stage == "SCALE_UP"
        self.cleaning = self.cleaning or step.clean_up
        for hook in self.hooks:
            if step.hook_stage in hook["lifecycleStages"]:
                timeout = hook["timeoutConfiguration"]
                seconds = timeout["timeoutInMinutes"] * self.minute
                self.running.append(
                    HookRun(
                        hook_id=secrets.token_hex(16),
                        timeout_action=timeout["action"],
                        expires_mono=now + seconds,
                        expires_at=datetime.now(timezone.utc) + timedelta(seconds=seconds),
                    )
                )

    def resolve(self, hook_id: str, action: str) -> None:
        """ContinueServiceDeployment on a paused hook: CONTINUE lets the stage go on; ROLLBACK asks for one."""
        if action not in ("CONTINUE", "ROLLBACK"):
            raise _invalid(f"Invalid action {action!r}: use CONTINUE or ROLLBACK.")
        run = next((r for r in self.running if r.hook_id == hook_id), None)
        if run is None:
            raise _invalid(f"The lifecycle hook {hook_id} is not a hook of the current lifecycle stage.")
        if run.status != "AWAITING_ACTION":
            raise ApiError("ClientException", f"The lifecycle hook {hook_id} is {run.status}, not AWAITING_ACTION.")
        # Assumption: a hook answered with ROLLBACK ends FAILED (the reference names no status for it).
        run.status = "SUCCEEDED" if action == "CONTINUE" else "FAILED"
        if action == "ROLLBACK":
            self.rollback_reason = f"Lifecycle hook {hook_id} asked for a rollback at {self.stage}."

    def roll_back(self) -> None:
        """Traffic goes back to blue, all of it, test traffic too; the walk ends."""
        self.halted_at = self.stage
        self.green_percent = 0.0
        self.test_to_green = False
        self.index = len(self.steps)
        self.running = [r for r in self.running if r.status != "AWAITING_ACTION"]

    def details(self) -> list[dict[str, Any]]:
        # Assumption: lifecycleHookDetails lists the hooks of the current stage.
        return [r.api() for r in self.running]


def forward_action(existing: dict[str, Any], blue: str, green: str, green_percent: float) -> dict[str, Any]:
    """The rule's forward action with both target groups weighted, as ECS writes it through ModifyRule."""
    blue_w, green_w = weights(green_percent)
    config = dict(existing.get("ForwardConfig") or {})
    out = {k: v for k, v in existing.items() if k not in ("TargetGroupArn", "ForwardConfig")}
    out["ForwardConfig"] = {
        **config,
        "TargetGroups": [{"TargetGroupArn": blue, "Weight": blue_w}, {"TargetGroupArn": green, "Weight": green_w}],
    }
    return out


def production_group(actions: list[dict[str, Any]], pair: tuple[str, str]) -> str:
    """Which of the pair (targetGroupArn, alternateTargetGroupArn) takes production traffic: the one the rule's
    forward action weighs most; the service's targetGroupArn when the rule names neither."""
    best, best_weight = pair[0], -1
    for action in actions:
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        listed = [(g["TargetGroupArn"], int(g.get("Weight", 1))) for g in groups]
        if not listed and action.get("TargetGroupArn"):
            listed = [(action["TargetGroupArn"], 1)]
        for arn, weight in listed:
            if arn in pair and weight > best_weight:
                best, best_weight = arn, weight
    return best
