"""One boto3 session and its clients, made once in cli.py and passed to every stage.

Endpoints and credentials come from the standard chain (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, OIDC web
identity, instance roles), so the same code talks to AWS, to a local stand-in, or to whatever the CI job
configured. Retries use botocore's standard mode with a generous budget because a deploy's polling must ride
out API throttling instead of failing on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from . import __version__
from .errors import InputError

RETRY_CONFIG = botocore.config.Config(
    retries={"mode": "standard", "max_attempts": 10},
    connect_timeout=10,
    read_timeout=60,
    user_agent_extra=f"ecs-ship/{__version__}",
)


@dataclass(frozen=True)
class Clients:
    region: str
    ecs: Any
    elbv2: Any
    logs: Any
    ecr: Any


def make_clients(region: str | None) -> Clients:
    """Clients for one region; no request is made here (no I/O in constructors)."""
    session = boto3.Session(region_name=region) if region else boto3.Session()
    resolved = session.region_name
    if not resolved:
        raise InputError(
            "failed to choose an AWS region: none is set",
            fix="set `region:` in the spec or AWS_REGION in the environment",
        )

    def client(name: str) -> Any:
        return session.client(name, config=RETRY_CONFIG)  # type: ignore[call-overload]

    return Clients(region=resolved, ecs=client("ecs"), elbv2=client("elbv2"), logs=client("logs"), ecr=client("ecr"))


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


CREDENTIAL_ERRORS = (
    botocore.exceptions.NoCredentialsError,
    botocore.exceptions.PartialCredentialsError,
    botocore.exceptions.NoRegionError,
)
CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "AccessDenied",
    "AccessDeniedException",
    "SignatureDoesNotMatch",
}


def is_credential_error(exc: BaseException) -> bool:
    """Missing, invalid, expired or insufficient credentials: before any write, bad input (exit 2)."""
    return isinstance(exc, CREDENTIAL_ERRORS) or error_code(exc) in CREDENTIAL_CODES


# What an endpoint answers for an action it does not offer: an older ECS-compatible API, a partition or Region
# without the feature.
UNSUPPORTED_CODES = {"UnknownOperationException", "InvalidAction", "UnsupportedFeatureException", "NotImplemented"}


def unsupported(exc: BaseException) -> bool:
    return error_code(exc) in UNSUPPORTED_CODES


def timestamp(value: Any) -> float | None:
    """Seconds since the epoch from an API timestamp (boto3 gives datetimes; a plain number passes through)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return None
