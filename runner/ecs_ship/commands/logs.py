"""`ecs-ship logs`: the service's CloudWatch Logs lines, each prefixed by the task and container that wrote it.

Read-only. The lines come from the service's tasks — running ones, and those stopped within the ``--since``
window, so a crashed task's last lines show — and from each of their containers that sends its output to
CloudWatch with the awslogs driver. ``--follow`` keeps polling, picks up tasks as they start (a deployment's new
tasks among them) and ends with exit 0 on Ctrl-C or SIGTERM, the normal way to stop following.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import aws, deploy
from ..context import Context, rev
from ..durations import DEFAULT_SINCE as DEFAULT_SINCE
from ..durations import duration as duration
from ..durations import since as since
from ..errors import InputError, Interrupted
from ..logtail import Source, Tail, format_event, no_awslogs
from ..spec import ServiceSpec, Spec

# Lines reach CloudWatch some seconds after they were written (the awslogs driver sends batches every few
# seconds, each container on its own schedule), so a follow reads each poll again from this far back; eventIds
# keep every line to one showing. A line that arrives later than this after it was written is missed.
LOOKBACK_MS = 30_000


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------
@dataclass
class Prepared:
    svc: ServiceSpec
    tail: Tail
    sources: list[Source]  # the first poll's
    since_ms: int
    since: float
    follow: bool
    timestamps: bool


def regional(clients: aws.Clients) -> Callable[[str], Any]:
    """A CloudWatch Logs client per region, made when first needed (no request is made to make one)."""
    made = {clients.region: clients.logs}

    def logs_for(region: str) -> Any:
        if region not in made:
            made[region] = aws.make_clients(region).logs
        return made[region]

    return logs_for


def prepare(ctx: Context, spec: Spec, svc: ServiceSpec) -> Prepared:
    """Every bad input surfaces here, before a line is printed: the service, --task, a task definition without
    awslogs, a missing log group."""
    args = ctx.args
    clients = aws.make_clients(svc.region)
    tail = Tail(clients.ecs, regional(clients), clients.region, svc.cluster, svc.service, ctx.check_cancel)
    service = deploy.describe_service(clients, svc.cluster, svc.service)
    now_ms = int(ctx.clock() * 1000)
    since_ms = max(0, now_ms - int(args.since * 1000))
    if args.task:
        tail.only = tail.find(args.task)
    sources = tail.refresh(since_ms)
    # The revisions whose logging must work: the named task's, or the service's own (what its tasks run or are
    # about to run).
    main = str(service["taskDefinition"])
    if tail.only in tail.tasks:
        main = str(tail.tasks[tail.only]["taskDefinitionArn"])
    whose = f"task {rev(tail.only)}" if tail.only else f"service {svc.service}"
    logged = tail.logging(main)
    if not logged:
        raise InputError(
            f"failed to read the logs of {whose}: {rev(main)} has {no_awslogs(tail.definition(main))}",
            fix="add a logConfiguration with logDriver awslogs (options awslogs-group, awslogs-region, "
            "awslogs-stream-prefix) to its container definitions and deploy",
        )
    for name, options in logged.items():
        group, region = options["awslogs-group"], options.get("awslogs-region") or clients.region
        # With awslogs-create-group the first task to log makes it.
        if str(options.get("awslogs-create-group", "")).lower() != "true" and not tail.group_exists(
            region, group, now_ms
        ):
            raise InputError(
                f"failed to read the logs of {whose}: log group {group} ({region}) does not exist",
                fix=f"create it (aws logs create-log-group --log-group-name {group} --region {region}), or point "
                f"awslogs-group of container {name} in {rev(main)} at an existing group: ECS cannot start a task "
                "whose log group is missing",
            )
    return Prepared(svc, tail, sources, since_ms, args.since, bool(args.follow), bool(args.timestamps))


def execute(ctx: Context, p: Prepared) -> None:
    out = ctx.out.raw
    start_ms, sources, shown = p.since_ms, p.sources, 0
    try:
        while True:
            now_ms = int(ctx.clock() * 1000)
            for event in p.tail.fetch(sources, start_ms):
                for line in format_event(event, p.timestamps):
                    out(line)
                shown += 1
            for note in p.tail.take_notes():
                ctx.out.warning(note)
            if not p.follow:
                break
            ctx.sleep(p.svc.wait.poll_interval)
            start_ms = max(p.since_ms, now_ms - LOOKBACK_MS)
            sources = p.tail.refresh(start_ms)
    except Interrupted:
        if p.follow:
            return  # Ctrl-C is how a follow ends: exit 0
        raise
    if not shown:
        # Silence alone would leave the user wondering whether anything was read at all.
        tasks = len({s.label.split("/", 1)[0] for s in sources})
        ctx.out.line(
            f"no log lines in the last {duration(p.since)} from the {tasks} task(s) of service {p.svc.service} "
            "that have started; a longer --since looks further back"
        )
