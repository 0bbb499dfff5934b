"""`ecs-ship run-local`: the task definition a deploy would register, on the local Docker engine."""

from __future__ import annotations

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
    # Ctrl-C and SIGTERM set ctx.cancel (cli routes them): run-local then stops and removes its container and
    # ends the normal way, not as an interruption.
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
