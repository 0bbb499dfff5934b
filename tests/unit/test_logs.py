"""`ecs-ship logs` against small fakes of ECS and CloudWatch Logs that keep to the APIs' rules (pages of 100, at
most 100 ARNs or stream names a call, a missing group or stream refused): --since parsing, the awslogs stream
names, which tasks are read and what --task accepts, each line shown once and in time order, a follow that picks
up a task started after it began and ends with exit 0 on Ctrl-C, and every bad input as exit 2."""

from __future__ import annotations

import argparse
import io
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber

from ecs_ship import aws, cli, logstreams, logtail
from ecs_ship.commands import logs
from ecs_ship.context import Context
from ecs_ship.errors import InputError, Interrupted
from ecs_ship.gha import Reporter

PREFIX = "arn:aws:ecs:us-east-1:123456789012"
TD1 = f"{PREFIX}:task-definition/app:1"
TD2 = f"{PREFIX}:task-definition/app:2"
GROUP = "/ecs/app"
NOW = 1_700_000_000.0  # the fake clock's start, seconds
MS = int(NOW * 1000)


def arn(task_id: str) -> str:
    return f"{PREFIX}:task/prod/{task_id}"


def awslogs(group: str = GROUP, prefix: str | None = "ecs", **more: str) -> dict[str, Any]:
    options = {"awslogs-group": group, "awslogs-region": "us-east-1", **more}
    if prefix:
        options["awslogs-stream-prefix"] = prefix
    return {"logDriver": "awslogs", "options": options}


def not_found(what: str) -> botocore.exceptions.ClientError:
    message = f"The specified log {what} does not exist."
    return botocore.exceptions.ClientError(
        {"Error": {"Code": "ResourceNotFoundException", "Message": message}}, "FilterLogEvents"
    )


