"""`ecs-ship doctor`'s model: each formula against AWS's documented behaviour, on scripted settings and histories;
and the calls it makes (a Stubber: every call expected, none of them a write)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ecs_ship.aws import Clients
from ecs_ship.doctor import BREAKS, OK, SLOW, History, Settings, TargetGroupSettings, estimate, rows
from ecs_ship.doctor.history import history
from ecs_ship.doctor.model import health_seconds, summary, waves
from ecs_ship.doctor.read import read
from ecs_ship.doctor.report import document, text
from ecs_ship.matcher import accepts, accepts_errors

TG = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-tg/abc"
# AWS's defaults for an ALB target group of a new service: 30 s x 5 healthy checks, 300 s of draining.
DEFAULT_GROUP = TargetGroupSettings(TG, "web-tg", 30, 5, 5, 2, "200", "/health", 300)
DEFAULTS = Settings("c", "web", 1, 100, 200, 0, False, "ROLLING", 0, "FARGATE", (DEFAULT_GROUP,))
MEASURED = History(start=20.0, start_samples=3)


TD = "arn:aws:ecs:us-east-1:1:task-definition/web:3"


def task_definition(**stop_timeouts: int | None) -> dict[str, Any]:
    """DescribeTaskDefinition's answer: a container per keyword, with its stopTimeout (None: not set)."""
    containers = []
    for name, seconds in stop_timeouts.items():
        c: dict[str, Any] = {"name": name, "image": f"r/{name}:1"}
        if seconds is not None:
            c["stopTimeout"] = seconds
        containers.append(c)
    return {"taskDefinition": {"taskDefinitionArn": TD, "family": "web", "containerDefinitions": containers}}


def replaced(arn: str, stop_code: str = "ServiceSchedulerInitiated", **exit_codes: int) -> dict[str, Any]:
    """A task ECS stopped, with its containers' exit codes."""
    return {
        "taskArn": arn,
        "lastStatus": "STOPPED",
        "stopCode": stop_code,
        "stoppedReason": "Scaling activity initiated by (deployment ecs-svc/1)",
        "containers": [{"name": n, "exitCode": code} for n, code in exit_codes.items()],
    }


def by_setting(found: list[Any], prefix: str) -> Any:
    return next(r for r in found if r.setting.startswith(prefix))


def test_a_new_target_is_healthy_after_threshold_checks_the_first_within_an_interval() -> None:
    assert health_seconds(DEFAULT_GROUP) == 135  # 4.5 intervals of 30 s: at most 150, at least 120
    assert health_seconds(replace(DEFAULT_GROUP, interval=10, healthy_threshold=2)) == 15


@pytest.mark.parametrize(
    ("desired", "minimum", "maximum", "expected"),
    [
        (1, 100, 200, (1, False)),  # one new task beside the old: one wave
        (4, 50, 100, (2, True)),  # no room above 4: stop 2, start 2, twice, draining first each time
        (10, 100, 150, (2, False)),  # room for 5 more at a time
        (3, 100, 200, (1, False)),
        (1, 100, 100, None),  # neither room above nor a task that may stop: no deploy ends
        (1, 50, 100, None),  # 50 % of one task rounds up to one
        (0, 100, 200, (0, False)),
    ],
)
def test_waves_follow_the_rounding_ecs_documents(
    desired: int, minimum: int, maximum: int, expected: tuple[int, bool] | None
) -> None:
    assert waves(desired, minimum, maximum) == expected


@pytest.mark.parametrize(
    ("matcher", "errors"),
    [("200", False), ("200-299", False), ("200-399", False), ("200-499", True), ("200,404", True), ("", False)],
)
def test_a_matcher_that_accepts_client_or_server_errors_is_found(matcher: str, errors: bool) -> None:
    assert accepts_errors(matcher) is errors


def test_a_matcher_accepts_the_codes_elbv2_would() -> None:
    assert accepts("200", 200) and not accepts("200", 204) and not accepts("200", 302)
    assert accepts("200-299", 204) and accepts("200,302", 302) and not accepts("200,302", 301)
    assert accepts("", 200) and not accepts("", 404)  # ELBv2's default for HTTP checks: 200


def test_aws_defaults_serve_after_start_and_health_and_complete_after_the_drain() -> None:
    e = estimate(DEFAULTS, MEASURED)
    assert e.serving == 20 + 135
    assert e.stable == 20 + 135 + 300
    assert e.failure_noticed == 20 + 2 * 30  # two failed checks, no grace period


