"""How soon does each tool know, and at what API cost? ecs-ship against the peers people use today, in one sandbox.

    .venv/bin/python -m bench.run [--runs 3] [--cap 60] [--scenarios healthy,multi,…] [--quick] [--peers-at-20]

Each scenario builds fresh worlds with the sandbox's bootstrap helpers (first image v1), starts one tool run, and
stops it at the cap. The sandbox's ground truth says when the thing the tool waits for really happened; its call
log gives the tool's API calls (per second, total, throttled). Writes bench/results/latest.json (every run,
summaries, machine and versions), latest.md (the table a README quotes) and latest.png. Machines here are noisy:
read ratios measured in the same run, not absolute seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.sandbox.sandbox import Sandbox

from . import machine, measure, plot, report, scenarios, tools, worlds
from .judge import RunInput, judge
from .records import RunRecord, summarize_all
from .scenarios import BAD, CRASH, GOOD, Scenario
from .truth import DEPLOYMENT_COMPLETED

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FIRST = "v1"
TAGS = {GOOD: "v2", BAD: "v3-bad", CRASH: "v4-crash"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=None, help="runs per scenario and tool (default 3; --quick: 1)")
    ap.add_argument("--cap", type=float, default=60.0, help="seconds before a tool run counts as never finishing")
    ap.add_argument(
        "--scenarios",
        default=None,
        help="comma-separated names or groups ("
        + ", ".join([*scenarios.GROUPS, *scenarios.BY_NAME])
        + "); default all",
    )
    ap.add_argument("--quick", action="store_true", help="one run of `healthy` (or of --scenarios)")
    ap.add_argument("--peers-at-20", action="store_true", help="run the peers in the 20-service scenarios too")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for latest.json, latest.md and latest.png")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = ap.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.runs < 1 or args.cap <= 0:
        ap.error("--runs must be at least 1 and --cap positive")
    names = args.scenarios.split(",") if args.scenarios else (["healthy"] if args.quick else list(scenarios.BY_NAME))
    try:
        args.selected = scenarios.select([n.strip() for n in names if n.strip()])
    except ValueError as exc:
        ap.error(str(exc))
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def conditions(sb: Sandbox, s: Scenario) -> Iterator[None]:
    """The simulator as the scenario needs it (a scaled clock), and back to normal after."""
    config = sb.sim_config
    before = (config.time_scale, config.health_time_scale)
    if s.time_scale is not None:
        # The running simulator reads its config at each use, so it is set in place. health_time_scale speeds
        # health checks up on top of time_scale; at 1.0 a 30 s interval lasts 30 AWS seconds, as in AWS.
        config.time_scale, config.health_time_scale = s.time_scale, 1.0
    try:
        yield
    finally:
        config.time_scale, config.health_time_scale = before


def one_run(
    sb: Sandbox, s: Scenario, tool: str, run: int, images: dict[str, str], env: dict[str, str], cap: float, folder: Path
) -> RunRecord:
    built = worlds.build(sb, images[FIRST], services=s.services, clusters=s.clusters, health=s.health)
    names = worlds.refs(built)
    try:
        cmds = tools.commands(
            tool,
            built,
            names,
            tag=TAGS[s.image],
            image=images[s.image],
            failure=s.failure,
            multi=s.multi,
            folder=folder,
            ecs=sb.clients()["ecs"],
        )
        if s.throttled:
            # AWS's buckets (per account and Region, shared by every caller), full as the tool starts; only the
            # tool's calls draw on them, not the harness's world building. end_test() lifts them.
            sb.ledger.limit_rates()
        mark = sb.ledger.mark()
        procs = measure.run_all(cmds, env, cap * s.cap_factor)
        sb.ledger.clear_faults()
        truth = s.truth if tool == tools.ECS_SHIP else s.peer_truth
        ids = worlds.deployment_ids(sb, built) if truth == DEPLOYMENT_COMPLETED else {}
        record = judge(
            RunInput(
                scenario=s.name,
                tool=tool,
                run=run,
                truth=truth,
                failure=s.failure,
                services=tuple(names),
                per_service_lines=s.multi and tool == tools.ECS_SHIP,
                scale=s.scale,
            ),
            procs,
            sb.ledger.calls_since(mark),
            sb.ledger.facts_of(),
            ids,
        )
        record.cap = cap * s.cap_factor
        return record
    finally:
        # The next run starts with no container of this one: a 2-core machine has none to spare.
        sb.end_test()


def progress(r: RunRecord) -> str:
    lags = [s.lag for s in r.services if s.lag is not None]
    lag = f"{max(lags):.1f}" if lags else "never"
    extra = f" noticed {r.failure_noticed:.1f}s" if r.failure_noticed is not None else ""
    extra += f" first write {r.first_write:.1f}s" if r.first_write is not None else ""
    return (
        f"{r.scenario:37} {r.tool:25} run {r.run} {r.seconds:6.1f}s exit {r.code} lag {lag} "
        f"calls/s {r.calls_per_second:.1f} throttled {r.throttled_calls}{extra}"
    )


def notes(selected: list[Scenario], peers_at_20: bool) -> list[str]:
    out = [
        f"ecs-ship runs with wait.until serving and wait.poll_interval {tools.POLL_INTERVAL:g} s (its default); "
        "on a failure it rolls back (on_failure: rollback) and its lag is taken at its 'deployment failed' line.",
        "Peers are measured at their exit; tools that wait for a stable service against the rollout's completion "
        "(old tasks drained), ecs-ship against the new target turning healthy.",
    ]
    if any(s.multi for s in selected):
        out.append(
            "Several services: one ecs-ship process for all (its lag per service at its '[name] serving:' line), "
            "one peer process per service at once."
        )
    if not peers_at_20 and any(s.services > scenarios.PEERS_UP_TO for s in selected):
        out.append(
            f"Peers not run with more than {scenarios.PEERS_UP_TO} services: 20 aws or ecs-deploy processes at once "
            "swamp a 2-core machine (--peers-at-20 runs them)."
        )
    scales = sorted({s.time_scale for s in selected if s.time_scale}, reverse=True)
    if scales:
        clock = " (several services: ".join(f"{x:g} AWS s per second" for x in scales) + (
            ")" if len(scales) > 1 else ""
        )
        out.append(
            f"AWS timings: health checks every 30 s, 5 to be healthy, 300 s draining, the simulator's clock at "
            f"{clock}; lags in AWS s. The tools' own polling is not scaled."
        )
    return out


def write(
    args: argparse.Namespace, info: dict[str, Any], records: list[RunRecord], skipped: list[report.Skipped]
) -> None:
    selected: list[Scenario] = args.selected
    single_of = {s.name: s.single for s in selected if s.single}
    summaries = summarize_all(records, single_of)
    versus = [h for s in selected if s.time_scale for h in report.head_to_head(summaries, s.name, s.scale)]
    lines = notes(selected, args.peers_at_20) + report.head_to_head_lines(versus)
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **info,
        "settings": {
            "runs": args.runs,
            "cap_seconds": args.cap,
            "ecs_ship_poll_interval": tools.POLL_INTERVAL,
            "scenarios": [{**dataclasses.asdict(s), "tools": list(s.tools(args.peers_at_20))} for s in selected],
        },
        "skipped": [dataclasses.asdict(s) for s in skipped],
        "notes": lines,
        "summaries": [dataclasses.asdict(s) for s in summaries],
        "head_to_head": [dataclasses.asdict(h) for h in versus],
        "runs": [dataclasses.asdict(r) for r in records],
    }
    (args.out / "latest.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = report.markdown(
        summaries, cap=args.cap, runs=args.runs, skipped=skipped, notes=lines, machine_line=machine.one_line(info)
    )
    (args.out / "latest.md").write_text(md)
    if summaries:
        plot.draw(summaries, args.out / "latest.png", args.cap)
    print(md)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.list:
        for s in scenarios.SCENARIOS:
            print(f"{s.name:28} {s.what}")
        return 0
    # A SIGTERM (a killed `make bench`, a CI timeout) unwinds like Ctrl-C, so the sandbox below is torn down:
    # killed outright it would leave its task containers and registry running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    skipped: list[report.Skipped] = []
    runnable: list[Scenario] = []
    for s in args.selected:
        why = scenarios.missing(s)
        if why:
            say(f"skipping {s.name}: {why}")
            skipped.append(report.Skipped(s.name, why))
        else:
            runnable.append(s)
    records: list[RunRecord] = []
    info: dict[str, Any] = machine.describe(None)
    with Sandbox() as sb, tempfile.TemporaryDirectory(prefix="ecs-ship-bench-") as tmp:
        info = machine.describe(sb.docker)
        images = {
            FIRST: sb.build_and_push("bench", FIRST),
            GOOD: sb.build_and_push("bench", TAGS[GOOD]),
            BAD: sb.build_and_push("bench", TAGS[BAD], health="500"),
            CRASH: sb.build_and_push("bench", TAGS[CRASH], crash=True),
        }
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            **sb.env(),
            "PYTHONPATH": f"{ROOT / 'runner'}:{ROOT}",
            # Lines are timestamped as they arrive: no tool may hold them in a buffer.
            "PYTHONUNBUFFERED": "1",
        }
        for s in runnable:
            try:
                with conditions(sb, s):
                    for tool in s.tools(args.peers_at_20):
                        for i in range(args.runs):
                            r = one_run(sb, s, tool, i, images, env, args.cap, Path(tmp))
                            records.append(r)
                            say(progress(r))
            except Exception as exc:  # one broken scenario must not lose the others' numbers
                traceback.print_exc()
                skipped.append(report.Skipped(s.name, f"failed: {exc}"))
    write(args, info, records, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
