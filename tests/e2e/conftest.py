"""What every end-to-end test shares: the e2e marker, the CLI runner, and helpers to read the sandbox's
world through plain boto3 and its load balancer.

Everything under tests/e2e needs the sandbox (root, a Docker engine, the registry and moto) and is marked
``e2e``, so ``pytest -m "not e2e"`` runs the rest on any machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import boto3
import pytest
import requests
import yaml

from tests.sandbox.services import free_port

if TYPE_CHECKING:
    from tests.sandbox.bootstrap import World
    from tests.sandbox.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A conftest's hooks see the whole session's items, not only those below it.
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


# --------------------------------------------------------------------------------------------
# running ecs-ship as a user does
# --------------------------------------------------------------------------------------------
def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment for a child Python that imports ecs_ship and tests from this checkout."""
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'runner'}:{ROOT}", **(extra or {})}


def ecs_ship_env(sandbox: Sandbox, env: dict[str, str] | None = None) -> dict[str, str]:
    """The CLI's environment against the sandbox: none of the caller's AWS or GitHub settings leak in."""
    own = {k: v for k, v in child_env().items() if not k.startswith(("GITHUB_", "AWS_"))}
    return {**own, **sandbox.env(), **(env or {})}


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def ecs_ship(
    sandbox: Sandbox, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> Run:
    """Run `ecs-ship ARGS` to completion (bounded) and return what it printed."""
    proc = subprocess.run(
        [sys.executable, "-m", "ecs_ship", *args],
        cwd=cwd,
        env=ecs_ship_env(sandbox, env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def start_ecs_ship(
    sandbox: Sandbox, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start `ecs-ship ARGS` in the background (to break something while it runs); the caller waits."""
    return subprocess.Popen(
        [sys.executable, "-m", "ecs_ship", *args],
        cwd=cwd,
        env=ecs_ship_env(sandbox, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def aws(sandbox: Sandbox, name: str, region: str) -> Any:
    """A plain boto3 client of the sandbox's AWS endpoint, as a user's own scripts (or Terraform) would make."""
    return boto3.client(
        name,
        endpoint_url=sandbox.endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def writes(sandbox: Sandbox, mark: int) -> list[str]:
    """The AWS actions that changed state since `mark`, in order."""
    return [c.action for c in sandbox.ledger.writes_since(mark)]


def assert_iam_listed(sandbox: Sandbox, mark: int) -> set[str]:
    """Assert that README's IAM section names every AWS action called since `mark` (by the action names IAM
    uses); return those actions. Call it where only ecs-ship has called AWS since the mark."""
    iam = (ROOT / "README.md").read_text().split("### IAM permissions", 1)[1].split("\n## ", 1)[0]
    actions = {c.action for c in sandbox.ledger.calls_since(mark)}
    missing = sorted(a for a in actions if f"{a}`" not in iam)
    assert missing == [], f"README's IAM list lacks {missing}"
    return actions


def spec_for(w: World, *, repo: str | None = None, build_args: dict[str, str] | None = None, extra: str = "") -> str:
    """A deploy spec for world `w`; each call gets its own repository unless one is named (tags never collide)."""
    repo = repo or f"e2e-{uuid.uuid4().hex[:6]}"
    doc: dict[str, Any] = {
        "version": 1,
        "region": w.region,
        "cluster": w.cluster,
        "service": w.service,
        "images": [
            {"container": "web", "repository": "${REGISTRY}/" + repo, "context": ".", "build_args": build_args or {}}
        ],
        "load_balancer": {"health_check_path": "/health"},
        # stable: the old tasks are drained, so the URL serves only the new version afterwards.
        "wait": {"until": "stable", "timeout": 90, "poll_interval": 0.5},
    }
    return yaml.safe_dump(doc, sort_keys=False) + textwrap.dedent(extra)


# --------------------------------------------------------------------------------------------
# reading the world
# --------------------------------------------------------------------------------------------
class Family(Protocol):
    """Where a task definition family of a world lives (a World, or a world a test built by hand)."""

    @property
    def family(self) -> str: ...

    @property
    def execution_role_arn(self) -> str: ...

    @property
    def log_group(self) -> str: ...

    @property
    def region(self) -> str: ...


@dataclass(frozen=True)
class TaskFamily:
    """A Family by itself: for a world built by hand, whose first revision is registered before it is whole."""

    family: str
    execution_role_arn: str
    log_group: str
    region: str


def execution_role(iam: Any, name: str) -> str:
    """A task execution role ECS tasks may assume (it pulls the image and writes awslogs on Fargate): its ARN."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


def register_revision(ecs: Any, w: Family, image: str, **container: Any) -> str:
    """A Fargate revision of the family running `image`; `container` adds to its container definition."""
    from tests.sandbox.bootstrap import container_definition

    td = ecs.register_task_definition(
        family=w.family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        executionRoleArn=w.execution_role_arn,
        containerDefinitions=[{**container_definition(w.family, image, w.log_group, w.region, {}), **container}],
    )
    return str(td["taskDefinition"]["taskDefinitionArn"])


def describe(ecs: Any, w: World) -> dict[str, Any]:
    return dict(ecs.describe_services(cluster=w.cluster, services=[w.service])["services"][0])


def started_task(ecs: Any, cluster: str, out: str, label: str) -> dict[str, Any]:
    """The one-off task a run started, by the id it printed after `LABEL: started task` (`pre_deploy migrate`):
    ListTasks finds tasks by startedBy only while they run."""
    found = re.search(rf"{re.escape(label)}: started task (\w+)", out)
    assert found, out
    return dict(ecs.describe_tasks(cluster=cluster, tasks=[found.group(1)])["tasks"][0])


def targets(elbv2: Any, w: World) -> dict[int, tuple[str, str | None, str | None]]:
    out = {}
    for d in elbv2.describe_target_health(TargetGroupArn=w.target_group_arn)["TargetHealthDescriptions"]:
        th = d["TargetHealth"]
        out[int(d["Target"]["Port"])] = (th["State"], th.get("Reason"), th.get("Description"))
    return out


def poll(fn: Callable[[], Any], until: Callable[[Any], bool], timeout: float, what: str) -> Any:
    """Call `fn` until `until(value)` holds (bounded by `timeout`); return that value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = fn()
        if until(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {value!r}")


def served(w: World) -> str:
    return requests.get(w.url + "/", timeout=5).text.strip()


def completed(svc: dict[str, Any]) -> bool:
    deps = svc["deployments"]
    return len(deps) == 1 and deps[0]["rolloutState"] == "COMPLETED"


class Hammer(threading.Thread):
    """Keeps requesting a URL (bounded count and time) and records every failure."""

    def __init__(self, url: str, limit: int = 5000, seconds: float = 120) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.limit = limit
        self.seconds = seconds
        self.bodies: list[str] = []
        self.failures: list[str] = []
        self._halt = threading.Event()

    @property
    def answers(self) -> int:
        return len(self.bodies) + len(self.failures)

    def run(self) -> None:
        end = time.monotonic() + self.seconds
        session = requests.Session()
        while not self._halt.is_set() and self.answers < self.limit:
            if time.monotonic() > end:
                break
            try:
                r = session.get(self.url, timeout=5)
                if r.status_code == 200:
                    self.bodies.append(r.text.strip())
                else:
                    self.failures.append(f"{r.status_code} {r.text.strip()}")
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
            time.sleep(0.02)

    def wait_answers(self, more: int, timeout: float = 30) -> None:
        """Wait until `more` further requests have been answered (or failed)."""
        want = self.answers + more
        poll(lambda: self.answers, lambda n: n >= want, timeout, f"{more} more answers from {self.url}")

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def network(ec2: Any, name: str, cidr: str) -> tuple[str, list[str], str]:
    """A VPC (`cidr` a /16) with a subnet in each of two Availability Zones, as an ALB needs, and a security
    group: (VPC id, subnet ids, security group id)."""
    from tests.sandbox.bootstrap import REGION

    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    prefix = cidr.rsplit(".", 2)[0]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"{prefix}.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    sg = ec2.create_security_group(GroupName=f"{name}-sg", Description="web", VpcId=vpc)["GroupId"]
    return str(vpc), [str(s) for s in subnets], str(sg)


def quick_target_group(
    elbv2: Any, name: str, vpc: str, load_balancer_arn: str, *, target_type: str = "ip", path: str = "/health"
) -> tuple[str, int]:
    """A target group with the fastest health check AWS allows and a 2 s deregistration delay, forwarded to by
    a new HTTP listener on a free port: (target group ARN, listener port)."""
    arn = quick_group(elbv2, name, vpc, target_type=target_type, path=path)
    port = free_port()
    elbv2.create_listener(
        LoadBalancerArn=load_balancer_arn,
        Protocol="HTTP",
        Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}],
    )
    return arn, port


def quick_group(elbv2: Any, name: str, vpc: str, *, target_type: str = "ip", path: str = "/health") -> str:
    """A target group with the fastest health check AWS allows and a 2 s deregistration delay."""
    arn = elbv2.create_target_group(
        Name=name,
        Protocol="HTTP",
        Port=80,
        VpcId=vpc,
        TargetType=target_type,
        HealthCheckPath=path,
        HealthCheckIntervalSeconds=5,
        HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "2"}]
    )
    return str(arn)
