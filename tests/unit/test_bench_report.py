"""The benchmark's pure parts: truth from fake facts, a run's record from fake processes and calls, summaries and
the markdown table. No sandbox: benchmarks run in `make bench`."""

from __future__ import annotations

import pytest

from bench.judge import ProcessResult, RunInput, judge, worst_code
from bench.records import RunRecord, ServiceOutcome, summarize, summarize_all
from bench.report import Skipped, head_to_head, head_to_head_lines, main_table, markdown, multi_table
from bench.truth import (
    DEPLOYMENT_COMPLETED,
    FAILED_LINE,
    NEW_TARGET_HEALTHY,
    NEW_TARGET_UNHEALTHY,
    NEW_TASK_STOPPED,
    Line,
    ServiceRef,
    first_line,
    truth_at,
)
from tests.sandbox.ledger import THROTTLING, Call, Fact

TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/a-tg/1"
OTHER_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/b-tg/2"
SVC = ServiceRef("s00", "a-cluster", "a-svc", TG)
T0 = 1000.0


def task(cluster: str, n: int) -> str:
    return f"arn:aws:ecs:us-east-1:123456789012:task/{cluster}/{n:032x}"


def world_facts() -> list[Fact]:
    """The old task and target came up before the start; a new one after, in our service and in another."""
    return [
        Fact(T0 - 50, "task_started", task("a-cluster", 1), "d-old"),
        Fact(T0 - 49, "target_initial", f"{TG}|127.0.0.1:4001"),
        Fact(T0 - 45, "target_healthy", f"{TG}|127.0.0.1:4001"),
        Fact(T0 - 40, "deployment_completed", "d-old"),
        Fact(T0 + 1, "task_started", task("a-cluster", 2), "d-new"),
        Fact(T0 + 1.5, "target_initial", f"{TG}|127.0.0.1:4002"),
        Fact(T0 + 2, "target_healthy", f"{OTHER_TG}|127.0.0.1:5002"),  # another service's: not ours
        Fact(T0 + 4, "target_healthy", f"{TG}|127.0.0.1:4002"),
        Fact(T0 + 5, "target_draining", f"{TG}|127.0.0.1:4001"),
        Fact(T0 + 6, "task_stopped", task("a-cluster", 1)),  # the old task: not "new task stopped"
        Fact(T0 + 9, "deployment_completed", "d-new"),
    ]


# --- truth -----------------------------------------------------------------------------------------------------------
def test_new_target_healthy_ignores_old_targets_and_other_target_groups() -> None:
    assert truth_at(world_facts(), NEW_TARGET_HEALTHY, SVC, T0) == T0 + 4


def test_an_old_target_turning_unhealthy_after_the_start_is_not_the_truth() -> None:
    facts = [
        *world_facts(),
        Fact(T0 + 3, "target_unhealthy", f"{TG}|127.0.0.1:4001", "Target.Timeout"),
        Fact(T0 + 7, "target_unhealthy", f"{TG}|127.0.0.1:4002", "Target.ResponseCodeMismatch"),
    ]
    assert truth_at(facts, NEW_TARGET_UNHEALTHY, SVC, T0) == T0 + 7


def test_new_task_stopped_only_counts_tasks_started_after_the_start_in_the_cluster() -> None:
    facts = [
        *world_facts(),
        Fact(T0 + 7, "task_stopped", task("b-cluster", 3)),
        Fact(T0 + 8, "task_stopped", task("a-cluster", 2), "Essential container in task exited"),
    ]
    assert truth_at(facts, NEW_TASK_STOPPED, SVC, T0) == T0 + 8


def test_deployment_completed_is_ours_only() -> None:
    assert truth_at(world_facts(), DEPLOYMENT_COMPLETED, SVC, T0, ["d-new"]) == T0 + 9
    assert truth_at(world_facts(), DEPLOYMENT_COMPLETED, SVC, T0, ["d-old"]) is None  # before the start


def test_nothing_happened_is_none() -> None:
    assert truth_at(world_facts()[:4], NEW_TARGET_HEALTHY, SVC, T0) is None


