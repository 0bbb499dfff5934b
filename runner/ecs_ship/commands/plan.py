"""`ecs-ship plan` (and `deploy --dry-run`): the image references, the task-definition diff and the exact API
calls a deploy would make; `ecs-ship render`: the task definition it would register. Neither writes."""

from __future__ import annotations

import json
from dataclasses import replace

from .. import plan, revisions, taskdef
from ..context import Context
from ..prune import deploy_keeps
from ..spec import ServiceSpec, Spec
from . import prune
from .deploy import Prepared, preflight_findings
from .deploy import prepare as prepare_deploy


def prepare(ctx: Context, spec: Spec, svc: ServiceSpec) -> Prepared:
    # The checks are shown with the plan (execute), not run as a gate.
    return prepare_deploy(ctx, spec, svc, verify_first=False)


def planned(p: Prepared) -> plan.Plan:
    refs = {
        j.spec.container: f"{j.spec.repository}@{j.digest}"
        if j.digest
        else f"{j.spec.repository}:{j.tag} (to be built)"
        for j in p.jobs
    }
    return plan.make_plan(p.svc, p.state, refs)


def with_pruning(p: Prepared, the_plan: plan.Plan) -> plan.Plan:
    """The deregistrations `keep_revisions` would make once the new revision serves, as things stand now (the
    deploy chooses again then, from what it reads at that time)."""
    keep = p.svc.keep_revisions
    if keep is None:
        return the_plan
    also = deploy_keeps(p.state.task_definition_arn, the_plan.rollback_target)
    coming = 1 if the_plan.register else 0
    chosen = revisions.selection(
        p.clients, p.svc.cluster, p.state.service, keep, also=also, coming=coming, limit=prune.PER_DEPLOY
    )
    return replace(the_plan, after=the_plan.after + chosen.calls())


def execute(ctx: Context, p: Prepared) -> None:
    the_plan = with_pruning(p, planned(p))
    for w in the_plan.warnings:
        ctx.out.warning(w, p.svc.name)
    for line in the_plan.lines():
        ctx.out.raw(line)
    if not getattr(ctx.args, "no_verify", False):
        found = preflight_findings(ctx, p)
        ctx.out.raw("  pre-flight checks (a deploy stops before its first write if one fails):")
        for f in found:
            ctx.out.raw(f"    {f.line()}")
    ctx.out.raw("dry run: nothing was changed")


def render(ctx: Context, p: Prepared) -> None:
    the_plan = planned(p)
    for w in the_plan.warnings:
        ctx.out.warning(w, p.svc.name)
    # Environment values are often credentials (DATABASE_URL): printed only when asked for.
    document = the_plan.document if ctx.args.show_environment else taskdef.redacted(the_plan.document)
    ctx.out.raw(json.dumps(document, indent=2, default=str))
