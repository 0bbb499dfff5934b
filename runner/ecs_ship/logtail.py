"""Reading a service's CloudWatch Logs lines: its tasks (running, and stopped within the window), the awslogs
streams of their containers, and each event once, merged in time order; for `ecs-ship logs`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import botocore.exceptions

from . import aws, logstreams
from .context import rev
from .errors import InputError

# ListTasks pages, DescribeTasks ARNs and FilterLogEvents logStreamNames: at most 100 each.
PAGE = 100


@dataclass(frozen=True)
class Source:
    """One container's log stream, and the label its lines are shown with."""

    region: str
    group: str
    stream: str
    label: str  # "<task id>/<container>": the id as `--task` takes it


@dataclass(frozen=True)
class Event:
    timestamp: int  # milliseconds since the epoch, when the container wrote it
    ingestion: int  # when CloudWatch received it
    label: str
    message: str


def _pages(call: Callable[..., Any], key: str, check_cancel: Callable[[], None], **kw: Any) -> Iterator[Any]:
    """Every item of a nextToken-paginated call. A token given twice ends it: an endpoint that hands the same
    token back would otherwise keep the loop going for ever."""
    tokens: set[str] = set()
    while True:
        check_cancel()
        resp = call(**kw)
        yield from resp.get(key) or []
        token = resp.get("nextToken")
        if not token or token in tokens:
            return
        tokens.add(token)
        kw["nextToken"] = token


def _started(container: Mapping[str, Any]) -> bool:
    # The awslogs driver creates a container's stream when the container starts; a stream that does not exist
    # yet is not named, since CloudWatch may refuse the whole call for it.
    return bool(container.get("runtimeId")) or container.get("lastStatus") == "RUNNING" or "exitCode" in container


def _not_found(exc: BaseException) -> bool:
    return aws.error_code(exc) == "ResourceNotFoundException"


def _group_missing(exc: botocore.exceptions.ClientError) -> bool:
    """ResourceNotFoundException names what is missing only in its message: the log group, or a stream."""
    return "log group" in str(exc.response.get("Error", {}).get("Message", "")).lower()


