"""`ecs-ship deploy` with canary and linear strategies asked for in the spec, on a blue/green service built with
plain boto3: a client measures the canary's share of production traffic while the deploy runs, a linear deploy
moves the production rule in its steps, and a deploy held at a PAUSE hook is rolled back with
`ecs-ship continue --rollback` (bake minutes last a second in the sandbox)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import yaml

from tests.conftest import App, HelloImages
from tests.e2e.conftest import Run, ecs_ship, spec_for, writes
from tests.e2e.test_blue_green import BlueGreenWorld, _get, _sd, _weights, _world
from tests.sandbox.sandbox import Sandbox

BLUE_GREEN = {
    "strategy": "BLUE_GREEN",
    "bakeTimeInMinutes": 0,
    "deploymentCircuitBreaker": {"enable": True, "rollback": True},
}


def _spec(app: App, w: BlueGreenWorld, version: str, deployment: dict[str, object]) -> None:
    spec = yaml.safe_load(spec_for(w, build_args={"VERSION": version}))  # type: ignore[arg-type]
    spec["deployment"] = deployment
    app.write_spec(yaml.safe_dump(spec, sort_keys=False))


def _planned(
    sandbox: Sandbox, hello: HelloImages, app: App, deployment: dict[str, object], steps: str
) -> BlueGreenWorld:
    """A blue/green service on v1 and a spec deploying v2 with `deployment`, whose plan shows `steps`."""
    w = _world(sandbox, hello.get("v1"), BLUE_GREEN, test_listener=False)
    _spec(app, w, "v2", deployment)
    plan = ecs_ship(sandbox, "plan", "--spec", str(app.spec))
    assert plan.code == 0 and steps in plan.out, plan.text
    return w


class RuleWatch(threading.Thread):
    """Records every distinct weighting of the production rule while a deploy runs: green's share in %."""

    def __init__(self, sandbox: Sandbox, w: BlueGreenWorld) -> None:
        super().__init__(daemon=True)
        self.elbv2 = sandbox.clients()["elbv2"]
        self.w = w
        self.shares: list[float] = []
        self.done = threading.Event()
        self.on_share: Callable[[float], None] = lambda share: None

    def deploy(self, sandbox: Sandbox, app: App) -> Run:
        """`ecs-ship deploy` while this watches the rule."""
        self.start()
        try:
            return ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
        finally:
            self.done.set()
            self.join(timeout=10)

    def run(self) -> None:
        while not self.done.wait(0.1):
            weights = _weights(self.elbv2, self.w.production_rule)
            total = sum(weights.values()) or 1
            # Green is the alternate group on the first deploy of these worlds.
            share = round(100 * weights[self.w.green] / total, 1)
            if not self.shares or self.shares[-1] != share:
                self.shares.append(share)
                self.on_share(share)


def test_a_canary_deploy_sends_its_share_to_the_new_revision_then_all_traffic(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    app = make_app()
    canary = {"strategy": "CANARY", "canary_percent": 10, "canary_bake_time": 8}
    w = _planned(sandbox, hello, app, canary, "production traffic: 10% at +0 min, 100% at +8 min")

    seen: Counter[str] = Counter()
    measured = threading.Event()

    def measure(share: float) -> None:
        if share == 10.0 and not measured.is_set():
            # A client during the canary: 300 requests, each a weighted pick of blue or green.
            seen.update(_get(w.url) for _ in range(300))
            measured.set()

    rules = RuleWatch(sandbox, w)
    rules.on_share = measure
    mark = sandbox.ledger.mark()
    run = rules.deploy(sandbox, app)
    assert run.code == 0, run.text
    assert writes(sandbox, mark) == ["RegisterTaskDefinition", "UpdateService"]
    assert measured.is_set(), rules.shares
    # p = 0.1, n = 300: the expected 30 green answers, with 3.5 standard deviations either side.
    assert set(seen) == {"hello v1", "hello v2"} and 12 <= seen["hello v2"] <= 48, seen
    assert rules.shares[-1] == 100.0 and 10.0 in rules.shares, rules.shares
    assert {_get(w.url) for _ in range(10)} == {"hello v2"}
    svc = sandbox.clients()["ecs"].describe_services(cluster=w.cluster, services=[w.service])["services"][0]
    assert svc["deploymentConfiguration"]["strategy"] == "CANARY"
    assert svc["deploymentConfiguration"]["canaryConfiguration"]["canaryPercent"] == 10


def test_a_linear_deploy_moves_production_traffic_in_its_steps(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    app = make_app()
    linear = {"strategy": "LINEAR", "step_percent": 34, "step_bake_time": 2}
    w = _planned(sandbox, hello, app, linear, "34% at +0 min, 68% at +2 min, 100% at +4 min")
    rules = RuleWatch(sandbox, w)
    started = time.monotonic()
    run = rules.deploy(sandbox, app)
    assert run.code == 0, run.text
    # Blue alone, then the three steps, each held for its bake (2 "minutes" of a second each).
    assert rules.shares == [0.0, 34.0, 68.0, 100.0], rules.shares
    assert time.monotonic() - started >= 4
    assert {_get(w.url) for _ in range(10)} == {"hello v2"}


def test_a_paused_deploy_rolled_back_with_continue_leaves_production_on_the_old_revision(
    sandbox: Sandbox, hello: HelloImages, make_app: Callable[[], App]
) -> None:
    w = _world(sandbox, hello.get("v1"), BLUE_GREEN, test_listener=True)
    app = make_app()
    _spec(app, w, "v2", {"pause": {"at": ["POST_TEST_TRAFFIC_SHIFT"], "timeout": 60}})
    run = ecs_ship(sandbox, "deploy", "--spec", str(app.spec))
    assert run.code == 0 and "summary: paused" in run.out, run.text
    assert _get(w.test_url or "") == "hello v2" and _get(w.url) == "hello v1"

    ecs = sandbox.clients()["ecs"]
    held = ecs.describe_services(cluster=w.cluster, services=[w.service])["services"][0]["currentServiceDeployment"]
    mark = sandbox.ledger.mark()
    back = ecs_ship(sandbox, "continue", "--rollback", "--spec", str(app.spec))
    # The rollback a person asked for went through: exit 0, outcome `rolled back`, made by ECS alone.
    assert back.code == 0 and "rolled back:" in back.out and "summary: rolled back" in back.out, back.text
    assert writes(sandbox, mark) == ["ContinueServiceDeployment"], writes(sandbox, mark)
    assert _sd(ecs, held)["status"] == "ROLLBACK_SUCCESSFUL"
    assert {_get(w.url) for _ in range(10)} == {"hello v1"}
    assert _weights(sandbox.clients()["elbv2"], w.production_rule) == {w.blue: 1, w.green: 0}
