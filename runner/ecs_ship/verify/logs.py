"""Each awslogs log group exists, or the task definition lets ECS create it."""

from __future__ import annotations

import functools

from ..aws import Clients
from .model import FAILURE, OK, Finding, Subject
from .permissions import guarded


def check(subject: Subject, clients: Clients) -> list[Finding]:
    findings: list[Finding] = []
    for c in subject.document.get("containerDefinitions") or []:
        config = c.get("logConfiguration") or {}
        if config.get("logDriver") != "awslogs":
            continue
        options = config.get("options") or {}
        group = str(options.get("awslogs-group") or "")
        label = f"log group of {c.get('name', '?')}"
        if not group:
            findings.append(Finding(label, FAILURE, "awslogs without awslogs-group", "set options.awslogs-group"))
            continue
        if str(options.get("awslogs-create-group", "")).lower() == "true":
            findings.append(
                Finding(
                    f"{label} {group}",
                    OK,
                    "created by ECS if missing (awslogs-create-group; the execution role needs logs:CreateLogGroup)",
                )
            )
            continue
        regional = clients.for_region(options.get("awslogs-region") or None)
        check = functools.partial(_group, regional, label, group)
        read = functools.partial(guarded, f"{label} {group}", "logs:DescribeLogGroups", check)
        findings += clients.once(("verify log group", regional.region, label, group), read)
    return findings


def _group(clients: Clients, label: str, group: str) -> list[Finding]:
    pages = clients.logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=group)
    if any(g.get("logGroupName") == group for page in pages for g in page.get("logGroups", [])):
        return [Finding(f"{label} {group}", OK, f"exists in {clients.region}")]
    return [
        Finding(
            f"{label} {group}",
            FAILURE,
            f"no log group {group} in {clients.region}: the task would stop before its container starts",
            f"create it (aws logs create-log-group --log-group-name {group}), or set awslogs-create-group to "
            '"true" in the container\'s logConfiguration options',
        )
    ]