class Tail:
    """The service's log streams and what has been shown of them, read one poll at a time."""

    def __init__(
        self,
        ecs: Any,
        logs_for: Callable[[str], Any],
        region: str,
        cluster: str,
        service: str,
        check_cancel: Callable[[], None] = lambda: None,
    ) -> None:
        self.ecs = ecs
        self.logs_for = logs_for  # the CloudWatch Logs client of a region (awslogs-region may name another)
        self.region = region
        self.cluster = cluster
        self.service = service
        self.check_cancel = check_cancel
        self.only: str | None = None  # a task ARN (--task): read that task alone
        self.tasks: dict[str, dict[str, Any]] = {}  # described tasks by ARN
        self.definitions: dict[str, dict[str, Any]] = {}  # task definitions by ARN
        self.seen: dict[tuple[str, str, str], int] = {}  # (region, group, eventId) -> timestamp
        self.notes: list[str] = []  # things worth saying once, taken by the caller
        self._noted: set[str] = set()

    # --- tasks ----------------------------------------------------------------------------------
    def list_tasks(self) -> tuple[list[str], list[str]]:
        """The service's task ARNs: (desired RUNNING, desired STOPPED). ECS lists a stopped task for about an hour;
        ListTasks takes serviceName with desiredStatus (only startedBy must stand alone)."""
        found: list[list[str]] = []
        for status in ("RUNNING", "STOPPED"):
            kw = {"cluster": self.cluster, "serviceName": self.service, "desiredStatus": status}
            found.append([str(a) for a in _pages(self.ecs.list_tasks, "taskArns", self.check_cancel, **kw)])
        return found[0], found[1]

    def describe(self, arns: Sequence[str]) -> None:
        for i in range(0, len(arns), PAGE):
            self.check_cancel()
            for t in self.ecs.describe_tasks(cluster=self.cluster, tasks=list(arns[i : i + PAGE])).get("tasks") or []:
                self.tasks[str(t["taskArn"])] = dict(t)

    def find(self, wanted: str) -> str:
        """The ARN of the service's task that `wanted` names: its id, its ARN, or a beginning of its id that only it
        has. Anything else is bad input: the user must not get another service's logs or silence."""
        want = wanted.strip().rsplit("/", 1)[-1]
        running, stopped = self.list_tasks()
        ids = {rev(a): a for a in [*running, *stopped]}
        matches = [want] if want in ids else [i for i in ids if want and i.startswith(want)]
        if len(matches) == 1:
            return ids[matches[0]]
        if matches:
            raise InputError(
                f"failed to choose task {wanted!r}: {len(matches)} tasks of service {self.service} begin so",
                fix="give more of the id: " + ", ".join(sorted(matches)[:10]),
            )
        listed = ", ".join(sorted(rev(a) for a in running)[:10])
        raise InputError(
            f"failed to find task {wanted!r}: it is not a task of service {self.service} in cluster {self.cluster} "
            "(running, or stopped within the last hour)",
            fix=f"pass one of its tasks' ids: {listed}" if listed else "the service runs no task now; leave out --task",
        )

    def refresh(self, start_ms: int) -> list[Source]:
        """The streams that may hold events from start_ms on: the running tasks' and those of tasks stopped since."""
        if self.only:
            self.describe([self.only])
            chosen = [self.tasks[self.only]] if self.only in self.tasks else []
            return [s for t in chosen for s in self.sources(t)]
        running, stopped = self.list_tasks()
        # A task is described again only while something its streams depend on can still change: a container
        # that has not started, or the stop time of a task on its way out.
        stale = [a for a in running if not all(_started(c) for c in self._containers(a))]
        stale += [a for a in stopped if not self.tasks.get(a, {}).get("stoppedAt")]
        self.describe(stale)
        listed = {*running, *stopped}
        self.tasks = {a: t for a, t in self.tasks.items() if a in listed}
        chosen = [self.tasks[a] for a in running if a in self.tasks]
        chosen += [self.tasks[a] for a in stopped if a in self.tasks and self._stopped_since(self.tasks[a], start_ms)]
        return [s for t in chosen for s in self.sources(t)]

    def _containers(self, arn: str) -> list[dict[str, Any]]:
        task = self.tasks.get(arn)
        # Not described yet: as if one container had not started, so that it is described.
        return list(task.get("containers") or []) if task else [{}]

    @staticmethod
    def _stopped_since(task: Mapping[str, Any], start_ms: int) -> bool:
        stopped = aws.timestamp(task.get("stoppedAt"))
        # Still stopping (no stoppedAt yet): it may write more.
        return stopped is None or stopped * 1000 >= start_ms

    # --- task definitions -----------------------------------------------------------------------
    def definition(self, arn: str) -> dict[str, Any]:
        if arn not in self.definitions:
            self.check_cancel()
            self.definitions[arn] = dict(self.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"])
        return self.definitions[arn]

    def logging(self, arn: str) -> dict[str, Mapping[str, str]]:
        """The containers of a task definition that log to a CloudWatch group: name -> awslogs options."""
        found = logstreams.awslogs_containers(self.definition(arn))
        logged = {name: options for name, options in found.items() if options.get("awslogs-group")}
        if not logged:
            self.note(f"{rev(arn)}: {no_awslogs(self.definition(arn))}; its tasks' lines cannot be shown")
        return logged

    def sources(self, task: Mapping[str, Any]) -> list[Source]:
        logged = self.logging(str(task.get("taskDefinitionArn")))
        task_id = rev(task["taskArn"])
        found: list[Source] = []
        for c in task.get("containers") or []:
            name = str(c.get("name"))
            options = logged.get(name)
            if options is None or not _started(c):
                continue
            stream = logstreams.stream_name(options, name, task_id, c.get("runtimeId"))
            region = options.get("awslogs-region") or self.region
            found.append(Source(region, options["awslogs-group"], stream, f"{task_id}/{name}"))
        return found

    # --- log groups and events ------------------------------------------------------------------
    def group_exists(self, region: str, group: str, now_ms: int) -> bool:
        """Whether the log group exists, asked with the call the reading makes anyway (no other permission): a
        one-second window, one event at most."""
        try:
            self.logs_for(region).filter_log_events(
                logGroupName=group, startTime=max(0, now_ms - 1000), endTime=now_ms, limit=1
            )
        except botocore.exceptions.ClientError as exc:
            if _not_found(exc):
                return False
            raise
        return True

    def fetch(self, sources: Sequence[Source], start_ms: int) -> list[Event]:
        """The sources' events from start_ms on that were not shown yet, oldest first."""
        groups: dict[tuple[str, str], dict[str, str]] = {}  # (region, group) -> stream -> label
        for s in sources:
            groups.setdefault((s.region, s.group), {})[s.stream] = s.label
        new: list[Event] = []
        for (region, group), labels in groups.items():
            names = sorted(labels)
            for i in range(0, len(names), PAGE):
                for e in self._filter(region, group, names[i : i + PAGE], start_ms):
                    stream = str(e.get("logStreamName", ""))
                    key = (region, group, str(e.get("eventId") or f"{stream}@{e.get('timestamp')}@{e.get('message')}"))
                    if key in self.seen:
                        continue
                    timestamp = int(e.get("timestamp") or 0)
                    self.seen[key] = timestamp
                    message = str(e.get("message", ""))
                    new.append(Event(timestamp, int(e.get("ingestionTime") or 0), labels.get(stream, stream), message))
        # Later polls start no earlier than this one did: what is older cannot come again.
        self.seen = {k: ts for k, ts in self.seen.items() if ts >= start_ms}
        # CloudWatch sorts within a call; lines of several groups and calls are merged here.
        return sorted(new, key=lambda e: (e.timestamp, e.ingestion))

    def _filter(self, region: str, group: str, names: list[str], start_ms: int) -> list[dict[str, Any]]:
        kw = {"logGroupName": group, "logStreamNames": names, "startTime": start_ms}
        try:
            return list(_pages(self.logs_for(region).filter_log_events, "events", self.check_cancel, **kw))
        except botocore.exceptions.ClientError as exc:
            if not _not_found(exc):
                raise
            if _group_missing(exc):
                self.note(f"log group {group} ({region}) does not exist: lines sent to it cannot be shown")
                return []
            if len(names) == 1:
                return []  # that stream is gone, or not there yet
            # One missing stream fails the call for all: halve until the missing ones are left out.
            half = len(names) // 2
            return self._filter(region, group, names[:half], start_ms) + self._filter(
                region, group, names[half:], start_ms
            )

    def note(self, text: str) -> None:
        if text not in self._noted:
            self._noted.add(text)
            self.notes.append(text)

    def take_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes


def no_awslogs(task_definition: Mapping[str, Any]) -> str:
    """Why none of a task definition's containers can be read: each one's log driver."""
    drivers = ", ".join(
        f"{c.get('name')}: {(c.get('logConfiguration') or {}).get('logDriver') or 'no logConfiguration'}"
        for c in task_definition.get("containerDefinitions") or []
    )
    return f"no container logs to a CloudWatch Logs group with the awslogs driver ({drivers})"


def format_event(event: Event, timestamps: bool = False) -> list[str]:
    """The event's lines, each prefixed: a line that begins with the label can never pass for a workflow command
    (`::…`) in GitHub Actions, even when the message holds several lines."""
    stamp = ""
    if timestamps:
        at = datetime.fromtimestamp(event.timestamp / 1000, tz=timezone.utc)
        stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z") + " "
    return [f"{stamp}[{event.label}] {line}" for line in event.message.splitlines() or [""]]
