"""What a run leaves behind for people and later steps: the closing lines of each service, the job summary
and the step outputs. Written even when a run is interrupted, so a cancelled job still says what state each
service was left in.
"""

from __future__ import annotations

import json
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


def summarise(ctx: Context, svc: ServiceSpec, result: dict[str, Any]) -> None:
    """The closing lines (and, in GitHub Actions, the job summary) of one service's deploy."""
    say = ctx.sayer(svc.name)
    result["summarised"] = True
    milestones = result.get("milestones") or {}
    say(f"summary: {result.get('outcome')}")
    for container, ref in (result.get("images") or {}).items():
        say(f"  image {container}: {ref}")
    say(f"  revision: {rev(result.get('previous-task-definition-arn'))} -> {rev(result.get('task-definition-arn'))}")
    say(f"  deployment: {result.get('deployment-id')}")
    if milestones:
        say("  milestones: " + ", ".join(f"{k} {v:.1f}s" for k, v in milestones.items()))
    if result.get("service-url"):
        say(f"  url: {result['service-url']}")
    rows = [
        f"### ecs-ship: {svc.service} ({svc.cluster}) — {result.get('outcome')}",
        "",
        "| | |",
        "|---|---|",
        *(f"| image `{c}` | `{r}` |" for c, r in (result.get("images") or {}).items()),
        f"| revision | `{rev(result.get('previous-task-definition-arn'))}` → "
        f"`{rev(result.get('task-definition-arn'))}` |",
        f"| deployment | `{result.get('deployment-id')}` |",
        *(f"| {k} | {v:.1f} s |" for k, v in milestones.items()),
    ]
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
