"""Start or stop the sandbox by hand.

    python -m tests.sandbox up      # engine, registry, moto + simulator, and a running "hello" service
    python -m tests.sandbox down    # from another shell (or Ctrl-C the first)

``up`` writes ``export …`` lines to ``<state dir>/env.sh`` and prints them; ``source`` that file and any AWS
tool (aws, ecs-deploy, ecs-ship) talks to the sandbox. The state dir is $ECS_SHIP_SANDBOX_DIR or
/tmp/ecs-ship-sandbox.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

from .sandbox import DEFAULT_STATE_DIR
from .services import pid_alive

PIDFILE = "sandbox.pid"
ENVFILE = "env.sh"


def _read_pid(state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / PIDFILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def up(state_dir: Path, with_world: bool) -> int:
    from .bootstrap import WorldSpec
    from .sandbox import Sandbox
    from .services import free_port

    running = _read_pid(state_dir)
    if running is not None:
        print(f"sandbox already up (pid {running}); its environment is in {state_dir / ENVFILE}", file=sys.stderr)
        return 1
    state_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    # Installed before anything starts so a Ctrl-C during start-up still tears down what exists.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    sb = Sandbox(state_dir=state_dir / "run")
    try:
        print("starting sandbox: docker engine, registry, moto server, ECS/ALB simulator…", file=sys.stderr)
        sb.start()
        # A shell that sources env.sh trusts the certificates ACM issues in the sandbox, as one trusts AWS's.
        env = {**sb.env(), **sb.trust_env()}
        env["ECS_SHIP_SANDBOX_RUN"] = sb.sim_config.run_label
        if with_world:
            image = sb.build_and_push("hello", "v1")
            w = sb.bootstrap(WorldSpec(name="hello", image=image, listener_port=free_port()))
            env.update(
                ECS_CLUSTER=w.cluster,
                ECS_SERVICE=w.service,
                ECS_TASK_FAMILY=w.family,
                ECS_LOG_GROUP=w.log_group,
                ECS_TARGET_GROUP_ARN=w.target_group_arn,
                ECS_EXECUTION_ROLE_ARN=w.execution_role_arn,
                SERVICE_URL=w.url,
            )
        lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
        (state_dir / ENVFILE).write_text("\n".join(lines) + "\n")
        (state_dir / PIDFILE).write_text(str(os.getpid()))
        print("\n".join(lines), flush=True)
        print(
            f"sandbox up; Ctrl-C or `python -m tests.sandbox down` stops it ({state_dir / ENVFILE})",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(1.0):
            pass
    finally:
        print("stopping sandbox…", file=sys.stderr, flush=True)
        sb.stop()
        for name in (ENVFILE, PIDFILE):
            (state_dir / name).unlink(missing_ok=True)
        print("sandbox stopped", file=sys.stderr, flush=True)
    return 0


def down(state_dir: Path, timeout: float = 90.0) -> int:
    pid = _read_pid(state_dir)
    if pid is None:
        print("sandbox is not running", file=sys.stderr)
        _sweep()
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        print(f"sandbox (pid {pid}) did not stop in {timeout:.0f}s; killing it and sweeping", file=sys.stderr)
        os.kill(pid, signal.SIGKILL)
        _sweep()
        return 1
    print("sandbox stopped", file=sys.stderr)
    return 0


def _sweep() -> None:
    """Remove what a killed sandbox may have left: task containers and /etc/hosts lines."""
    import docker
    import docker.errors

    from .hosts import HostsFile
    from .simulator import LABEL

    HostsFile().clear(every_run=True)
    try:
        client = docker.from_env()
        for c in client.containers.list(all=True, filters={"label": LABEL}):
            c.remove(force=True)
    except docker.errors.DockerException:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.sandbox", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the sandbox and stay up until Ctrl-C or `down`")
    p_up.add_argument("--no-world", action="store_true", help="do not bootstrap the hello service")
    sub.add_parser("down", help="stop a sandbox started with `up`")
    sub.add_parser("demo", help="start, deploy v1, roll out v2, fail v3 and roll back, tear down (make demo)")
    args = parser.parse_args(argv)
    state_dir = DEFAULT_STATE_DIR
    if args.command == "up":
        return up(state_dir, with_world=not args.no_world)
    if args.command == "demo":
        from .demo import main as demo

        return demo()
    return down(state_dir)


if __name__ == "__main__":
    sys.exit(main())
