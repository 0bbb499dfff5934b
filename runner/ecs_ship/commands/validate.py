"""`ecs-ship validate`: load the spec (every check of the loader runs) and print what it resolves to."""

from __future__ import annotations

from ..context import Context
from ..spec import ServiceSpec, Spec


def prepare(ctx: Context, spec: Spec, svc: ServiceSpec) -> ServiceSpec:
    return svc


def execute(ctx: Context, svc: ServiceSpec) -> None:
    out = ctx.out.raw
    out(f"{svc.name}: service {svc.service} in cluster {svc.cluster}" + (f" ({svc.region})" if svc.region else ""))
    for img in svc.images:
        out(f"  builds {img.container}: {img.repository}:{img.tag} from {img.context} ({img.platform_arg})")
    out(
        f"  task definition: {svc.task_definition.kind}"
        + (f" {svc.task_definition.path}" if svc.task_definition.path else "")
    )
    out(f"  waits until {svc.wait.until} (timeout {svc.wait.timeout:.0f}s); on failure: {svc.on_failure}")
