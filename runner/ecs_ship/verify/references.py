"""Pure: what a container's `secrets[].valueFrom` and `environmentFiles[].value` point at.

ECS reads a secret from Secrets Manager when valueFrom is a Secrets Manager ARN, optionally followed by
``:json-key:version-stage:version-id`` (all three colons present, each part may be empty, at most one of the
version stage and id: "Pass Secrets Manager secrets through Amazon ECS environment variables"); from SSM
Parameter Store otherwise, by name (same Region) or ARN. Environment files are S3 object ARNs ending in `.env`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reference:
    container: str
    name: str  # the environment variable (secrets) or the file's ARN (environmentFiles)
    kind: str  # ssm | secretsmanager | s3
    target: str  # the parameter name or ARN / the secret ARN without its suffix / "bucket/key"
    region: str | None = None  # from an ARN; None: the task's Region
    json_key: str = ""
    version_stage: str = ""
    version_id: str = ""
    problem: str | None = None  # malformed: why


def references(document: Mapping[str, Any]) -> Iterator[Reference]:
    for c in document.get("containerDefinitions") or []:
        name = str(c.get("name", ""))
        for secret in c.get("secrets") or []:
            yield secret_reference(name, str(secret.get("name", "")), str(secret.get("valueFrom", "")))
        for log_secret in (c.get("logConfiguration") or {}).get("secretOptions") or []:
            yield secret_reference(name, str(log_secret.get("name", "")), str(log_secret.get("valueFrom", "")))
        for env_file in c.get("environmentFiles") or []:
            yield env_file_reference(name, str(env_file.get("value", "")), str(env_file.get("type", "s3")))


def secret_reference(container: str, name: str, value_from: str) -> Reference:
    parts = value_from.split(":")
    if not value_from.startswith("arn:") or len(parts) < 6:
        return Reference(container, name, "ssm", value_from)
    service, region = parts[2], parts[3] or None
    if service == "ssm":
        return Reference(container, name, "ssm", value_from, region)
    if service != "secretsmanager":
        return Reference(
            container, name, "ssm", value_from, region, problem=f"{service} is neither SSM nor Secrets Manager"
        )
    if len(parts) < 7 or parts[5] != "secret" or not parts[6]:
        return Reference(container, name, "secretsmanager", value_from, region, problem="not a secret's ARN")
    arn = ":".join(parts[:7])
    extra = parts[7:]
    if not extra:
        return Reference(container, name, "secretsmanager", arn, region)
    if len(extra) != 3:
        return Reference(
            container,
            name,
            "secretsmanager",
            arn,
            region,
            problem=f"after the secret's ARN come {len(extra)} field(s); ECS expects three "
            "(json-key:version-stage:version-id, each may be empty)",
        )
    key, stage, version = extra
    problem = "names both a version stage and a version id; ECS takes one" if stage and version else None
    return Reference(container, name, "secretsmanager", arn, region, key, stage, version, problem)


def env_file_reference(container: str, value: str, kind: str) -> Reference:
    if kind != "s3":
        return Reference(container, value, "s3", value, problem=f"type {kind!r}: ECS reads environment files from s3")
    # arn:aws:s3:::bucket/key
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[2] != "s3" or "/" not in parts[5]:
        return Reference(container, value, "s3", value, problem="not an S3 object ARN (arn:aws:s3:::bucket/key.env)")
    problem = None if parts[5].endswith(".env") else "ECS reads environment files whose name ends in .env"
    return Reference(container, value, "s3", parts[5], problem=problem)
