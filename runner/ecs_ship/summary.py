"""What a run leaves behind for people and later steps: the closing lines of each service, the job summary
and the step outputs. Written even when a run is interrupted, so a cancelled job still says what state each
service was left in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

from . import ratelimit
from .context import Context, rev
from .errors import DeployError
from .gha import code_block
from .spec import ServiceSpec

OUTPUTS = (
    "image",
    "image-digest",
    "task-definition-arn",
    "previous-task-definition-arn",
    "deployment-id",
    "service-url",
    "outcome",
)


# The watch's milestones (seconds since it began), in the order a rollout reaches them, and the phase each ends.
WATCH_PHASES = (
    ("first task placed", "placement"),
    ("first task running", "start"),
    ("first health check", "first health check"),
    ("serving", "healthy"),
    ("stable", "drain"),
)


def _phase_of(stage: str) -> str:
    for prefix, phase in (
        ("preparing", "preparation"),
        ("running the pre-flight checks", "pre-flight checks"),
        ("building ", "build and push"),
        ("registering and updating", "register and update"),
        ("rolling back", "rollback"),
    ):
        if stage.startswith(prefix):
            return phase
    return stage.removeprefix("running ")  # "pre_deploy task migrate", "post_deploy task smoke"


def phases(stages: list[tuple[str, float]], milestones: dict[str, float], now: float) -> list[tuple[str, float]]:
    """Where a service's minutes went: each stage it passed through (consecutive ones of a kind together), the
    watch split at its milestones (placement, start, first health check, healthy, drain)."""
    out: list[tuple[str, float]] = []

    def add(phase: str, seconds: float) -> None:
        if out and out[-1][0] == phase:
            out[-1] = (phase, out[-1][1] + seconds)
        else:
            out.append((phase, max(0.0, seconds)))

    for i, (stage, began) in enumerate(stages):
        ended = stages[i + 1][1] if i + 1 < len(stages) else now
        if stage != "watching the deployment":
            add(_phase_of(stage), ended - began)
            continue
        at = 0.0
        for milestone, phase in WATCH_PHASES:
            if milestone in milestones and milestones[milestone] >= at:
                add(phase, milestones[milestone] - at)
                at = milestones[milestone]
        if ended - began - at >= 0.05:
            add("after serving" if "serving" in milestones else "until the verdict", ended - began - at)
    return out


def headline(svc: ServiceSpec, result: dict[str, Any]) -> str:
    """The sentence a reviewer acts on: what happened, what serves now, what to do next."""
    outcome = str(result.get("outcome") or "")
    new, old = rev(result.get("task-definition-arn")), rev(result.get("previous-task-definition-arn"))
    why = (result.get("diagnosis") or [""])[0]
    because = f" ({why})" if why else ""
    url = f" at {result['service-url']}" if result.get("service-url") else ""
    if outcome == "deployed":
        return f"Deployed `{new}` to {svc.service}: it serves{url}. Nothing to do."
    if outcome == "paused":
        return (
            f"`{new}` is held at a lifecycle hook of {svc.service}: `ecs-ship continue` goes on with it, "
            "`ecs-ship continue --rollback` rolls it back."
        )
    if outcome == "failed, rolled back":
        back = rev(result.get("serving-task-definition-arn") or result.get("previous-task-definition-arn"))
        return (
            f"`{new}` failed{because}; {svc.service} was rolled back and `{back}` serves again. "
            "Fix the cause below and deploy again."
        )
    if outcome == "failed, rollback unhealthy":
        return (
            f"`{new}` failed{because}, and the rollback of {svc.service} did not become healthy either: "
            "nothing may be serving. Check `ecs-ship status` now."
        )
    if outcome.startswith("failed, left as is"):
        return (
            f"`{new}` failed{because}; {svc.service} was left on it as asked, so its old tasks of `{old}` serve "
            f"only while ECS keeps them. `ecs-ship rollback` returns it to `{old}`."
        )
    if outcome.startswith("failed before the switch"):
        return f"Nothing changed: {svc.service} still runs `{old}`{because}. Fix the cause below and deploy again."
    return f"{svc.service}: {outcome}." if outcome else f"{svc.service}: no outcome recorded."


def summarise(ctx: Context, svc: ServiceSpec, result: dict[str, Any]) -> None:
    """The closing lines (and, in GitHub Actions, the job summary) of one service's deploy."""
    say = ctx.sayer(svc.name)
    result["summarised"] = True
    milestones = result.get("milestones") or {}
    spent = phases(result.get("stages") or [], milestones, ctx.clock())
    result["phases"] = dict(spent)
    say(f"summary: {result.get('outcome')}")
    for container, ref in (result.get("images") or {}).items():
        say(f"  image {container}: {ref}")
    say(f"  revision: {rev(result.get('previous-task-definition-arn'))} -> {rev(result.get('task-definition-arn'))}")
    say(f"  deployment: {result.get('deployment-id')}")
    if result.get("serving-task-definition-arn"):
        say(f"  serving now: {rev(result['serving-task-definition-arn'])}")
    if milestones:
        say("  milestones: " + ", ".join(f"{k} {v:.1f}s" for k, v in milestones.items()))
    if spent:
        say("  phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in spent))
    if result.get("service-url"):
        say(f"  url: {result['service-url']}")
    rows = [
        f"### ecs-ship: {svc.service} ({svc.cluster}) — {result.get('outcome')}",
        "",
        headline(svc, result),
        "",
        "| | |",
        "|---|---|",
        *(f"| image `{c}` | `{r}` |" for c, r in (result.get("images") or {}).items()),
        f"| revision | `{rev(result.get('previous-task-definition-arn'))}` → "
        f"`{rev(result.get('task-definition-arn'))}` |",
        f"| deployment | `{result.get('deployment-id')}` |",
        *(
            [f"| serving now | `{rev(result['serving-task-definition-arn'])}` |"]
            if result.get("serving-task-definition-arn")
            else []
        ),
        *(f"| {k} | {v:.1f} s |" for k, v in milestones.items()),
    ]
    if spent:
        rows += ["", "| phase | time |", "|---|---|", *(f"| {k} | {v:.1f} s |" for k, v in spent)]
    if result.get("service-url"):
        rows.append(f"| URL | {result['service-url']} |")
    if result.get("diagnosis"):
        # Log lines come from the application: a fence longer than any backtick run in them keeps them text.
        rows += ["", "**Why it failed**", "", code_block(result["diagnosis"])]
    ctx.out.summary("\n".join(rows) + "\n")


def end(ctx: Context, svc: ServiceSpec, outcome: str, error: DeployError) -> NoReturn:
    """Record how the service's run ended, write its closing lines and job summary, then raise `error`."""
    ctx.result(svc.name)["outcome"] = outcome
    summarise(ctx, svc, ctx.result(svc.name))
    raise error


def summarise_interrupted(ctx: Context, services: list[ServiceSpec]) -> None:
    """Services that an interruption stopped before they could summarise themselves: say where they were."""
    for svc in services:
        result = ctx.results.get(svc.name)
        if not result or result.get("summarised"):
            continue
        stage = result.get("stage", "starting")
        if result.get("deployment-id"):
            result.setdefault(
                "outcome", f"interrupted while {stage}: deployment {result['deployment-id']} continues in ECS"
            )
        else:
            result.setdefault("outcome", f"interrupted while {stage}: the service was not changed")
        summarise(ctx, svc, result)


def api_usage(ctx: Context, before: dict[str, tuple[int, int, float]]) -> None:
    """What the run spent of the account's API rate limits (shared by every pipeline of the account), so a
    team sees the cost of its deploys and when its own budget, not AWS, slowed it down."""
    parts = []
    throttled = waited = 0.0
    for api, (sent, t, w) in sorted(ratelimit.SHARED.usage().items()):
        b_sent, b_t, b_w = before.get(api, (0, 0, 0.0))
        if sent - b_sent:
            parts.append(f"{api} {sent - b_sent}")
        throttled += t - b_t
        waited += w - b_w
    if parts:
        line = f"AWS API requests: {', '.join(parts)}; throttled {int(throttled)}"
        ctx.out.line(line + (f"; {waited:.1f}s spent within the run's rate budget" if waited >= 0.1 else ""))


def write_outputs(ctx: Context) -> None:
    """Step outputs: per key for a single service; a JSON map by service name when there are several."""
    if not ctx.results:
        return
    if len(ctx.results) == 1:
        (result,) = ctx.results.values()
        for key in OUTPUTS:
            if result.get(key):
                ctx.out.output(key, str(result[key]))
    ctx.out.output(
        "results", json.dumps({k: {o: v.get(o) for o in OUTPUTS if v.get(o)} for k, v in ctx.results.items()})
    )


def report(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The run as a team tracks it: per service, what the step outputs say plus what serves now, the milestones
    (seconds since the watch began) and the time of each phase (seconds), to a tenth."""

    def tenths(times: dict[str, float]) -> dict[str, float]:
        return {k: round(v, 1) for k, v in times.items()}

    return {
        "services": {
            name: {
                **{key: r.get(key) for key in (*OUTPUTS, "serving-task-definition-arn")},
                "milestones": tenths(r.get("milestones") or {}),
                "phases": tenths(r.get("phases") or {}),
            }
            for name, r in sorted(results.items())
        }
    }


def write_report(ctx: Context, path: str) -> None:
    """``--json FILE``: the run's report (see ``report``), written whole or not at all."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        part.write_text(json.dumps(report(ctx.results), indent=2, sort_keys=True) + "\n")
        part.replace(target)
    except OSError as exc:
        ctx.out.error(f"failed to write the JSON report to {path}: {exc.strerror or exc}")