def test_each_slow_setting_is_priced_alone_and_all_changes_together() -> None:
    found = rows(DEFAULTS, MEASURED)
    health = by_setting(found, "health check of web-tg")
    assert health.level == SLOW and health.value == "30 s x 5" and health.suggested.startswith("10 s x 2")
    assert health.saves == 135 - 15
    assert "--health-check-interval-seconds 10 --healthy-threshold-count 2" in health.change.cli
    assert "HealthCheckIntervalSeconds=10" in health.change.api and "interval = 10" in health.change.terraform
    drain = by_setting(found, "deregistration delay of web-tg")
    assert drain.level == SLOW and drain.saves == 270
    assert "Key=deregistration_delay.timeout_seconds,Value=30" in drain.change.cli
    assert by_setting(found, "minimumHealthyPercent").level == OK
    now, after = summary(DEFAULTS, MEASURED)
    assert (now.serving, now.stable) == (155, 455)
    assert (after.serving, after.stable) == (35, 65)


def test_a_service_already_tuned_has_nothing_slow() -> None:
    tuned = replace(
        DEFAULTS,
        circuit_breaker=True,
        target_groups=(replace(DEFAULT_GROUP, interval=10, healthy_threshold=2, deregistration_delay=20),),
    )
    found = rows(tuned, MEASURED)
    assert all(r.level == OK for r in found), found
    now, after = summary(tuned, MEASURED)
    assert now == after


def test_waves_without_room_drain_before_each_start() -> None:
    s = replace(DEFAULTS, desired=4, minimum_healthy_percent=50, maximum_percent=100)
    e = estimate(s, MEASURED)
    assert e.serving == 2 * (20 + 135 + 300)
    row = by_setting(rows(s, MEASURED), "minimumHealthyPercent")
    assert row.level == SLOW and "2 waves, each draining old tasks first" in row.cost
    assert "maximumPercent=200,minimumHealthyPercent=100" in row.change.cli


def test_what_breaks_deploys_is_flagged_with_its_fix() -> None:
    stuck = replace(DEFAULTS, maximum_percent=100, target_groups=(replace(DEFAULT_GROUP, matcher="200-499"),))
    found = rows(stuck, MEASURED)
    broken = {r.setting: r for r in found if r.level == BREAKS}
    assert set(broken) == {
        "minimumHealthyPercent / maximumPercent",
        "success codes of web-tg",
        "deployment circuit breaker",
    }
    assert estimate(stuck, MEASURED).serving is None
    assert "--matcher HttpCode=200-399" in broken["success codes of web-tg"].change.cli
    assert "deploymentCircuitBreaker={enable=true,rollback=true}" in broken["deployment circuit breaker"].change.cli
    lines = text(stuck, MEASURED, found, *summary(stuck, MEASURED))
    assert any(line.startswith("breaks deploys: success codes of web-tg 200-499") for line in lines)
    assert "expected: serving never now" in "\n".join(lines)


def test_a_long_grace_period_delays_noticing_a_broken_release() -> None:
    s = replace(DEFAULTS, grace_period=300)
    assert estimate(s, MEASURED).failure_noticed == 20 + 300
    assert "noticed after 300 s" in by_setting(rows(s, MEASURED), "health check grace period").cost


def test_blue_green_starts_green_at_once_and_completes_after_bake_and_drain() -> None:
    s = replace(DEFAULTS, strategy="BLUE_GREEN", bake_minutes=5, circuit_breaker=False)
    e = estimate(s, MEASURED)
    assert (e.serving, e.stable) == (155, 155 + 300 + 300)
    assert by_setting(rows(s, MEASURED), "deployment circuit breaker").level == OK


def test_without_tasks_to_measure_the_start_is_assumed_and_said_so() -> None:
    e = estimate(DEFAULTS, History())
    assert e.serving == 30 + 135
    lines = text(DEFAULTS, History(), rows(DEFAULTS, History()), *summary(DEFAULTS, History()))
    assert any("no task to measure" in line for line in lines)


def test_history_measures_task_starts_and_completed_deployments_only() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    tasks = [
        {"createdAt": t0, "startedAt": t0 + timedelta(seconds=18)},
        {"createdAt": t0, "startedAt": t0 + timedelta(seconds=24)},
        {"createdAt": t0},  # still starting: nothing to measure
    ]
    deployments = [
        {"status": "SUCCESSFUL", "startedAt": t0, "finishedAt": t0 + timedelta(seconds=400)},
        {
            "status": "SUCCESSFUL",
            "startedAt": t0 + timedelta(hours=1),
            "finishedAt": t0 + timedelta(hours=1, seconds=60),
        },
        {"status": "ROLLBACK_SUCCESSFUL", "startedAt": t0, "finishedAt": t0 + timedelta(seconds=900)},
    ]
    h = history(tasks, deployments)
    assert h.start == 21 and h.start_samples == 2
    assert h.completed == (60, 400)  # newest first


