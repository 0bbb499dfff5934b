"""`ecs-ship run-local`: the task definition a deploy would register, on the local Docker engine."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .. import aws, engine, local
from ..context import Context
from ..errors import DeployError, InputError
from ..spec import ServiceSpec, Spec


class LocalTaskStopped(DeployError):
    """run-local ended because the task did. Exit 1 like a failed deploy: the container's own code (which may
    be 2 or 3) is in the message, so it is never mistaken for ecs-ship's bad-input or unexpected-error codes."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the local task stopped (exit code {code})", fix="its log lines above say why")
        self.container_exit_code = code


@contextmanager
def cancel_on_signals(ctx: Context) -> Iterator[None]:
    """Ctrl-C and SIGTERM end run-local the normal way (stop, remove, exit 0), not as an interruption."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def cancel(signum: int, frame: object) -> None:
        ctx.cancel.set()

    previous = {s: signal.signal(s, cancel) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def prepare(ctx: Context, spec: Spec, svc: ServiceSpec) -> tuple[Spec, ServiceSpec]:
    return spec, svc


def execute(ctx: Context, prepared: tuple[Spec, ServiceSpec]) -> None:
    spec, svc = prepared
    args = ctx.args
    try:
        clients: aws.Clients | None = aws.make_clients(svc.region)
    except InputError:
        clients = None  # only a `current` task definition needs AWS, and run_local says so then
    options = local.LocalOptions(
        image_tag=args.image_tag, mounts=tuple(args.mount), env_files=tuple(args.env_file), port=args.port
    )
    with cancel_on_signals(ctx):
        code = local.run_local(
            svc,
            spec,
            options,
            docker_client=engine.connect(),
            say=ctx.sayer(svc.name),
            cancel=ctx.cancel,
            clients=clients,
            mask=ctx.out.mask,
        )
    if code:
        raise LocalTaskStopped(code)
