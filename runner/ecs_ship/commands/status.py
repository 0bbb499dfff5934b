"""`ecs-ship status`: the service's deployments, tasks, target health and URL (read-only)."""

from __future__ import annotations

from .. import aws, deploy
from ..context import Context, rev
from ..spec import ServiceSpec, Spec


def prepare(ctx: Context, spec: Spec, svc: ServiceSpec) -> ServiceSpec:
    return svc


def execute(ctx: Context, svc: ServiceSpec) -> None:
    clients = aws.make_clients(svc.region)
    state = deploy.read_state(clients, svc.cluster, svc.service, svc.load_balancer.url)
    s = state.service
    out = ctx.out.raw
    out(
        f"service {svc.service} in cluster {svc.cluster} ({clients.region}): {s.get('status')}, "
        f"running {s.get('runningCount')}/{s.get('desiredCount')}, "
        f"revision {rev(state.task_definition_arn)}"
    )
    for d in s.get("deployments", []):
        out(
            f"  deployment {d['id']} {d.get('status')}: {rev(d.get('taskDefinition'))} "
            f"rollout {d.get('rolloutState')} running {d.get('runningCount')}/{d.get('desiredCount')} "
            f"failed {d.get('failedTasks', 0)}"
        )
    current = s.get("currentServiceDeployment")
    record = deploy.describe_service_deployment(clients, str(current)) if current else None
    if record is not None:
        rollback = record.get("rollback") or {}
        out(
            f"  service deployment {rev(record.get('serviceDeploymentArn'))} {record.get('status')}"
            + (f" ({record['lifecycleStage']})" if record.get("lifecycleStage") else "")
            + (f": {record['statusReason']}" if record.get("statusReason") else "")
            + (f"; rollback: {rollback['reason']}" if rollback.get("reason") else "")
        )
    # ListTasks pages at 100 and DescribeTasks takes at most 100 ARNs: a large service needs both loops.
    pages = clients.ecs.get_paginator("list_tasks").paginate(cluster=svc.cluster, serviceName=svc.service)
    arns = [arn for page in pages for arn in page.get("taskArns", [])]
    for i in range(0, len(arns), 100):
        for t in clients.ecs.describe_tasks(cluster=svc.cluster, tasks=arns[i : i + 100]).get("tasks", []):
            out(
                f"  task {rev(t['taskArn'])} {t.get('lastStatus')} "
                f"{rev(t.get('taskDefinitionArn'))} (deployment {t.get('startedBy', '?')})"
            )
    for tg in state.target_groups:
        for d in clients.elbv2.describe_target_health(TargetGroupArn=tg.arn).get("TargetHealthDescriptions", []):
            th = d.get("TargetHealth", {})
            why = f" ({th.get('Reason')}: {th.get('Description')})" if th.get("Reason") else ""
            out(f"  target {d['Target']['Id']}:{d['Target'].get('Port')} in {tg.name}: {th.get('State')}{why}")
    out(f"  url: {state.url or '(no load balancer)'}")