def test_the_json_has_every_figure_and_what_breaks() -> None:
    found = rows(DEFAULTS, MEASURED)
    doc = document(DEFAULTS, MEASURED, found, *summary(DEFAULTS, MEASURED))
    assert doc["expected"]["now"] == {"serving": 155, "stable": 455, "failure_noticed": 80}
    assert doc["expected"]["with_changes"] == {"serving": 35, "stable": 65}
    assert doc["breaks"] == ["deployment circuit breaker"]
    assert doc["settings"][0]["change"]["cli"].startswith("aws elbv2 modify-target-group")


def _clients() -> tuple[Any, Any]:
    kw: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
    return boto3.client("ecs", **kw), boto3.client("elbv2", **kw)


def test_doctor_reads_only() -> None:
    """The calls doctor makes, in order; a write would be an unexpected call and fail the test."""
    ecs, elbv2 = _clients()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    service = {
        "serviceName": "web",
        "status": "ACTIVE",
        "desiredCount": 2,
        "launchType": "FARGATE",
        "taskDefinition": TD,
        "loadBalancers": [{"targetGroupArn": TG, "containerName": "web", "containerPort": 8080}],
        "deploymentConfiguration": {
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        },
    }
    group = {
        "TargetGroupArn": TG,
        "TargetGroupName": "web-tg",
        "HealthCheckIntervalSeconds": 30,
        "HealthCheckTimeoutSeconds": 5,
        "HealthyThresholdCount": 5,
        "UnhealthyThresholdCount": 2,
        "Matcher": {"HttpCode": "200"},
        "HealthCheckPath": "/health",
    }
    task, gone, old = (f"arn:aws:ecs:us-east-1:1:task/c/{t}" for t in ("t1", "t0", "t-old"))
    running = {"cluster": "c", "serviceName": "web", "desiredStatus": "RUNNING", "maxResults": 100}
    sd = "arn:aws:ecs:us-east-1:1:service-deployment/c/web/d1"
    with Stubber(ecs) as s_ecs, Stubber(elbv2) as s_elb:
        s_ecs.add_response("describe_services", {"services": [service], "failures": []})
        s_elb.add_response("describe_target_groups", {"TargetGroups": [group]}, {"TargetGroupArns": [TG]})
        s_elb.add_response(
            "describe_target_group_attributes",
            {"Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "120"}]},
            {"TargetGroupArn": TG},
        )
        s_ecs.add_response("describe_task_definition", task_definition(web=10, sidecar=None), {"taskDefinition": TD})
        image = [{"name": "web", "image": "r/web:1", "imageDigest": "sha256:1"}]
        s_ecs.add_response("list_tasks", {"taskArns": [task]}, running)
        s_ecs.add_response(
            "describe_tasks",
            {
                "tasks": [
                    {
                        "taskArn": task,
                        "lastStatus": "RUNNING",
                        "createdAt": t0,
                        "startedAt": t0 + timedelta(seconds=25),
                        "containers": image,
                    }
                ],
                "failures": [],
            },
        )
        s_ecs.add_response("list_tasks", {"taskArns": [gone, old]}, {**running, "desiredStatus": "STOPPED"})
        s_ecs.add_response(
            "describe_tasks",
            {
                "tasks": [
                    {
                        "taskArn": gone,
                        "lastStatus": "STOPPED",
                        "stoppedReason": f"Task failed ELB health checks in (target-group {TG})",
                        "startedAt": t0,
                        "stoppingAt": t0 + timedelta(seconds=40),
                        "containers": image,
                    },
                    replaced(old, web=137, sidecar=0),
                ],
                "failures": [],
            },
        )
        s_ecs.add_response(
            "list_service_deployments",
            {"serviceDeployments": [{"serviceDeploymentArn": sd}]},
            {"cluster": "c", "service": "web", "status": ["SUCCESSFUL"], "maxResults": 10},
        )
        s_ecs.add_response(
            "describe_service_deployments",
            {
                "serviceDeployments": [
                    {
                        "serviceDeploymentArn": sd,
                        "status": "SUCCESSFUL",
                        "startedAt": t0,
                        "finishedAt": t0 + timedelta(seconds=290),
                    }
                ],
                "failures": [],
            },
        )
        settings, h = read(Clients("us-east-1", ecs, elbv2), "c", "web")
        s_ecs.assert_no_pending_responses()
        s_elb.assert_no_pending_responses()
    assert settings.desired == 2 and settings.circuit_breaker and settings.launch_type == "FARGATE"
    assert settings.target_groups[0].deregistration_delay == 120 and settings.target_groups[0].interval == 30
    assert h.start == 25 and h.completed == (290,)
    assert h.stopped_before_ready == (40,)  # the image that serves now was stopped 40 s after it started
    assert settings.stop_timeouts == (("web", 10), ("sidecar", None)) and settings.stop_timeout == 30
    assert h.stops == 1 and h.killed == ("web",)  # the task a deploy replaced; web was killed after stopTimeout


def test_without_service_deployments_recent_deploys_are_timed_from_the_service_events() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def event(seconds: float, message: str) -> dict[str, object]:
        return {"createdAt": t0 + timedelta(seconds=seconds), "message": f"(service web) {message}"}

    service = {
        # DescribeServices lists events newest first; the current deployment is still listed with its start.
        "events": [
            event(900, "(deployment ecs-svc/3) deployment completed."),
            event(880, "has started 2 tasks: (task c) (task d)."),
            event(500, "has reached a steady state."),
            event(450, "(deployment ecs-svc/2) deployment completed."),
            event(320, "has started 1 tasks: (task b)."),
            event(300, "has started 1 tasks: (task a)."),  # the deploy's first task: where it began
            event(100, "(deployment ecs-svc/1) deployment completed."),  # nothing before it says when it began
        ],
        "deployments": [{"id": "ecs-svc/3", "status": "PRIMARY", "createdAt": t0 + timedelta(seconds=860)}],
    }
    h = history([], None, service)
    assert h.completed == (40, 150)  # newest first: ecs-svc/3 from its createdAt, ecs-svc/2 from its first task
    assert h.completed_from == "its events"
    lines = text(DEFAULTS, h, rows(DEFAULTS, h), *summary(DEFAULTS, h))
    assert any("the last 2 deploy(s) took 95 s to complete (median, from its events)" in line for line in lines)
    # Where ECS lists service deployments, they are the record, even an empty one.
    assert history([], [], service).completed == () and history([], [], service).completed_from is None


def test_a_role_that_may_not_list_service_deployments_gets_recent_deploys_from_the_events() -> None:
    ecs, elbv2 = _clients()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    service = {
        "serviceName": "web",
        "status": "ACTIVE",
        "desiredCount": 1,
        "launchType": "FARGATE",
        "taskDefinition": TD,
        "deployments": [{"id": "ecs-svc/9", "status": "PRIMARY", "createdAt": t0}],
        "events": [
            {
                "createdAt": t0 + timedelta(seconds=75),
                "message": "(service web) (deployment ecs-svc/9) deployment completed.",
            }
        ],
    }
    with Stubber(ecs) as s_ecs:
        s_ecs.add_response("describe_services", {"services": [service], "failures": []})
        s_ecs.add_response("describe_task_definition", task_definition(web=None))
        for status in ("RUNNING", "STOPPED"):
            s_ecs.add_response(
                "list_tasks",
                {"taskArns": []},
                {"cluster": "c", "serviceName": "web", "desiredStatus": status, "maxResults": 100},
            )
        s_ecs.add_client_error("list_service_deployments", "AccessDeniedException", "not authorized")
        _, h = read(Clients("us-east-1", ecs, elbv2), "c", "web")
        s_ecs.assert_no_pending_responses()
    assert h.completed == (75,) and h.completed_from == "its events"


def test_a_grace_period_shorter_than_the_app_s_start_breaks_deploys() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ok = [{"name": "web", "imageDigest": "sha256:ok"}]

    def task(image: list[dict[str, str]], lived: float, reason: str) -> dict[str, Any]:
        stopping = t0 + timedelta(seconds=lived)
        return {"startedAt": t0, "stoppingAt": stopping, "stoppedReason": reason, "containers": image}

    running = [{"lastStatus": "RUNNING", "containers": ok}]
    elb = f"Task failed ELB health checks in (target-group {TG})"
    stopped = [
        task(ok, 35, elb),
        task(ok, 28, elb),
        task([{"name": "web", "imageDigest": "sha256:broken"}], 20, elb),  # a broken release: not this evidence
        task(ok, 3600, "Scaling activity initiated by (deployment ecs-svc/1)"),  # stopped by a deploy: not either
    ]
    h = history(running, [], None, stopped)
    assert h.stopped_before_ready == (28, 35)
    s = replace(DEFAULTS, grace_period=30)
    grace = next(r for r in rows(s, h) if r.setting == "health check grace period")
    assert grace.level == BREAKS and grace.value == "30 s"
    assert "2 task(s) of the image serving now stopped for failing ELB health checks 35 s" in grace.cost
    assert grace.suggested == "70 s (twice as long as they lived)"
    assert grace.change is not None and "--health-check-grace-period-seconds 70" in grace.change.cli
    # A grace period already longer than they lived: the evidence is of the past.
    assert next(r for r in rows(replace(s, grace_period=120), h) if "grace" in r.setting).level == OK
    # Without a task of the same image serving, tasks stopped by health checks say nothing of the grace period.
    assert history([], [], None, stopped).stopped_before_ready == ()


def test_a_health_check_path_the_image_refuses_breaks_deploys_and_one_it_never_answered_is_not_judged() -> None:
    from ecs_ship.doctor.model import PathCheck

    name = DEFAULT_GROUP.name

    def path_row(check: PathCheck) -> Any:
        return next(r for r in rows(DEFAULTS, MEASURED, [check]) if r.setting == f"health check path of {name}")

    served = path_row(PathCheck(name, "/health", "200", True, "HTTP 200", True))
    assert served.level == OK and "answers HTTP 200" in served.cost
    refused = path_row(PathCheck(name, "/healthz", "200", False, "HTTP 404", True))
    assert refused.level == BREAKS and refused.value == "/healthz"
    assert refused.why is not None and "HTTP 404, not HTTP 200" in refused.why
    silent = path_row(PathCheck(name, "/health", "200", False, "ConnectionError", False))
    assert silent.level == OK and silent.cost.startswith("not checked")
    # A check of another group is not this group's row.
    assert not [
        r for r in rows(DEFAULTS, MEASURED, [PathCheck("other", "/", "200", False, "x", True)]) if "path" in r.setting
    ]


def test_an_app_that_ignores_sigterm_costs_its_stop_timeout_on_every_old_task() -> None:
    """ECS sends SIGTERM once an old task has drained and kills what still runs stopTimeout seconds later."""
    killed = replace(MEASURED, stops=3, killed=("web", "web", "web"))
    s = replace(DEFAULTS, stop_timeouts=(("web", None),))
    base, now = estimate(s, MEASURED), estimate(s, killed)
    assert now.serving == base.serving  # the new tasks serve before any old one stops
    assert base.stable is not None and now.stable == base.stable + 30  # ECS's default, waited out
    row = by_setting(rows(s, killed), "stop timeout")
    assert row.level == SLOW and row.value == "30 s (ECS's default)"
    assert "web ignored SIGTERM and was killed (exit 137) in 3 of 3 task(s)" in row.cost
    assert row.saves == 25  # down to 5 s
    assert "stopTimeout=5" in row.change.api and '"stopTimeout": 5 in web' in row.change.cli
    # With every change applied, the old tasks still wait out the 5 s suggested.
    (_, after), (_, after_exiting) = summary(s, killed), summary(s, MEASURED)
    assert after.stable is not None and after_exiting.stable is not None
    assert after.stable == after_exiting.stable + 5


def test_with_no_room_to_start_first_every_wave_waits_for_the_old_tasks_to_exit() -> None:
    s = replace(DEFAULTS, desired=2, minimum_healthy_percent=50, maximum_percent=100, stop_timeouts=(("web", 20),))
    killed = replace(MEASURED, stops=1, killed=("web",))
    base, now = estimate(s, MEASURED), estimate(s, killed)
    assert base.serving is not None and now.serving == base.serving + 2 * 20  # two waves, each stopping first


def test_an_app_that_exits_on_sigterm_costs_nothing_and_no_stop_is_not_judged() -> None:
    s = replace(DEFAULTS, stop_timeouts=(("web", 120),))
    exits = replace(MEASURED, stops=2)
    assert estimate(s, exits) == estimate(s, MEASURED)
    row = by_setting(rows(s, exits), "stop timeout")
    assert row.level == OK and row.value == "120 s" and "exited on SIGTERM" in row.cost
    assert "not measured" in by_setting(rows(s, MEASURED), "stop timeout").cost


def test_only_tasks_ecs_stopped_and_killed_for_want_of_sigterm_count() -> None:
    from ecs_ship.doctor.history import killed_at_stop

    oom = replaced("t3", web=137)
    oom["containers"][0]["reason"] = "OutOfMemoryError: Container killed due to memory usage"
    stopped = [
        replaced("t1", web=137, sidecar=137),  # one task: counted once
        replaced("t2", web=0),
        oom,  # the kernel's kill, not ECS's
        replaced("t4", "EssentialContainerExited", web=137),  # it exited by itself
        {**replaced("t5"), "containers": [{"name": "web"}]},  # never ran: no exit code to judge by
    ]
    assert killed_at_stop(stopped) == (3, ["web"])
