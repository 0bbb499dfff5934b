"""`make demo`: the whole job on the local sandbox, start to end, in about a minute.

1. start the sandbox (Docker engine, registry, moto server, ECS/ALB simulator) with a service running v0;
2. `ecs-ship deploy` examples/hello v1 and show the load balancer's URL serving it;
3. redeploy v2 while a client keeps requesting the URL, and count the failed requests (expect none);
4. deploy a broken v3 (its /health answers 500): ecs-ship exits 1, says why, rolls back; v2 still serves;
5. canary v4 on a blue/green-ready service: a client measures the share of requests the new revision gets
   while ECS holds 20 % of production traffic on it, then all of it moves;
6. tear everything down.

Exit status 0 only if every step behaved as described.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from .bootstrap import WorldSpec
from .sandbox import Sandbox
from .services import free_port

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "hello" / "ecs-ship.yml"


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


class Client(threading.Thread):
    """A user of the service: one request every 20 ms (bounded), remembering every answer."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.ok: list[str] = []
        self.failed: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        deadline = time.monotonic() + 300
        while not self.halt.is_set() and time.monotonic() < deadline:
            try:
                r = session.get(self.url, timeout=5)
                (self.ok if r.status_code == 200 else self.failed).append(f"{r.status_code} {r.text.strip()}")
            except requests.RequestException as exc:
                self.failed.append(repr(exc))
            time.sleep(0.02)

    def share(self, old: str, new: str) -> tuple[int, int]:
        """Answers between the first from `new` and the last from `old` (the window both served): (new, all)."""
        bodies = [b.split(" ", 1)[1] for b in self.ok]
        if new not in bodies or old not in bodies:
            return 0, 0
        window = bodies[bodies.index(new) : len(bodies) - bodies[::-1].index(old)]
        return window.count(new), len(window)


def ecs_ship(env: dict[str, str], *args: str) -> int:
    cmd = [sys.executable, "-m", "ecs_ship", *args]
    print("$ ecs-ship " + " ".join(args), flush=True)
    return subprocess.run(cmd, env=env, cwd=ROOT).returncode


def main() -> int:
    problems: list[str] = []
    banner("1. start the sandbox: docker engine, registry, moto server, ECS/ALB simulator")
    sb = Sandbox()
    try:
        sb.start()
        image = sb.build_and_push("hello", "v0")
        world = sb.bootstrap(WorldSpec(name="hello", image=image, listener_port=free_port()))
        url = world.url + "/"
        print(f"service {world.service} in cluster {world.cluster}, behind {url}")
        print(f"curl {url} -> {requests.get(url, timeout=5).text.strip()}")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_"))},
            **sb.env(),
            "PYTHONPATH": f"{ROOT / 'runner'}:{ROOT}",
        }

        banner("2. check the service with ecs-ship verify (read-only), then deploy hello v1")
        code = ecs_ship({**env, "HELLO_VERSION": "v1"}, "verify", "--spec", str(SPEC))
        if code != 0:
            problems.append(f"verify: exit {code} on a sound world")
        code = ecs_ship({**env, "HELLO_VERSION": "v1"}, "deploy", "--spec", str(SPEC))
        body = requests.get(url, timeout=5).text.strip()
        print(f"curl {url} -> {body}")
        if code != 0 or body != "hello v1":
            problems.append(f"v1 deploy: exit {code}, served {body!r}")

        banner("3. redeploy v2 while a client keeps requesting the URL")
        client = Client(url)
        client.start()
        code = ecs_ship({**env, "HELLO_VERSION": "v2"}, "deploy", "--spec", str(SPEC))
        time.sleep(0.5)
        client.halt.set()
        client.join(10)
        versions = sorted(set(client.ok))
        print(f"client: {len(client.ok) + len(client.failed)} requests, {len(client.failed)} failed; saw {versions}")
        if code != 0 or client.failed or not client.ok or client.ok[-1] != "200 hello v2":
            problems.append(f"v2 deploy: exit {code}, {len(client.failed)} failed requests")

        banner("4. ask ecs-ship doctor what each setting costs every deploy (read-only)")
        # This world has no deployment circuit breaker, which doctor counts as breaking deploys: exit 1.
        code = ecs_ship(env, "doctor", "--spec", str(SPEC))
        if code != 1:
            problems.append(f"doctor: exit {code} (want 1: the circuit breaker is off)")

        banner("5. deploy a broken v3 (its /health answers 500): diagnosis, rollback, exit 1")
        code = ecs_ship({**env, "HELLO_VERSION": "v3", "HELLO_HEALTH": "500"}, "deploy", "--spec", str(SPEC))
        body = requests.get(url, timeout=5).text.strip()
        print(f"ecs-ship exited {code}; curl {url} -> {body}")
        if code != 1 or body != "hello v2":
            problems.append(f"broken v3: exit {code} (want 1), served {body!r} (want 'hello v2')")

        banner("6. canary: v4 on a blue/green-ready service, 20% of production traffic first, then all")
        canary = sb.bootstrap(
            WorldSpec(name="canary", image=image, listener_port=free_port(), blue_green=True, circuit_breaker=True)
        )
        client = Client(canary.url + "/")
        client.start()
        code = ecs_ship({**env, "HELLO_VERSION": "v4"}, "deploy", "--env", "canary", "--spec", str(SPEC))
        time.sleep(0.5)
        client.halt.set()
        client.join(10)
        new, both = client.share("hello v0", "hello v4")
        print(f"client: {both} requests while both revisions served, {new} ({100 * new / max(1, both):.0f}%) to v4")
        if code != 0 or client.failed or not both or not 0.08 <= new / both <= 0.35 or client.ok[-1] != "200 hello v4":
            problems.append(f"canary v4: exit {code}, {len(client.failed)} failed, {new} of {both} to v4 (want ~20%)")
    except KeyboardInterrupt:
        problems.append("interrupted")
    finally:
        banner("7. tear down")
        sb.stop()
        print("sandbox stopped: its containers, registry and load balancer names are gone")
    if problems:
        print("\ndemo FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(
        "\ndemo OK: v1 deployed, v2 rolled out with no failed request, doctor priced the settings, broken v3 "
        "diagnosed and rolled back, canary v4 took its share then all traffic"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