def test_first_line_by_label() -> None:
    lines = [
        Line(T0 + 3, "stdout", "10:00:03 [s01] deployment failed; why:"),
        Line(T0 + 2, "stdout", "10:00:02 [s00] target 127.0.0.1:4002 in a-tg: unhealthy"),
        Line(T0 + 5, "stdout", "10:00:05 [s00] deployment failed; why:"),
    ]
    assert first_line(lines, FAILED_LINE) == T0 + 3
    assert first_line(lines, FAILED_LINE, "s00") == T0 + 5
    assert first_line(lines, FAILED_LINE, "s02") is None


# --- one run ---------------------------------------------------------------------------------------------------------
def calls() -> list[Call]:
    return [
        Call(T0 - 10, "ecs", "DescribeServices"),  # the harness, before the start
        Call(T0 + 0.5, "ecs", "DescribeServices"),
        Call(T0 + 0.8, "ecs", "RegisterTaskDefinition"),
        Call(T0 + 0.9, "ecs", "UpdateService"),
        Call(T0 + 2, "ecs", "DescribeServices", THROTTLING),
        Call(T0 + 3, "elbv2", "DescribeTargetHealth"),
        Call(T0 + 20, "ecs", "DescribeServices"),  # after the exit
    ]


def test_judge_healthy_ecs_ship_run() -> None:
    proc = ProcessResult(
        "ecs-ship",
        T0,
        T0 + 5,
        0,
        (
            Line(T0 + 2.1, "stderr", "botocore: ThrottlingException ... Rate exceeded"),
            Line(T0 + 4.5, "stdout", "serving: every new task is healthy in its target groups (3.9s)"),
        ),
    )
    run = RunInput("healthy", "ecs-ship", 0, NEW_TARGET_HEALTHY, False, (SVC,), per_service_lines=False)
    r = judge(run, [proc], calls(), world_facts(), {})
    assert r.code == 0
    assert r.seconds == 5
    assert r.calls == 5 and r.calls_per_second == 1.0
    assert r.throttled_calls == 1 and r.throttling_surfaced
    assert r.throttled_by_action == {"DescribeServices": 1}
    assert r.first_write == pytest.approx(0.8)
    assert r.services == [
        ServiceOutcome("s00", 4.0, 5.0, 1.0)
    ]  # noticed at the exit: a lone service's line is not used
    # Wall time 5 s, of which the rollout's own 3.2 s (first write at 0.8 s, truth at 4 s): 1.8 s is the runner's.
    assert r.overhead is not None and abs(r.overhead - 1.8) < 1e-9
    assert r.by_action == {
        "DescribeServices": 2,
        "RegisterTaskDefinition": 1,
        "UpdateService": 1,
        "DescribeTargetHealth": 1,
    }


def test_judge_failure_uses_the_failed_line_and_keeps_the_exit_after_rollback() -> None:
    facts = [*world_facts(), Fact(T0 + 3, "target_unhealthy", f"{TG}|127.0.0.1:4002", "Target.ResponseCodeMismatch")]
    proc = ProcessResult(
        "ecs-ship", T0, T0 + 12, 1, (Line(T0 + 4.2, "stdout", "10:00:04 [a-svc] deployment failed; why:"),)
    )
    run = RunInput("broken-health", "ecs-ship", 0, NEW_TARGET_UNHEALTHY, True, (SVC,), per_service_lines=False)
    r = judge(run, [proc], calls(), facts, {})
    assert r.code == 1 and r.seconds == 12
    assert r.failure_noticed is not None and abs(r.failure_noticed - 4.2) < 1e-9
    lag = r.services[0].lag
    assert lag is not None and abs(lag - 1.2) < 1e-9
    assert r.overhead is None  # the exit includes a rollback: not the runner's overhead
    assert not r.throttling_surfaced


def test_judge_a_peer_at_the_cap_never_noticed_and_an_exit_0_on_a_failure_noticed_nothing() -> None:
    facts = [*world_facts(), Fact(T0 + 3, "target_unhealthy", f"{TG}|127.0.0.1:4002", "x")]
    run = RunInput("broken-health", "ecs deploy", 0, NEW_TARGET_UNHEALTHY, True, (SVC,), per_service_lines=False)
    capped = judge(run, [ProcessResult("ecs deploy s00", T0, T0 + 60, None, (), "s00")], calls(), facts, {})
    assert capped.code is None and capped.services[0].lag is None and capped.services[0].truth == 3
    fooled = judge(run, [ProcessResult("ecs deploy s00", T0, T0 + 30, 0, (), "s00")], calls(), facts, {})
    assert fooled.code == 0 and fooled.services[0].lag is None


