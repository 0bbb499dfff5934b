"""`ecs-ship logs` through the real CLI against the sandbox: the hello app's lines from CloudWatch Logs prefixed by
task and container, `--task` for one task, an unknown task as bad input, and `--follow` showing the tasks a
deploy starts after it began, until SIGINT ends it with exit 0."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.conftest import App
from tests.e2e.conftest import Run, ecs_ship, poll, spec_for, start_ecs_ship, writes
from tests.sandbox.bootstrap import World
from tests.sandbox.sandbox import Sandbox

LINE = re.compile(r"\[([0-9a-f]{32})/web\] (.*)")


def _task_ids(ecs: Any, w: World) -> set[str]:
    return {a.rsplit("/", 1)[-1] for a in ecs.list_tasks(cluster=w.cluster, serviceName=w.service)["taskArns"]}


def _by_task(out: str) -> dict[str, list[str]]:
    """Every line must carry its task and container; messages grouped by task id."""
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        m = LINE.fullmatch(line)
        assert m, f"unprefixed line {line!r} in:\n{out}"
        found.setdefault(m.group(1), []).append(m.group(2))
    return found


def test_logs_shows_each_task_lines_and_task_picks_one(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world(desired_count=2)
    app = make_app()
    app.write_spec(spec_for(w))
    ecs = sandbox.clients()["ecs"]
    ids = _task_ids(ecs, w)
    assert len(ids) == 2, ids
    mark = sandbox.ledger.mark()

    def started(run: Run) -> bool:
        return run.code != 0 or all(
            any(m.startswith("hello v1 listening on 127.0.0.1:") for m in _by_task(run.out).get(i, [])) for i in ids
        )

    # The containers' output reaches CloudWatch as they write it: read until each task's startup line is there.
    run = poll(lambda: ecs_ship(sandbox, "logs", "--spec", str(app.spec)), started, 60, "both tasks' startup lines")
    assert run.code == 0, run.text
    assert set(_by_task(run.out)) == ids, run.out
    assert writes(sandbox, mark) == []  # read-only

    one, other = sorted(ids)
    only = ecs_ship(sandbox, "logs", "--spec", str(app.spec), "--task", one, "--timestamps")
    assert only.code == 0, only.text
    stamped = [re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (.*)", line) for line in only.out.splitlines()]
    assert all(stamped), only.out
    by_task = _by_task("\n".join(m.group(1) for m in stamped if m))
    assert list(by_task) == [one] and any("hello v1 listening" in m for m in by_task[one]), only.out

    # A beginning of the id is enough when no other task shares it.
    prefix = next(other[:n] for n in range(4, 33) if not one.startswith(other[:n]))
    assert list(_by_task(ecs_ship(sandbox, "logs", "--spec", str(app.spec), "--task", prefix).out)) == [other]

    unknown = "0" * 32
    bad = ecs_ship(sandbox, "logs", "--spec", str(app.spec), "--task", unknown)
    assert bad.code == 2 and bad.out == "", bad.text
    assert f"failed to find task '{unknown}': it is not a task of service {w.service}" in bad.err, bad.err
    assert "fix: pass one of its tasks' ids: " in bad.err and one in bad.err and other in bad.err, bad.err


def test_follow_shows_tasks_a_deploy_starts_and_ends_on_sigint_with_exit_0(
    sandbox: Sandbox, make_world: Callable[..., World], make_app: Callable[[], App]
) -> None:
    w = make_world()
    app = make_app()
    app.write_spec(spec_for(w, build_args={"VERSION": "v2"}))
    ecs = sandbox.clients()["ecs"]
    old = _task_ids(ecs, w)
    proc = start_ecs_ship(sandbox, "logs", "--spec", str(app.spec), "--follow")
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        poll(lambda: list(lines), lambda ls: any("hello v1 listening" in x for x in ls), 60, "the v1 task's line")
        following_since = time.time()
        deploy = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
        assert deploy.code == 0, deploy.text

        new = _task_ids(ecs, w) - old
        assert new, "the deploy started no task"
        tasks = ecs.describe_tasks(cluster=w.cluster, tasks=sorted(new))["tasks"]
        assert all(t["taskDefinitionArn"].endswith(":2") for t in tasks), tasks
        assert all(t["startedAt"].timestamp() > following_since for t in tasks), tasks
        wanted = {f"[{i}/web] hello v2 listening on 127.0.0.1:" for i in new}
        poll(
            lambda: list(lines),
            lambda ls: all(any(x.startswith(p) for x in ls) for p in wanted),
            30,
            "the new revision's tasks' startup lines",
        )
        assert len([x for x in lines if "hello v1 listening" in x]) == 1, lines  # each line once

        proc.send_signal(signal.SIGINT)
        began = time.monotonic()
        code = proc.wait(timeout=15)
        assert code == 0 and time.monotonic() - began < 5, (code, time.monotonic() - began)
        reader.join(timeout=5)
        assert proc.stderr is not None
        assert proc.stderr.read() == ""
        assert all(LINE.fullmatch(x) for x in lines), lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
