"""`ecs-ship doctor`: reads (only) the service, its target groups and its recent deployments, and says what each
setting costs every deploy, the change that would save it, and what would break deploys (exit 1). With
--run-local it also runs the task a deploy would register on the local engine and asks it each health check."""

from __future__ import annotations

import json
import sys

from .. import aws, engine, local
from ..context import Context
from ..doctor import BREAKS, model, read, report
from ..errors import DeployError
from ..spec import ServiceSpec, Spec

# How long the local task has to answer a health check at all; a refused answer settles sooner (local.Probe).
PROBE_TIMEOUT = 60.0


class DeploysWouldBreak(DeployError):
    """A setting makes deploys fail or never end: exit 1."""


def prepare(ctx: Context, spec: Spec, svc: ServiceSpec) -> tuple[Spec, ServiceSpec]:
    return spec, svc


def execute(ctx: Context, prepared: tuple[Spec, ServiceSpec]) -> None:
    spec, svc = prepared
    clients = aws.make_clients(svc.region)
    settings, history = read.read(clients, svc.cluster, svc.service)
    checks = path_checks(ctx, spec, svc, settings, clients) if getattr(ctx.args, "run_local", False) else []
    found = model.rows(settings, history, checks)
    now, after = model.summary(settings, history)
    if getattr(ctx.args, "json", False):
        ctx.out.raw(json.dumps(report.document(settings, history, found, now, after), sort_keys=True))
    else:
        # One write: the services of a spec are read in parallel, and each table must stay in one piece.
        ctx.out.raw("\n".join(report.text(settings, history, found, now, after)))
    broken = [r for r in found if r.level == BREAKS]
    if broken:
        more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
        raise DeploysWouldBreak(
            f"{svc.service}: {broken[0].setting} {broken[0].value} would break deploys{more}",
            fix=broken[0].change.cli if broken[0].change else None,
        )


def path_checks(
    ctx: Context, spec: Spec, svc: ServiceSpec, settings: model.Settings, clients: aws.Clients
) -> list[model.PathCheck]:
    """--run-local: the task a deploy would register, run on the local engine as `ecs-ship run-local` runs it,
    asked each target group's health check (path and success codes) once it listens; then removed."""
    say = ctx.sayer(svc.name)
    if getattr(ctx.args, "json", False):

        def say(line: str) -> None:  # stdout carries only the JSON documents
            print(ctx.out.redact(f"[{svc.name}] {line}"), file=sys.stderr, flush=True)

    found: list[model.PathCheck] = []
    for tg in settings.target_groups:
        if not tg.path:
            continue  # a TCP health check: no path to ask
        probe = local.Probe(tg.path, tg.matcher)
        local.run_local(
            svc,
            spec,
            local.LocalOptions(),
            docker_client=engine.connect(),
            say=say,
            cancel=ctx.cancel,
            clients=clients,
            mask=ctx.out.mask,
            probe=probe,
            ready_timeout=PROBE_TIMEOUT,
        )
        found.append(model.PathCheck(tg.name, tg.path, tg.matcher, probe.served, probe.answer, probe.answered))
    return found