def test_judge_several_services_one_process_per_service_and_a_scaled_clock() -> None:
    other = ServiceRef("s01", "a-cluster", "b-svc", OTHER_TG)
    facts = [*world_facts(), Fact(T0 + 1.2, "target_initial", f"{OTHER_TG}|127.0.0.1:5002")]
    facts.sort(key=lambda f: f.at)
    procs = [
        ProcessResult("aws s00", T0, T0 + 10, 0, (), "s00"),
        ProcessResult("aws s01", T0 + 0.1, T0 + 6, 0, (), "s01"),
    ]
    run = RunInput("aws-timings", "aws", 0, NEW_TARGET_HEALTHY, False, (SVC, other), False, scale=10.0)
    r = judge(run, procs, calls(), facts, {})
    assert r.processes == 2 and r.seconds == 10
    assert [(s.name, s.lag) for s in r.services] == [("s00", 60.0), ("s01", 40.0)]


def test_judge_ecs_ship_several_services_reads_each_serving_line() -> None:
    other = ServiceRef("s01", "a-cluster", "b-svc", OTHER_TG)
    facts = sorted([*world_facts(), Fact(T0 + 1.2, "target_initial", f"{OTHER_TG}|127.0.0.1:5002")], key=lambda f: f.at)
    lines = (
        Line(T0 + 2.5, "stdout", "10:00:02 [s01] serving: every new task is healthy (2.0s)"),
        Line(T0 + 4.6, "stdout", "10:00:04 [s00] serving: every new task is healthy (4.1s)"),
    )
    run = RunInput("4svc", "ecs-ship", 0, NEW_TARGET_HEALTHY, False, (SVC, other), per_service_lines=True)
    r = judge(run, [ProcessResult("ecs-ship", T0, T0 + 6, 0, lines)], calls(), facts, {})
    lags = [round(s.lag or 0, 6) for s in r.services]
    assert lags == [0.6, 0.5]


def test_worst_code() -> None:
    assert worst_code([0, 0]) == 0
    assert worst_code([0, 1]) == 1
    assert worst_code([1, None]) is None


# --- summaries and the table -----------------------------------------------------------------------------------------
def record(scenario: str, tool: str, seconds: float, lags: list[float | None], code: int | None = 0) -> RunRecord:
    return RunRecord(
        scenario=scenario,
        tool=tool,
        run=0,
        code=code,
        seconds=seconds,
        services=[ServiceOutcome(f"s{i:02d}", 1.0, None, lag) for i, lag in enumerate(lags)],
        calls=int(seconds * 2),
        calls_per_second=2.0,
        throttled_calls=1 if tool == "ecs-ship" else 0,
        throttling_surfaced=False,
        first_write=0.5,
    )


def test_summarize_medians_max_and_never_noticed() -> None:
    s = summarize(
        [
            record("broken-health", "ecs deploy", 10, [2.0]),
            record("broken-health", "ecs deploy", 60, [None], code=None),
            record("broken-health", "ecs deploy", 12, [4.0]),
        ]
    )
    assert s.runs == 3 and s.exits == [0, None, 0]
    assert s.seconds_median == 12
    assert s.lag_median == 3.0 and s.lag_max == 4.0
    assert s.never_noticed == 1 and s.lag_count == 3
    assert s.first_write_median == 0.5
    assert s.lag_unit == "s"


def test_summarize_per_service_and_the_wall_ratio_against_one_service() -> None:
    summaries = summarize_all(
        [
            record("1svc", "ecs-ship", 4, [1.0]),
            record("4svc", "ecs-ship", 6, [1.0, 2.0, 3.0, 5.0]),
            record("4svc", "ecs-ship", 8, [1.0, 1.0, 1.0, 9.0]),
        ],
        {"4svc": "1svc"},
    )
    four = summaries[1]
    assert four.services == 4 and four.seconds_median == 7
    assert four.per_service["s03"] == {"lag_median": 7.0, "lag_max": 9.0}
    assert four.wall_ratio_vs_one == 7 / 4
    assert summaries[0].wall_ratio_vs_one is None


