"""Run a one-off task (a `pre_deploy` or `post_deploy` entry): start it, show its CloudWatch log lines as they
come, wait for it to stop, and require exit code 0 of its container; stop it on a timeout or an interruption.

A failure raises DeploymentFailed about the task alone; what it means for the service is the caller's to say: a
`pre_deploy` failure comes before the service is updated, so it runs what it ran; a `post_deploy` failure fails a
deploy whose new revision already serves, and the caller rolls back (or not) as for a failed smoke check."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from . import logstreams
from .aws import Clients
from .errors import DeploymentFailed, Interrupted
from .oneoff import STARTED_BY
from .plan import ApiCall
from .spec import OneOffList, OneOffSpec

STOP_WAIT = 60.0  # seconds a stopped task may take to reach STOPPED (its container's stop timeout)


@dataclass
class Job:
    """One run: the planned call and what following it needs."""

    call: ApiCall
    name: str
    phase: OneOffList  # the spec's list it came from, named in every message
    container: str
    timeout: float
    log_options: Mapping[str, str]  # the container's awslogs options; empty: no logs to follow


@dataclass
class Env:
    clients: Clients
    say: Callable[[str], None]
    check_cancel: Callable[[], None]  # raises Interrupted
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    interval: float


def job_of(call: ApiCall, jobs: Sequence[OneOffSpec], document: Mapping[str, Any]) -> Job:
    """The planned run_task call with its spec entry (found by the name in startedBy) and its log settings."""
    container = str(call.params["overrides"]["containerOverrides"][0]["name"])
    spec = next(j for j in jobs if STARTED_BY + j.name == call.params["startedBy"])
    options: Mapping[str, str] = {}
    for c in document.get("containerDefinitions") or []:
        conf = c.get("logConfiguration") or {}
        if c.get("name") == container and conf.get("logDriver") == "awslogs":
            options = conf.get("options") or {}
    return Job(call, spec.name, spec.phase, container, spec.timeout, options)


class _Logs:
    """The task's log stream, read forward from where the last read stopped."""

    def __init__(self, clients: Clients, job: Job, task_id: str) -> None:
        self.clients = clients
        self.group = job.log_options.get("awslogs-group")
        self.stream = logstreams.stream_name(job.log_options, job.container, task_id)
        self.token: str | None = None
        self.seen: list[str] = []

    def new_lines(self) -> list[str]:
        if not self.group:
            return []
        kw: dict[str, Any] = {"logGroupName": self.group, "logStreamName": self.stream, "startFromHead": True}
        if self.token:
            kw["nextToken"] = self.token
        try:
            resp = self.clients.logs.get_log_events(**kw)
        except botocore.exceptions.ClientError:
            return []  # no stream yet: the container has written nothing
        self.token = resp.get("nextForwardToken") or self.token
        lines = [str(e.get("message", "")).rstrip() for e in resp.get("events", [])]
        self.seen += lines
        return lines


def run(env: Env, job: Job, task_definition_arn: str) -> None:
    """Run the job with ``task_definition_arn``; return when its container exited 0, else raise."""
    ecs, say = env.clients.ecs, env.say
    resp = ecs.run_task(**{**job.call.params, "taskDefinition": task_definition_arn})
    tasks = resp.get("tasks") or []
    if not tasks:
        why = "; ".join(f"{f.get('reason')}: {f.get('detail') or f.get('arn', '')}" for f in resp.get("failures") or [])
        raise DeploymentFailed(
            f"failed to start {job.phase} task {job.name}: ECS started no task ({why or 'no reason given'})",
            fix="check the cluster's capacity and the task definition",
        )
    arn = str(tasks[0]["taskArn"])
    task_id = arn.rsplit("/", 1)[-1]
    command = shlex.join(job.call.params["overrides"]["containerOverrides"][0]["command"])
    say(f"{job.phase} {job.name}: started task {task_id}: {command}")
    logs = _Logs(env.clients, job, task_id)
    deadline = env.clock() + job.timeout
    try:
        task = _follow(env, job, arn, logs, deadline)
    except Interrupted:
        # A cancelled CI job has seconds left: ask ECS to stop the task, do not wait for it.
        _stop(env, job, arn, f"ecs-ship: interrupted during {job.phase} {job.name}", wait=False)
        raise
    if task is None:
        _stop(env, job, arn, f"ecs-ship: {job.phase} {job.name} timed out after {job.timeout:g}s", wait=True)
        raise DeploymentFailed(
            f"{job.phase} task {job.name} ran longer than its timeout ({job.timeout:g}s) and was stopped",
            diagnosis=_tail(job, logs),
            fix=f"raise {job.phase} timeout if the task needs longer",
        )
    container: dict[str, Any] = next((c for c in task.get("containers") or [] if c.get("name") == job.container), {})
    code = container.get("exitCode")
    if code == 0:
        say(f"{job.phase} {job.name}: container {job.container} exited 0")
        return
    reason = task.get("stoppedReason") or "no reason given"
    ended = f"exited {code}"
    if code is None:
        ended = f"stopped without an exit code ({container.get('reason') or reason})"
    raise DeploymentFailed(
        f"{job.phase} task {job.name} failed: container {job.container} {ended}",
        diagnosis=[f"task {task_id} stopped: {reason} ({task.get('stopCode', '?')})", *_tail(job, logs)],
    )


def _follow(env: Env, job: Job, arn: str, logs: _Logs, deadline: float) -> dict[str, Any] | None:
    """Poll until the task stopped (its description) or the deadline passed (None), showing new log lines."""
    cluster = job.call.params["cluster"]
    while True:
        env.check_cancel()
        found = env.clients.ecs.describe_tasks(cluster=cluster, tasks=[arn]).get("tasks") or []
        for line in logs.new_lines():
            env.say(f"  [{job.name}] {line}")
        if found and found[0].get("lastStatus") == "STOPPED":
            for line in logs.new_lines():  # what it wrote last
                env.say(f"  [{job.name}] {line}")
            return dict(found[0])
        if env.clock() >= deadline:
            return None
        env.sleep(env.interval)


def _stop(env: Env, job: Job, arn: str, reason: str, *, wait: bool) -> None:
    """Stop the task and, with ``wait``, wait (bounded) for it to be STOPPED: no migration keeps running unseen."""
    cluster = job.call.params["cluster"]
    with contextlib.suppress(botocore.exceptions.ClientError):
        env.clients.ecs.stop_task(cluster=cluster, task=arn, reason=reason)
    env.say(f"{job.phase} {job.name}: stopping task {arn.rsplit('/', 1)[-1]} ({reason})")
    if not wait:
        return
    until = env.clock() + STOP_WAIT
    while env.clock() < until:
        found = env.clients.ecs.describe_tasks(cluster=cluster, tasks=[arn]).get("tasks") or []
        if not found or found[0].get("lastStatus") == "STOPPED":
            return
        env.sleep(env.interval)


def _tail(job: Job, logs: _Logs, lines: int = 20) -> list[str]:
    if not logs.seen:
        return []
    return ["last log lines:", *(f"  [{job.container}] {line}" for line in logs.seen[-lines:])]
