"""The job summary's phases (where the minutes went) and its first sentence (what happened, what serves now, what
to do next)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ecs_ship.summary import headline, phases

SVC: Any = SimpleNamespace(service="web", name="web")
TD = "arn:aws:ecs:us-east-1:1:task-definition/app:"


def test_each_stage_is_a_phase_and_the_watch_is_split_at_its_milestones() -> None:
    stages = [
        ("preparing", 100.0),
        ("running the pre-flight checks", 100.2),
        ("building r/web:abc", 100.6),
        ("building r/worker:abc", 110.6),  # two images: one phase
        ("registering and updating the service", 115.6),
        ("running pre_deploy task migrate", 115.8),
        ("watching the deployment", 125.8),
    ]
    milestones = {"first task placed": 1.0, "first task running": 4.0, "first health check": 6.0, "serving": 16.0}
    got = phases(stages, milestones, now=142.8)
    assert [name for name, _ in got] == [
        "preparation",
        "pre-flight checks",
        "build and push",
        "register and update",
        "pre_deploy task migrate",
        "placement",
        "start",
        "first health check",
        "healthy",
        "after serving",  # the consistency and smoke checks
    ]
    assert dict(got) == pytest.approx(
        {
            "preparation": 0.2,
            "pre-flight checks": 0.4,
            "build and push": 15.0,
            "register and update": 0.2,
            "pre_deploy task migrate": 10.0,
            "placement": 1.0,
            "start": 3.0,
            "first health check": 2.0,
            "healthy": 10.0,
            "after serving": 1.0,
        }
    )


def test_a_failed_watch_ends_in_the_time_until_the_verdict_then_the_rollback() -> None:
    stages = [("watching the deployment", 0.0), ("rolling back", 30.0)]
    got = phases(stages, {"first task placed": 2.0, "first task running": 5.0}, now=50.0)
    assert got == [("placement", 2.0), ("start", 3.0), ("until the verdict", 25.0), ("rollback", 20.0)]


@pytest.mark.parametrize(
    ("result", "words"),
    [
        (
            {"outcome": "deployed", "task-definition-arn": TD + "5", "service-url": "https://web.example.com"},
            ["Deployed `app:5` to web: it serves at https://web.example.com. Nothing to do."],
        ),
        (
            {
                "outcome": "failed, rolled back",
                "task-definition-arn": TD + "5",
                "previous-task-definition-arn": TD + "4",
                "serving-task-definition-arn": TD + "3",
                "diagnosis": ["target 10.0.0.1:8080 in web-tg: unhealthy (Target.ResponseCodeMismatch)"],
            },
            ["`app:5` failed (target 10.0.0.1:8080", "`app:3` serves again", "Fix the cause below"],
        ),
        (
            {"outcome": "failed, rollback unhealthy", "task-definition-arn": TD + "5", "diagnosis": ["crash"]},
            ["nothing may be serving", "`ecs-ship status`"],
        ),
        (
            {
                "outcome": "failed, left as is (on_failure: stop)",
                "task-definition-arn": TD + "5",
                "previous-task-definition-arn": TD + "4",
            },
            ["left on it as asked", "`ecs-ship rollback` returns it to `app:4`"],
        ),
        (
            {
                "outcome": "failed before the switch: the service still runs app:4",
                "previous-task-definition-arn": TD + "4",
                "diagnosis": ["pre_deploy task migrate exited 1"],
            },
            ["Nothing changed: web still runs `app:4` (pre_deploy task migrate exited 1)"],
        ),
    ],
)
def test_the_first_sentence_says_what_happened_what_serves_and_what_next(
    result: dict[str, Any], words: list[str]
) -> None:
    text = headline(SVC, result)
    for w in words:
        assert w in text, (w, text)


def test_the_json_report_has_each_service_s_outputs_milestones_and_phases(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import json

    from ecs_ship.context import Context
    from ecs_ship.gha import Reporter
    from ecs_ship.summary import write_report

    ctx = Context(args=None, out=Reporter(stream=io.StringIO(), environ={}))
    ctx.result("web").update(
        {
            "outcome": "failed, rolled back",
            "task-definition-arn": TD + "8",
            "previous-task-definition-arn": TD + "7",
            "serving-task-definition-arn": TD + "7",
            "milestones": {"first task placed": 1.04, "serving": 40.26},
            "phases": {"preparation": 1.23, "rollback": 30.0},
        }
    )
    path = tmp_path / "out" / "run.json"
    write_report(ctx, str(path))
    doc = json.loads(path.read_text())["services"]["web"]
    assert doc["serving-task-definition-arn"] == TD + "7" and doc["outcome"] == "failed, rolled back"
    assert doc["milestones"] == {"first task placed": 1.0, "serving": 40.3}
    assert doc["phases"] == {"preparation": 1.2, "rollback": 30.0}
    assert doc["service-url"] is None  # every key is there, None when the run had none

    write_report(ctx, str(tmp_path / "out" / "run.json" / "x"))  # a file where a folder must be: said, not raised
    assert "failed to write the JSON report" in capsys.readouterr().err