def test_the_world_s_own_slowdown_is_told_apart_from_the_tool_s() -> None:
    """The last truth of several services against one service's: what the world took longer by itself; and when
    the tool's last UpdateService went out."""
    one = record("1svc", "ecs-ship", 4, [1.0])
    one.services[0].truth = 3.0
    many = [record("4svc", "ecs-ship", 8, [1.0] * 4) for _ in range(2)]
    for r, last in zip(many, (5.0, 7.0), strict=True):
        r.services[2].truth = last
        r.last_switch = last - 4
    summaries = summarize_all([one, *many], {"4svc": "1svc"})
    four = summaries[1]
    assert four.last_truth_median == 6.0 and four.truth_ratio_vs_one == 2.0 and four.last_switch_median == 2.0
    rows = multi_table(summaries)
    assert rows[2] == "| 4svc | ecs-ship | 4 | 8.0 s | 2.00x | 2.0 s | 6.0 s | 2.00x | 2.0 | 2 / 0 of 2 runs |"


def test_markdown_table_says_still_waiting_at_the_cap_and_never_noticed() -> None:
    summaries = summarize_all(
        [
            record("broken-health", "ecs-ship", 8, [1.0], code=1),
            record("broken-health", "aws wait services-stable", 60, [None], code=None),
        ]
    )
    rows = main_table(summaries, cap=60)
    assert rows[0].startswith("| scenario | tool | exit |")
    assert rows[2] == "| broken-health | ecs-ship | 1 | 8.0 s | 1.0 / 1.0 s | 2.0 | 16 | 1 / 0 of 1 runs |"
    assert "still waiting at cap (60 s)" in rows[3] and "never noticed" in rows[3]
    text = markdown(
        summaries,
        cap=60,
        runs=1,
        skipped=[Skipped("throttled-1svc", "no rate limits yet")],
        notes=["a note"],
        machine_line="2 CPUs",
    )
    assert "| broken-health | - | 8.0 s | 0.5 s | - |" in text  # ecs-ship's own table
    assert "- skipped throttled-1svc: no rate limits yet" in text
    assert "- a note" in text
    assert multi_table(summaries) == []


def test_head_to_head_in_aws_seconds() -> None:
    runs = [
        record("aws-timings", "ecs-ship", 5, [0.1]),
        record("aws-timings", "aws wait services-stable", 45, [1.0]),
        record("aws-timings", "ecs deploy", 120, [None], code=None),
    ]
    for r in runs:
        r.scale, r.cap = 10.0, 120.0
    rows = head_to_head(summarize_all(runs), "aws-timings", scale=10.0)
    assert [(h.peer, h.sooner_by, h.unit) for h in rows] == [
        ("aws wait services-stable", 400.0, "AWS s"),
        ("ecs deploy", None, "AWS s"),
    ]
    assert head_to_head_lines(rows) == [
        "aws-timings: ecs-ship reports at 50.0 AWS s, 400.0 AWS s sooner than aws wait services-stable (450.0 AWS s)",
        "aws-timings: ecs-ship reports at 50.0 AWS s; ecs deploy was still waiting at the cap (1200 AWS s)",
    ]


def test_a_scaled_scenario_shows_aws_seconds_and_its_own_cap() -> None:
    r = record("aws-timings", "ecs deploy", 120, [None], code=None)
    r.scale, r.cap = 10.0, 120.0
    row = main_table(summarize_all([r]), cap=60)[2]
    assert "still waiting at cap (120 s)" in row
    assert "120.0 s (1200 AWS s)" in row


def test_the_watch_rate_counts_from_the_switch_and_closing_counts_are_not_throttling_said() -> None:
    from bench.truth import THROTTLING_LINE, watch_rate
    from tests.sandbox.ledger import Call

    calls = [Call(0.0, "ecs", "DescribeServices"), Call(0.1, "ecs", "RegisterTaskDefinition")]
    calls += [Call(1.0, "ecs", "UpdateService")] + [Call(1.0 + n, "elbv2", "DescribeTargetHealth") for n in range(4)]
    assert watch_rate(calls, end=5.0) == 5 / 4.0
    assert watch_rate(calls[:2], end=5.0) is None
    assert not THROTTLING_LINE.search("AWS API requests: ecs 14, elasticloadbalancing 4; throttled 0")
    assert THROTTLING_LINE.search("An error occurred (ThrottlingException): Rate exceeded")