class FakeEcs:
    """The ECS calls `logs` makes, with the API's limits asserted."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.definitions: dict[str, dict[str, Any]] = {
            TD1: {"taskDefinitionArn": TD1, "containerDefinitions": [{"name": "web", "logConfiguration": awslogs()}]},
        }
        self.service_td = TD1
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def add(
        self,
        task_id: str,
        td: str = TD1,
        *,
        containers: tuple[str, ...] = ("web",),
        stopped_at: float | None = None,
        started: bool = True,
    ) -> str:
        task: dict[str, Any] = {
            "taskArn": arn(task_id),
            "taskDefinitionArn": td,
            "desiredStatus": "RUNNING" if stopped_at is None else "STOPPED",
            "lastStatus": "RUNNING" if stopped_at is None else "STOPPED",
            "containers": [
                {
                    "name": n,
                    "lastStatus": "RUNNING" if started else "PENDING",
                    **({"runtimeId": f"rt-{n}"} if started else {}),
                }
                for n in containers
            ],
        }
        if stopped_at is not None:
            task["stoppedAt"] = datetime.fromtimestamp(stopped_at, UTC)
        self.tasks[arn(task_id)] = task
        return arn(task_id)

    def describe_services(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("describe_services", kw))
        return {"services": [{"serviceName": "web-svc", "status": "ACTIVE", "taskDefinition": self.service_td}]}

    def list_tasks(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("list_tasks", kw))
        assert "startedBy" not in kw  # with serviceName it would be refused
        assert kw["serviceName"] == "web-svc" and kw["cluster"] == "prod"
        arns = sorted(a for a, t in self.tasks.items() if t["desiredStatus"] == kw.get("desiredStatus", "RUNNING"))
        start = int(kw.get("nextToken") or 0)
        resp: dict[str, Any] = {"taskArns": arns[start : start + 100]}
        if start + 100 < len(arns):
            resp["nextToken"] = str(start + 100)
        return resp

    def describe_tasks(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("describe_tasks", kw))
        assert 1 <= len(kw["tasks"]) <= 100
        return {"tasks": [dict(self.tasks[a]) for a in kw["tasks"] if a in self.tasks]}

    def describe_task_definition(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("describe_task_definition", kw))
        return {"taskDefinition": self.definitions[kw["taskDefinition"]]}

    def count(self, name: str) -> int:
        return sum(1 for call, _ in self.calls if call == name)


class FakeLogs:
    """FilterLogEvents over stored events, in pages of `page` events, refusing what AWS refuses."""

    def __init__(self, page: int = 3) -> None:
        self.groups: dict[str, dict[str, list[dict[str, Any]]]] = {GROUP: {}}
        self.page = page
        self.calls: list[dict[str, Any]] = []
        self._id = 0

    def put(self, stream: str, at: float, message: str, group: str = GROUP, ingested: float | None = None) -> None:
        self._id += 1
        event = {
            "logStreamName": stream,
            "timestamp": int(at * 1000),
            "ingestionTime": int((ingested or at) * 1000),
            "message": message,
            "eventId": f"{self._id:06d}",
        }
        self.groups[group].setdefault(stream, []).append(event)

    def filter_log_events(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(kw)
        streams = self.groups.get(kw["logGroupName"])
        if streams is None:
            raise not_found("group")
        names = kw.get("logStreamNames")
        if names is not None:
            assert 1 <= len(names) <= 100
            if any(n not in streams for n in names):
                raise not_found("stream")
        events = [
            e
            for n, es in streams.items()
            if names is None or n in names
            for e in es
            if kw.get("startTime", 0) <= e["timestamp"] <= kw.get("endTime", 2**62)
        ]
        events.sort(key=lambda e: (e["timestamp"], e["ingestionTime"]))
        start = int(kw.get("nextToken") or 0)
        size = min(self.page, kw.get("limit") or self.page)
        resp: dict[str, Any] = {"events": events[start : start + size]}
        if start + size < len(events):
            resp["nextToken"] = str(start + size)
        return resp


def stream(task_id: str, container: str = "web") -> str:
    return f"ecs/{container}/{task_id}"


def tail(ecs: FakeEcs, cwl: FakeLogs) -> logtail.Tail:
    return logtail.Tail(ecs, lambda region: cwl, "us-east-1", "prod", "web-svc")


def lines(t: logtail.Tail, start_ms: int) -> list[str]:
    return [line for e in t.fetch(t.refresh(start_ms), start_ms) for line in logtail.format_event(e)]


# --------------------------------------------------------------------------------------------
# --since and the stream names
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("90", 90), ("1.5m", 90), ("1h30m", 5400), (" 5m ", 300)],
)
def test_since_takes_units_and_plain_seconds(text: str, seconds: float) -> None:
    assert logs.since(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "m", "-5m", "0", "0s", "5 m", "1e3", "nan", "inf", "9" * 400])
def test_a_bad_since_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        logs.since(text)


def test_a_bad_since_is_an_argument_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["logs", "--since", "10 minutes"]) == 2
    assert "'10 minutes' is not a duration" in capsys.readouterr().err


def test_durations_are_written_back_as_a_user_would() -> None:
    assert [logs.duration(s) for s in (600, 7200, 86400, 90, 30, 1.5)] == ["10m", "2h", "1d", "90s", "30s", "1.5s"]


def test_stream_names_follow_the_awslogs_driver() -> None:
    with_prefix = {"awslogs-group": GROUP, "awslogs-stream-prefix": "ecs"}
    assert logstreams.stream_name(with_prefix, "web", "abc") == "ecs/web/abc"
    # Without a prefix (EC2 only) the driver names the stream after the Docker container id.
    assert logstreams.stream_name({"awslogs-group": GROUP}, "web", "abc", "0f3c9e") == "0f3c9e"
    assert logstreams.stream_name({"awslogs-group": GROUP}, "web", "abc") == "abc"


def test_only_awslogs_containers_are_read() -> None:
    td = {
        "containerDefinitions": [
            {"name": "web", "logConfiguration": awslogs()},
            {"name": "proxy", "logConfiguration": {"logDriver": "json-file"}},
            {"name": "init"},
        ]
    }
    assert list(logstreams.awslogs_containers(td)) == ["web"]
    assert logtail.no_awslogs(td) == (
        "no container logs to a CloudWatch Logs group with the awslogs driver "
        "(web: awslogs, proxy: json-file, init: no logConfiguration)"
    )


# --------------------------------------------------------------------------------------------
# which tasks, and --task
# --------------------------------------------------------------------------------------------
def test_running_tasks_and_tasks_stopped_in_the_window_are_read_in_time_order() -> None:
    ecs, cwl = FakeEcs(), FakeLogs()
    ecs.add("aaa111")
    ecs.add("bbb222")
    ecs.add("ccc333", stopped_at=NOW - 60)  # crashed a minute ago: its last lines matter
    ecs.add("ddd444", stopped_at=NOW - 3000)  # stopped before the window: not read
    cwl.put(stream("aaa111"), NOW - 30, "a: serving")
    cwl.put(stream("bbb222"), NOW - 50, "b: listening")
    cwl.put(stream("ccc333"), NOW - 70, "c: fatal: cannot connect\ncaused by: refused")
    cwl.put(stream("ddd444"), NOW - 3100, "d: too old")
    cwl.put(stream("aaa111"), NOW - 900, "a: before the window")
    assert lines(tail(ecs, cwl), MS - 600_000) == [
        "[ccc333/web] c: fatal: cannot connect",
        "[ccc333/web] caused by: refused",
        "[bbb222/web] b: listening",
        "[aaa111/web] a: serving",
    ]
    named = {n for call in cwl.calls for n in call["logStreamNames"]}
    assert named == {stream("aaa111"), stream("bbb222"), stream("ccc333")}
    assert all(call["startTime"] == MS - 600_000 for call in cwl.calls)


def test_every_container_that_logs_is_read_and_labelled() -> None:
    ecs, cwl = FakeEcs(), FakeLogs()
    ecs.definitions[TD2] = {
        "taskDefinitionArn": TD2,
        "containerDefinitions": [
            {"name": "web", "logConfiguration": awslogs()},
            {"name": "worker", "logConfiguration": awslogs("/ecs/worker", prefix="jobs")},
            {"name": "proxy", "logConfiguration": {"logDriver": "json-file"}},
        ],
    }
    cwl.groups["/ecs/worker"] = {}
    ecs.add("aaa111", TD2, containers=("web", "worker", "proxy"))
    cwl.put(stream("aaa111"), NOW - 3, "web line")
    cwl.put("jobs/worker/aaa111", NOW - 2, "worker line", group="/ecs/worker")
    assert lines(tail(ecs, cwl), MS - 60_000) == ["[aaa111/web] web line", "[aaa111/worker] worker line"]
    # One call per group: lines of several groups are merged by time here.
    assert sorted(c["logGroupName"] for c in cwl.calls) == ["/ecs/app", "/ecs/worker"]


def test_a_container_that_has_not_started_is_not_named() -> None:
    ecs, cwl = FakeEcs(), FakeLogs()
    ecs.add("aaa111")
    ecs.add("bbb222", started=False)  # PENDING: no stream yet, and naming one would fail the call
    cwl.put(stream("aaa111"), NOW - 1, "up")
    assert lines(tail(ecs, cwl), MS - 60_000) == ["[aaa111/web] up"]


def test_a_missing_stream_leaves_out_only_itself() -> None:
    ecs, cwl = FakeEcs(), FakeLogs()
    for i in range(5):
        ecs.add(f"t{i}")
        if i != 3:  # t3's container started, its stream is not there (deleted, or not created yet)
            cwl.put(stream(f"t{i}"), NOW - 10 + i, f"line {i}")
    assert lines(tail(ecs, cwl), MS - 60_000) == [f"[t{i}/web] line {i}" for i in (0, 1, 2, 4)]


def test_many_tasks_are_listed_described_and_read_in_hundreds() -> None:
    ecs, cwl = FakeEcs(), FakeLogs(page=50)
    for i in range(250):
        ecs.add(f"t{i:03d}")
        cwl.put(stream(f"t{i:03d}"), NOW - 300 + i, f"line {i}")
    out = lines(tail(ecs, cwl), MS - 600_000)
    assert out == [f"[t{i:03d}/web] line {i}" for i in range(250)]
    assert [len(kw["tasks"]) for name, kw in ecs.calls if name == "describe_tasks"] == [100, 100, 50]
    assert sorted(len(c["logStreamNames"]) for c in cwl.calls if "nextToken" not in c) == [50, 100, 100]


@pytest.mark.parametrize("given", ["1b2c3d4e5f60718293a4b5c6d7e8f901", arn("1b2c3d4e5f60718293a4b5c6d7e8f901"), "1b2c"])
def test_task_takes_an_id_an_arn_or_a_unique_prefix(given: str) -> None:
    ecs = FakeEcs()
    ecs.add("1b2c3d4e5f60718293a4b5c6d7e8f901")
    ecs.add("9f8e7d6c5b4a39281706f5e4d3c2b1a0")
    assert tail(ecs, FakeLogs()).find(given) == arn("1b2c3d4e5f60718293a4b5c6d7e8f901")


def test_task_reads_that_task_alone_even_stopped() -> None:
    ecs, cwl = FakeEcs(), FakeLogs()
    ecs.add("aaa111")
    ecs.add("bbb222", stopped_at=NOW - 5000)
    cwl.put(stream("aaa111"), NOW - 2, "a")
    cwl.put(stream("bbb222"), NOW - 5001, "b's last words")
    t = tail(ecs, cwl)
    t.only = t.find("bbb")
    assert lines(t, MS - 86_400_000) == ["[bbb222/web] b's last words"]


def test_an_unknown_task_is_bad_input_naming_it_and_the_service_tasks() -> None:
    ecs = FakeEcs()
    ecs.add("aaa111")
    ecs.add("bbb222")
    with pytest.raises(InputError) as err:
        tail(ecs, FakeLogs()).find("ccc")
    assert err.value.exit_code == 2
    assert str(err.value) == (
        "failed to find task 'ccc': it is not a task of service web-svc in cluster prod "
        "(running, or stopped within the last hour)"
    )
    assert err.value.fix == "pass one of its tasks' ids: aaa111, bbb222"


def test_an_ambiguous_prefix_is_bad_input() -> None:
    ecs = FakeEcs()
    ecs.add("abc111")
    ecs.add("abc222")
    with pytest.raises(InputError) as err:
        tail(ecs, FakeLogs()).find("abc")
    assert (
        "2 tasks of service web-svc begin so" in str(err.value)
        and err.value.fix == "give more of the id: abc111, abc222"
    )


# --------------------------------------------------------------------------------------------
# polling: each line once, new tasks picked up
# --------------------------------------------------------------------------------------------
def test_overlapping_polls_show_each_line_once_and_a_late_line_still_shows() -> None:
    ecs, cwl = FakeEcs(), FakeLogs()
    ecs.add("aaa111")
    cwl.put(stream("aaa111"), NOW - 5, "one")
    t = tail(ecs, cwl)
    assert lines(t, MS - 60_000) == ["[aaa111/web] one"]
    cwl.put(stream("aaa111"), NOW + 1, "two")
    cwl.put(stream("aaa111"), NOW - 4, "three, written before two but ingested late", ingested=NOW + 2)
    assert lines(t, MS - 30_000) == [
        "[aaa111/web] three, written before two but ingested late",
        "[aaa111/web] two",
    ]
    assert lines(t, MS - 20_000) == []
    # What fell out of the window is forgotten: the record of what was shown stays small.
    lines(t, MS)
    assert set(t.seen) == {("us-east-1", GROUP, "000002")}


def test_tasks_are_described_again_only_while_something_can_change() -> None:
    ecs, cwl = FakeEcs(), FakeLogs()
    ecs.add("aaa111")
    ecs.add("bbb222", started=False)
    t = tail(ecs, cwl)
    t.refresh(MS)
    ecs.add("bbb222")
    t.refresh(MS)
    t.refresh(MS)
    described = [kw["tasks"] for name, kw in ecs.calls if name == "describe_tasks"]
    assert described == [[arn("aaa111"), arn("bbb222")], [arn("bbb222")]]
    assert ecs.count("describe_task_definition") == 1


def context(follow: bool, **args: Any) -> tuple[Context, io.StringIO]:
    out = io.StringIO()
    ns = argparse.Namespace(since=600.0, follow=follow, task=None, timestamps=False, **args)
    ctx = Context(args=ns, out=Reporter(stream=out, environ={}), clock=lambda: NOW)
    return ctx, out


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeEcs, FakeLogs]:
    ecs, cwl = FakeEcs(), FakeLogs()
    monkeypatch.setattr(aws, "make_clients", lambda region: aws.Clients("us-east-1", ecs, None, cwl, None))
    return ecs, cwl


def service_spec(tmp_path: Path, extra: str = "") -> Any:
    from ecs_ship.spec import load_spec

    path = tmp_path / "ecs-ship.yml"
    path.write_text(f"version: 1\nregion: us-east-1\ncluster: prod\nservice: web-svc\n{extra}")
    spec = load_spec(str(path))
    return spec, spec.services[0]


def test_follow_picks_up_a_task_that_starts_later_and_ends_on_ctrl_c(
    fakes: tuple[FakeEcs, FakeLogs], tmp_path: Path
) -> None:
    ecs, cwl = fakes
    ecs.add("old111")
    cwl.put(stream("old111"), NOW - 10, "old: hello v1")
    ctx, out = context(follow=True)
    now = [NOW]
    ctx.clock = lambda: now[0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds
        if len(sleeps) == 1:  # a deployment starts a task of the new revision
            ecs.definitions[TD2] = {**ecs.definitions[TD1], "taskDefinitionArn": TD2}
            ecs.add("new222", TD2, started=False)
        elif len(sleeps) == 2:
            ecs.add("new222", TD2)
            cwl.put(stream("new222"), now[0] - 0.5, "new: hello v2")
            cwl.put(stream("old111"), now[0] - 0.2, "old: GET /health 200")
        elif len(sleeps) == 4:
            ctx.interrupt()  # what SIGINT or SIGTERM does
        ctx.check_cancel()

    ctx.sleep = sleep  # type: ignore[method-assign]
    spec, svc = service_spec(tmp_path, "wait: {poll_interval: 0.5}\n")
    logs.execute(ctx, logs.prepare(ctx, spec, svc))  # returns: Ctrl-C is the normal end of a follow
    assert out.getvalue().splitlines() == [
        "[old111/web] old: hello v1",
        "[new222/web] new: hello v2",
        "[old111/web] old: GET /health 200",
    ]
    assert sleeps == [0.5] * 4  # the spec's poll interval, no busy loop


def test_without_follow_an_interruption_is_still_an_interruption(
    fakes: tuple[FakeEcs, FakeLogs], tmp_path: Path
) -> None:
    ecs, _ = fakes
    ecs.add("aaa111")
    ctx, _out = context(follow=False)
    spec, svc = service_spec(tmp_path)
    prepared = logs.prepare(ctx, spec, svc)
    ctx.interrupt()
    with pytest.raises(Interrupted):
        logs.execute(ctx, prepared)


def test_no_lines_says_so(fakes: tuple[FakeEcs, FakeLogs], tmp_path: Path) -> None:
    ecs, _ = fakes
    ecs.add("aaa111")
    ctx, out = context(follow=False)
    spec, svc = service_spec(tmp_path)
    logs.execute(ctx, logs.prepare(ctx, spec, svc))
    assert out.getvalue().endswith(
        "no log lines in the last 10m from the 1 task(s) of service web-svc that have started; "
        "a longer --since looks further back\n"
    )


def test_lines_can_carry_their_timestamp() -> None:
    event = logtail.Event(1_700_000_000_123, 0, "aaa111/web", "hello")
    assert logtail.format_event(event, timestamps=True) == ["2023-11-14T22:13:20.123Z [aaa111/web] hello"]


# --------------------------------------------------------------------------------------------
# through the CLI: exit codes and messages
# --------------------------------------------------------------------------------------------
def run_cli(tmp_path: Path, *argv: str, extra: str = "") -> tuple[int, str, str]:
    path = tmp_path / "ecs-ship.yml"
    path.write_text(f"version: 1\nregion: us-east-1\ncluster: prod\nservice: web-svc\n{extra}")
    out = io.StringIO()
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stderr", err)
        code = cli.main(["logs", "--spec", str(path), *argv], out=Reporter(stream=out, environ={}))
    return code, out.getvalue(), err.getvalue()


def test_the_cli_prints_the_lines(fakes: tuple[FakeEcs, FakeLogs], tmp_path: Path) -> None:
    ecs, cwl = fakes
    ecs.add("aaa111")
    cwl.put(stream("aaa111"), datetime.now(UTC).timestamp() - 5, "hello v1 listening on 127.0.0.1:8080")
    code, out, err = run_cli(tmp_path, "--since", "1m")
    assert (code, out, err) == (0, "[aaa111/web] hello v1 listening on 127.0.0.1:8080\n", "")


def test_an_unknown_task_is_exit_2(fakes: tuple[FakeEcs, FakeLogs], tmp_path: Path) -> None:
    ecs, _ = fakes
    ecs.add("aaa111")
    code, out, err = run_cli(tmp_path, "--task", "ffff")
    assert code == 2 and out == ""
    assert "error: failed to find task 'ffff': it is not a task of service web-svc" in err
    assert "fix: pass one of its tasks' ids: aaa111" in err


def test_a_task_definition_without_awslogs_is_exit_2(fakes: tuple[FakeEcs, FakeLogs], tmp_path: Path) -> None:
    ecs, _ = fakes
    ecs.definitions[TD1]["containerDefinitions"] = [{"name": "web", "logConfiguration": {"logDriver": "splunk"}}]
    code, _out, err = run_cli(tmp_path)
    assert code == 2
    assert (
        "failed to read the logs of service web-svc: app:1 has no container logs to a CloudWatch Logs group with the "
        "awslogs driver (web: splunk)" in err
    )
    assert "fix: add a logConfiguration with logDriver awslogs" in err


def test_a_missing_log_group_is_exit_2_naming_it(fakes: tuple[FakeEcs, FakeLogs], tmp_path: Path) -> None:
    ecs, _ = fakes
    ecs.definitions[TD1]["containerDefinitions"] = [{"name": "web", "logConfiguration": awslogs("/ecs/gone")}]
    code, _out, err = run_cli(tmp_path)
    assert code == 2
    assert "failed to read the logs of service web-svc: log group /ecs/gone (us-east-1) does not exist" in err
    assert "aws logs create-log-group --log-group-name /ecs/gone" in err
    # awslogs-create-group: the first task to log makes it, so it is no error.
    ecs.definitions[TD1]["containerDefinitions"][0]["logConfiguration"] = awslogs(
        "/ecs/gone", **{"awslogs-create-group": "true"}
    )
    assert run_cli(tmp_path)[0] == 0


def test_a_multi_service_spec_needs_service(fakes: tuple[FakeEcs, FakeLogs], tmp_path: Path) -> None:
    extra = "services:\n  - {name: api, service: web-svc}\n  - {name: worker, service: worker-svc}\n"
    code, _out, err = run_cli(tmp_path, extra=extra)
    assert code == 2 and "failed to choose a service for logs: the spec has several" in err
    assert "fix: pick one with --service NAME: api, worker" in err
    assert run_cli(tmp_path, "--service", "api", extra=extra)[0] == 0


def test_sigint_ends_a_follow_with_exit_0(fakes: tuple[FakeEcs, FakeLogs], tmp_path: Path) -> None:
    ecs, cwl = fakes
    ecs.add("aaa111")
    polls = [0]
    read: Callable[..., dict[str, Any]] = cwl.filter_log_events

    def filter_log_events(**kw: Any) -> dict[str, Any]:
        if kw.get("logStreamNames"):
            polls[0] += 1
            if polls[0] == 3:
                os.kill(os.getpid(), signal.SIGINT)  # routed to a cancel while the CLI runs (signals.py)
        return read(**kw)

    cwl.filter_log_events = filter_log_events  # type: ignore[method-assign]
    code, _out, err = run_cli(tmp_path, "--follow", extra="wait: {poll_interval: 0.2}\n")
    assert (code, err) == (0, "")
    assert polls[0] >= 3


# --------------------------------------------------------------------------------------------
# the requests, as botocore's models check them
# --------------------------------------------------------------------------------------------
def test_the_requests_are_valid_api_calls() -> None:
    kw: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
    ecs, cwl = boto3.client("ecs", **kw), boto3.client("logs", **kw)
    task = arn("aaa111")
    with Stubber(ecs) as e, Stubber(cwl) as c:
        for status, arns in (("RUNNING", [task]), ("STOPPED", [])):
            e.add_response(
                "list_tasks", {"taskArns": arns}, {"cluster": "prod", "serviceName": "web-svc", "desiredStatus": status}
            )
        e.add_response(
            "describe_tasks",
            {"tasks": [{"taskArn": task, "taskDefinitionArn": TD1, "containers": [{"name": "web", "runtimeId": "r"}]}]},
            {"cluster": "prod", "tasks": [task]},
        )
        e.add_response(
            "describe_task_definition",
            {"taskDefinition": {"containerDefinitions": [{"name": "web", "logConfiguration": awslogs()}]}},
            {"taskDefinition": TD1},
        )
        c.add_response(
            "filter_log_events",
            {"events": [{"logStreamName": stream("aaa111"), "timestamp": MS, "message": "hi", "eventId": "1"}]},
            {"logGroupName": GROUP, "logStreamNames": [stream("aaa111")], "startTime": MS - 600_000},
        )
        t = logtail.Tail(ecs, lambda region: cwl, "us-east-1", "prod", "web-svc")
        assert lines(t, MS - 600_000) == ["[aaa111/web] hi"]
