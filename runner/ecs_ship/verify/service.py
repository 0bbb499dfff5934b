"""The service itself: which controller deploys it; its subnets and security groups exist; each target group it
registers in names a container and port of the task definition, with a target type that fits the network
mode."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from ..aws import Clients
from .model import FAILURE, OK, Finding, Subject
from .permissions import guarded


def controller(subject: Subject, clients: Clients) -> list[Finding]:
    """Pure (no call). The plan has already refused a controller ecs-ship cannot drive (CodeDeploy, external,
    ECS Express Mode: exit 2 before any check runs); this line says which one the deploy goes through."""
    kind = str((subject.service.get("deploymentController") or {}).get("type") or "ECS")
    strategy = str((subject.service.get("deploymentConfiguration") or {}).get("strategy") or "ROLLING")
    return [Finding("deployment controller", OK, f"{kind}, strategy {strategy}")]


def network(subject: Subject, clients: Clients) -> list[Finding]:
    vpc = (subject.service.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    findings: list[Finding] = []
    subnets = [str(s) for s in vpc.get("subnets") or []]
    groups = [str(g) for g in vpc.get("securityGroups") or []]
    # Shared by the services of a spec as a rule: each set is read once per run.
    if subnets:
        check = functools.partial(_exist, clients, "subnet", subnets)
        read = functools.partial(guarded, "subnets", "ec2:DescribeSubnets", check)
        findings += clients.once(("verify subnets", *subnets), read)
    if groups:
        check = functools.partial(_exist, clients, "group", groups)
        read = functools.partial(guarded, "security groups", "ec2:DescribeSecurityGroups", check)
        findings += clients.once(("verify security groups", *groups), read)
    return findings


def _exist(clients: Clients, kind: str, ids: list[str]) -> list[Finding]:
    ec2 = clients.client("ec2")
    label = "subnets" if kind == "subnet" else "security groups"
    # One call for the set, by filter: asked by id, EC2 refuses the whole call for one missing id; filtered, it
    # answers with those that exist.
    if kind == "subnet":
        pages = ec2.get_paginator("describe_subnets").paginate(Filters=[{"Name": "subnet-id", "Values": ids}])
        found = {s["SubnetId"] for page in pages for s in page.get("Subnets", [])}
    else:
        pages = ec2.get_paginator("describe_security_groups").paginate(Filters=[{"Name": "group-id", "Values": ids}])
        found = {g["GroupId"] for page in pages for g in page.get("SecurityGroups", [])}
    missing = [one for one in ids if one not in found]
    if missing:
        return [
            Finding(
                label,
                FAILURE,
                f"{', '.join(missing)} not found in {clients.region}: no task could be placed",
                "update the service's networkConfiguration (aws ecs update-service --network-configuration ...)",
            )
        ]
    return [Finding(label, OK, ", ".join(ids))]


def target_groups(subject: Subject, clients: Clients, groups: Mapping[str, Mapping[str, Any]]) -> list[Finding]:
    """Pure against `groups` (target group ARN -> DescribeTargetGroups entry, as the preparation read them)."""
    doc = subject.document
    mode = str(doc.get("networkMode") or "bridge")
    containers = {str(c.get("name")): c for c in doc.get("containerDefinitions") or []}
    findings: list[Finding] = []
    for lb in subject.service.get("loadBalancers") or []:
        arn = str(lb.get("targetGroupArn") or "")
        if not arn:
            continue
        tg = groups.get(arn)
        name = f"target group {(tg or {}).get('TargetGroupName') or arn.rsplit('/', 2)[-2]}"
        if tg is None:
            findings.append(
                Finding(name, FAILURE, f"{arn} not found", "fix the service's loadBalancers, or recreate the group")
            )
            continue
        container, port = str(lb.get("containerName", "")), int(lb.get("containerPort") or 0)
        found = containers.get(container)
        if found is None:
            findings.append(
                Finding(
                    name,
                    FAILURE,
                    f"the service registers container {container!r}, which the task definition does not have "
                    f"(it has {', '.join(sorted(containers)) or 'none'})",
                    f"name a container {container!r} in the task definition, or change the service's loadBalancers",
                )
            )
            continue
        ports = sorted({int(p.get("containerPort") or 0) for p in found.get("portMappings") or []})
        if port not in ports:
            findings.append(
                Finding(
                    name,
                    FAILURE,
                    f"the service registers {container}:{port}, but {container} maps "
                    f"{', '.join(str(p) for p in ports) or 'no port'}",
                    f"add containerPort {port} to {container}'s portMappings",
                )
            )
            continue
        kind = str(tg.get("TargetType") or "instance")
        if mode == "awsvpc" and kind != "ip":
            findings.append(
                Finding(
                    name,
                    FAILURE,
                    f"target type {kind}: awsvpc tasks register by IP address",
                    "use a target group of target type ip",
                )
            )
            continue
        findings.append(Finding(name, OK, f"{container}:{port}, target type {kind}"))
    return findings
