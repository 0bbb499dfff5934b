"""How soon does each tool know? ecs-ship against the peers people use today, in one sandbox run.

For a healthy rollout and for a broken one (its /health answers 500; no circuit breaker, the ECS default), each
tool is started right after the image exists and timed until it exits. The sandbox's ground truth says when the
thing the tool waits for really happened (new target healthy, rollout completed, first unhealthy verdict), so
the report shows each tool's *lag* behind the truth, its exit code, and its AWS API calls per second.

    .venv/bin/python -m bench.compare_peers [--runs 3] [--cap 60]

Tools: `ecs-ship deploy --image-tag` (no build), `aws ecs update-service --force-new-deployment` followed by
`aws ecs wait services-stable` (awscli), and fabfuel's `ecs deploy`. Medians over --runs; machines here are
noisy, so read ratios measured in the same run, not absolute seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.sandbox.bootstrap import CONTAINER, World, WorldSpec, clients
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.services import free_port

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    tool: str
    scenario: str
    seconds: float  # tool start -> tool exit
    lag: float | None  # tool exit - the ground-truth moment it waits for (None: it never saw it)
    code: int | None  # None: still running at the cap
    calls_per_second: float


def tool_path(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def run_tool(cmd: list[str], env: dict[str, str], cap: float) -> tuple[float, int | None]:
    start = time.time()
    try:
        code: int | None = subprocess.run(cmd, env=env, capture_output=True, timeout=cap).returncode
    except subprocess.TimeoutExpired:
        code = None
    return time.time() - start, code


def spec_file(w: World, folder: Path) -> Path:
    doc = {
        "version": 1,
        "region": w.region,
        "cluster": w.cluster,
        "service": w.service,
        "images": [{"container": CONTAINER, "repository": "${REGISTRY}/bench"}],
        "load_balancer": {"health_check_path": "/health"},
        "wait": {"until": "serving", "timeout": 600, "poll_interval": 1},
        "on_failure": "stop",
    }
    path = folder / f"{w.service}.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def measure(
    sb: Sandbox, tool: str, scenario: str, tag: str, image: str, env: dict[str, str], cap: float, folder: Path
) -> Result:
    w = sb.bootstrap(
        WorldSpec(name="b" + uuid.uuid4().hex[:7], image=sb.build_and_push("bench", "v1"), listener_port=free_port())
    )
    mark = sb.ledger.mark()
    facts_before = len(sb.ledger.facts)
    t0 = time.time()
    if tool == "ecs-ship":
        cmd = [sys.executable, "-m", "ecs_ship", "deploy", "--spec", str(spec_file(w, folder)), "--image-tag", tag]
        seconds, code = run_tool(cmd, env, cap)
    elif tool == "aws wait services-stable":
        ecs = clients(sb.endpoint)["ecs"]
        td = ecs.describe_task_definition(taskDefinition=w.task_definition_arn)["taskDefinition"]
        td["containerDefinitions"][0]["image"] = image
        keys = (
            "family",
            "networkMode",
            "requiresCompatibilities",
            "cpu",
            "memory",
            "executionRoleArn",
            "containerDefinitions",
        )
        arn = ecs.register_task_definition(**{k: td[k] for k in keys})["taskDefinition"]["taskDefinitionArn"]
        ecs.update_service(cluster=w.cluster, service=w.service, taskDefinition=arn, forceNewDeployment=True)
        cmd = [tool_path("aws"), "ecs", "wait", "services-stable", "--cluster", w.cluster, "--services", w.service]
        seconds, code = run_tool(cmd, env, cap)
        seconds = time.time() - t0
    else:
        # Its own --timeout stays at the default (300 s): the cap, not the tool, ends a run that never finishes.
        cmd = [tool_path("ecs"), "deploy", w.cluster, w.service, "--image", CONTAINER, image, "--no-deregister"]
        seconds, code = run_tool(cmd, env, cap)
    end = t0 + seconds
    facts = sb.ledger.facts[facts_before:]
    if scenario == "healthy":
        kinds = ("target_healthy",) if tool == "ecs-ship" else ("deployment_completed",)
    else:
        kinds = ("target_unhealthy",)
    truth = [f.at for f in facts if f.kind in kinds and f.at >= t0]
    lag = (end - min(truth)) if truth and code is not None else None
    calls = len(sb.ledger.calls_since(mark))
    return Result(tool, scenario, seconds, lag, code, calls / max(seconds, 0.001))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cap", type=float, default=60.0, help="seconds before a tool counts as never finishing")
    args = ap.parse_args(argv)
    results: list[Result] = []
    with Sandbox() as sb, tempfile.TemporaryDirectory() as tmp:
        assert sb.registry is not None
        good = sb.build_and_push("bench", "v2")
        bad = sb.build_and_push("bench", "v3-bad", health="500")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            **sb.env(),
            "PYTHONPATH": f"{ROOT / 'runner'}:{ROOT}",
        }
        for scenario, tag, image in (("healthy", "v2", good), ("broken", "v3-bad", bad)):
            for tool in ("ecs-ship", "aws wait services-stable", "ecs deploy"):
                for _ in range(args.runs):
                    r = measure(sb, tool, scenario, tag, image, env, args.cap, Path(tmp))
                    results.append(r)
                    print(
                        f"{scenario:8} {tool:26} {r.seconds:6.1f}s exit {r.code} lag {r.lag} calls/s "
                        f"{r.calls_per_second:.1f}",
                        file=sys.stderr,
                        flush=True,
                    )
    print(
        "\n| scenario | tool | exit | median time to exit | median lag behind the truth | API calls/s |"
        "\n|---|---|---|---|---|---|"
    )
    for scenario in ("healthy", "broken"):
        for tool in ("ecs-ship", "aws wait services-stable", "ecs deploy"):
            rs = [r for r in results if r.tool == tool and r.scenario == scenario]
            codes = sorted({str(r.code) if r.code is not None else f"still waiting at {args.cap:.0f}s" for r in rs})
            lags = [r.lag for r in rs if r.lag is not None]
            lag = f"{statistics.median(lags):.1f} s" if lags else "never noticed"
            print(
                f"| {scenario} | {tool} | {', '.join(codes)} | {statistics.median(r.seconds for r in rs):.1f} s "
                f"| {lag} | {statistics.median(r.calls_per_second for r in rs):.1f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
