"""`ecs-ship plan` (and `deploy --dry-run`): the image references, the task-definition diff and the exact API
calls a deploy would make; `ecs-ship render`: the task definition it would register. Neither writes."""

from __future__ import annotations

import json

from .. import plan, taskdef
from ..context import Context
from .deploy import Prepared
from .deploy import prepare as prepare


def planned(p: Prepared) -> plan.Plan:
    refs = {
        j.spec.container: f"{j.spec.repository}@{j.digest}"
        if j.digest
        else f"{j.spec.repository}:{j.tag} (to be built)"
        for j in p.jobs
    }
    return plan.make_plan(p.svc, p.state, refs)


def execute(ctx: Context, p: Prepared) -> None:
    the_plan = planned(p)
    for w in the_plan.warnings:
        ctx.out.warning(w, p.svc.name)
    for line in the_plan.lines():
        ctx.out.raw(line)
    ctx.out.raw("dry run: nothing was changed")


def render(ctx: Context, p: Prepared) -> None:
    the_plan = planned(p)
    for w in the_plan.warnings:
        ctx.out.warning(w, p.svc.name)
    # Environment values are often credentials (DATABASE_URL): printed only when asked for.
    document = the_plan.document if ctx.args.show_environment else taskdef.redacted(the_plan.document)
    ctx.out.raw(json.dumps(document, indent=2, default=str))
