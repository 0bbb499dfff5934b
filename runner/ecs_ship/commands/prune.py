"""`ecs-ship prune`: deregister the service's old task-definition revisions now, as `keep_revisions` does after
each successful deploy (see prune.py for which stay); `--dry-run` only says which it would."""

from __future__ import annotations

from dataclasses import dataclass

import botocore.exceptions

from .. import aws, deploy, revisions
from ..context import Context
from ..errors import DeployError, InputError, Interrupted
from ..prune import Selection
from ..spec import ServiceSpec, Spec


@dataclass(frozen=True)
class Prepared:
    svc: ServiceSpec
    clients: aws.Clients
    selection: Selection


def prepare(ctx: Context, spec: Spec, svc: ServiceSpec) -> Prepared:
    keep = ctx.args.keep if ctx.args.keep is not None else svc.keep_revisions
    if keep is None:
        raise InputError(
            f"failed to prune {svc.service}: the spec does not say how many revisions to keep",
            fix="set keep_revisions: N in the spec, or pass --keep N",
        )
    clients = aws.make_clients(svc.region)
    service = deploy.describe_service(clients, svc.cluster, svc.service)
    return Prepared(svc, clients, revisions.selection(clients, svc.cluster, service, keep))


def execute(ctx: Context, p: Prepared) -> None:
    s, say = p.selection, ctx.sayer(p.svc.name)
    total = len(s.kept) + len(s.deregister) + s.later
    say(f"task definition {s.family}: {total} ACTIVE revision(s); keeping the newest {s.keep} and those in use")
    for line in s.lines():
        say(line)
    if ctx.args.dry_run:
        say(f"dry run: {len(s.deregister)} revision(s) would be deregistered; nothing was changed")
        return
    if not s.deregister:
        say("nothing to deregister")
        return
    refused = revisions.deregister(p.clients, s.deregister, say, ctx.check_cancel)
    done = len(s.deregister) - len(refused)
    say(f"deregistered {done} revision(s) of {s.family}")
    if refused:
        raise DeployError(
            f"failed to deregister {len(refused)} of {len(s.deregister)} revision(s) of {s.family}: "
            + "; ".join(f"{arn.rsplit('/', 1)[-1]} ({why})" for arn, why in refused[:5])
            + (" ..." if len(refused) > 5 else ""),
            fix="allow ecs:DeregisterTaskDefinition on the family's task definitions, then run `ecs-ship prune` again",
        )


# A deploy deregisters at most this many, oldest first, so the first deploy with keep_revisions on a family of
# thousands is not held up for minutes; the next deploys (or `ecs-ship prune`) take the rest.
PER_DEPLOY = 50


def after_deploy(ctx: Context, svc: ServiceSpec, clients: aws.Clients, keep: int, also: dict[str, str]) -> None:
    """`keep_revisions` after a successful deploy: housekeeping, so a failure here is a warning, never a failed
    deploy. ``also``: what the deploy knows must stay (the revision that served before it)."""
    say = ctx.sayer(svc.name)
    try:
        service = deploy.describe_service(clients, svc.cluster, svc.service)
        s = revisions.selection(clients, svc.cluster, service, keep, also=also, limit=PER_DEPLOY)
        refused = revisions.deregister(clients, s.deregister, say, ctx.check_cancel) if s.deregister else []
    except Interrupted:
        ctx.out.warning("keep_revisions: interrupted while deregistering old revisions; the deploy succeeded", svc.name)
        return
    except botocore.exceptions.ClientError as exc:
        ctx.out.warning(
            f"keep_revisions: failed to deregister old revisions of {svc.service}'s task definition: {exc}; "
            "the deploy succeeded (IAM: ecs:ListClusters, ecs:ListServices, ecs:ListTaskDefinitions, "
            "ecs:DeregisterTaskDefinition)",
            svc.name,
        )
        return
    done = len(s.deregister) - len(refused)
    said = f"keep_revisions {keep}: deregistered {done} old revision(s) of {s.family}, {len(s.kept)} kept"
    say(said + (f"; {s.later} more left for the next deploy or `ecs-ship prune`" if s.later else ""))
    if refused:
        ctx.out.warning(
            f"keep_revisions: AWS refused to deregister {len(refused)} revision(s) of {s.family}: "
            + "; ".join(f"{arn.rsplit('/', 1)[-1]} ({why})" for arn, why in refused[:3]),
            svc.name,
        )
