"""The task's IAM roles exist and ECS tasks may assume them; the execution role is there where ECS needs one."""

from __future__ import annotations

import functools
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ..aws import Clients, error_code
from .model import FAILURE, OK, Finding, Subject
from .permissions import guarded

TASKS = "ecs-tasks.amazonaws.com"


def check(subject: Subject, clients: Clients) -> list[Finding]:
    doc = subject.document
    findings: list[Finding] = []
    execution = str(doc.get("executionRoleArn") or "")
    needs = execution_role_needed(doc)
    if not execution and needs:
        findings.append(
            Finding(
                "execution role",
                FAILURE,
                f"the task definition has none, and ECS needs one to {needs}",
                "set `executionRoleArn` to a role that trusts ecs-tasks.amazonaws.com (AWS's managed policy "
                "AmazonECSTaskExecutionRolePolicy covers image pulls and awslogs)",
            )
        )
    for label, arn in (("execution role", execution), ("task role", str(doc.get("taskRoleArn") or ""))):
        if arn:
            # The services of a spec usually share their roles: each is read once per run.
            read = functools.partial(_role, clients, label, arn)
            check = functools.partial(guarded, f"{label} {role_name(arn)}", "iam:GetRole", read)
            findings += clients.once(("verify role", label, arn), check)
    return findings


def role_name(arn: str) -> str:
    """arn:aws:iam::123456789012:role/path/name -> name (GetRole takes the name without its path)."""
    return arn.rsplit("/", 1)[-1] if ":role/" in arn else arn


def execution_role_needed(doc: Mapping[str, Any]) -> str | None:
    """What ECS would use the execution role for, or None."""
    fargate = "FARGATE" in (doc.get("requiresCompatibilities") or [])
    for c in doc.get("containerDefinitions") or []:
        if c.get("secrets") or (c.get("logConfiguration") or {}).get("secretOptions"):
            return "read the containers' secrets"
        if c.get("environmentFiles"):
            return "read the containers' environment files from S3"
        if c.get("repositoryCredentials"):
            return "read the private registry's credentials"
        if fargate and (c.get("logConfiguration") or {}).get("logDriver") == "awslogs":
            return "send the containers' logs to CloudWatch Logs"
        if fargate and ".dkr.ecr." in str(c.get("image", "")):
            return "pull the image from ECR"
    return None


def _role(clients: Clients, label: str, arn: str) -> list[Finding]:
    name = f"{label} {role_name(arn)}"
    try:
        role = clients.client("iam").get_role(RoleName=role_name(arn))["Role"]
    except Exception as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
        field = "executionRoleArn" if label == "execution role" else "taskRoleArn"
        return [Finding(name, FAILURE, "no such role", f"create it, or set `{field}` to a role that exists")]
    if trusts_ecs_tasks(role.get("AssumeRolePolicyDocument")):
        return [Finding(name, OK, f"exists and trusts {TASKS}")]
    return [
        Finding(
            name,
            FAILURE,
            f"its trust policy does not let {TASKS} assume it: tasks would fail to start",
            f'add a statement {{"Effect": "Allow", "Principal": {{"Service": "{TASKS}"}}, '
            '"Action": "sts:AssumeRole"} to its trust policy',
        )
    ]


def trusts_ecs_tasks(document: Any) -> bool:
    """Pure: a trust policy (a dict, or the URL-encoded JSON the API sends) allowing ECS tasks sts:AssumeRole."""
    if isinstance(document, str):
        try:
            document = json.loads(urllib.parse.unquote(document))
        except ValueError:
            return False
    statements = (document or {}).get("Statement") or []
    for st in statements if isinstance(statements, list) else [statements]:
        if st.get("Effect") != "Allow" or st.get("Condition"):
            continue
        actions = st.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principal = st.get("Principal") or {}
        services = principal.get("Service") if isinstance(principal, dict) else None
        services = [services] if isinstance(services, str) else services or []
        if TASKS in services:
            return True
    return False
