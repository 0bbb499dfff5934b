"""Every secret and environment file a container names exists: metadata reads only, no secret value is read."""

from __future__ import annotations

import functools
from collections import defaultdict

from ..aws import Clients, error_code
from .model import FAILURE, OK, Finding, Subject
from .permissions import guarded
from .references import Reference, references

SSM_BATCH = 50  # DescribeParameters' Name filter takes at most 50 values


def check(subject: Subject, clients: Clients) -> list[Finding]:
    findings: list[Finding] = []
    ssm: dict[str | None, list[Reference]] = defaultdict(list)
    for ref in references(subject.document):
        label = _label(ref)
        if ref.problem:
            findings.append(Finding(label, FAILURE, f"{ref.target}: {ref.problem}", _fix(ref)))
        elif ref.kind == "ssm":
            ssm[ref.region].append(ref)
        elif ref.kind == "secretsmanager":
            regional = clients.for_region(ref.region)
            findings += guarded(label, "secretsmanager:DescribeSecret", functools.partial(_secret, regional, ref))
        else:
            findings += guarded(label, "s3:GetObject", functools.partial(_env_file, clients, ref))
    for region, refs in ssm.items():
        findings += guarded(
            ", ".join(_label(r) for r in refs),
            "ssm:DescribeParameters",
            functools.partial(_parameters, clients.for_region(region), refs),
        )
    return findings


def _label(ref: Reference) -> str:
    if ref.kind == "s3":
        return f"environment file of {ref.container}"
    return f"secret {ref.name} of {ref.container}"


def _fix(ref: Reference) -> str:
    if ref.kind == "s3":
        return "name the file as arn:aws:s3:::bucket/path/file.env"
    return (
        "write valueFrom as the secret's ARN, or the ARN followed by :json-key:version-stage:version-id "
        "(all three colons; leave the parts you do not use empty)"
    )


def parameter_name(ref: Reference) -> str:
    """arn:aws:ssm:r:a:parameter/app/db -> /app/db; arn:...:parameter/plain -> plain; a name stays a name."""
    if not ref.target.startswith("arn:"):
        return ref.target
    path = ref.target.split(":", 5)[5].removeprefix("parameter")
    return path if path.count("/") > 1 else path.removeprefix("/")


def _parameters(clients: Clients, refs: list[Reference]) -> list[Finding]:
    names = list(dict.fromkeys(parameter_name(r) for r in refs))
    found: set[str] = set()
    ssm = clients.client("ssm")
    for i in range(0, len(names), SSM_BATCH):
        flt = [{"Key": "Name", "Option": "Equals", "Values": names[i : i + SSM_BATCH]}]
        for page in ssm.get_paginator("describe_parameters").paginate(ParameterFilters=flt):
            found |= {str(p["Name"]) for p in page.get("Parameters", [])}
    out = []
    for ref in refs:
        name = parameter_name(ref)
        if name in found:
            out.append(Finding(_label(ref), OK, f"SSM parameter {name} exists"))
        else:
            out.append(
                Finding(
                    _label(ref),
                    FAILURE,
                    f"no SSM parameter {name} in {clients.region}: "
                    "the task would stop with ResourceInitializationError",
                    f"create it (aws ssm put-parameter --name {name} --type SecureString ...), or fix valueFrom",
                )
            )
    return out


def _secret(clients: Clients, ref: Reference) -> list[Finding]:
    label = _label(ref)
    try:
        secret = clients.client("secretsmanager").describe_secret(SecretId=ref.target)
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        return [
            Finding(
                label,
                FAILURE,
                f"no secret {ref.target} in {clients.region}: the task would stop with ResourceInitializationError",
                "create it in Secrets Manager, or fix valueFrom",
            )
        ]
    if secret.get("DeletedDate"):
        deleted = f"secret {ref.target} is scheduled for deletion"
        return [Finding(label, FAILURE, deleted, "restore it (aws secretsmanager restore-secret)")]
    versions = secret.get("VersionIdsToStages") or {}
    if ref.version_id and ref.version_id not in versions:
        return [Finding(label, FAILURE, f"secret {ref.target} has no version {ref.version_id}", "fix the version id")]
    if ref.version_stage and not any(ref.version_stage in stages for stages in versions.values()):
        return [
            Finding(
                label, FAILURE, f"no version of {ref.target} has stage {ref.version_stage}", "fix the version stage"
            )
        ]
    key = f" (JSON key {ref.json_key})" if ref.json_key else ""
    return [Finding(label, OK, f"Secrets Manager secret {secret.get('Name', ref.target)} exists{key}")]


def _env_file(clients: Clients, ref: Reference) -> list[Finding]:
    bucket, _, key = ref.target.partition("/")
    label = _label(ref)
    try:
        clients.client("s3").head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if error_code(exc) not in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
            raise
        return [Finding(label, FAILURE, f"no object s3://{bucket}/{key}", "upload it, or fix environmentFiles")]
    return [Finding(label, OK, f"s3://{bucket}/{key} exists")]
