"""One botocore session per Region and its clients, made once per process and passed to every stage.

Endpoints and credentials come from the standard chain (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, OIDC web
identity, instance roles), so the same code talks to AWS, to a local stand-in, or to whatever the CI job
configured. Retries use botocore's standard mode with a generous budget because a deploy's polling must ride
out API throttling instead of failing on it.

The session is botocore's, dressed as boto3.Session dresses it (the same user agent, so CloudTrail shows the
same caller): for the four clients used here boto3.Session.client adds nothing else, and importing boto3 loads
s3transfer and adds a data folder every client's model lookup lists, both on the path to a redeploy's first
write.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

import botocore.exceptions

from . import __version__, ratelimit
from .errors import InputError

if TYPE_CHECKING:
    import botocore.config
    import botocore.session


@functools.cache
def retry_config() -> botocore.config.Config:
    # Made on first use: botocore.config imports botocore's HTTP stack (~0.1 s), which a command that makes no
    # AWS call (validate, run-local of a spec without secrets) never needs.
    import botocore.config

    return botocore.config.Config(
        retries={"mode": "standard", "max_attempts": 10},
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra=f"ecs-ship/{__version__}",
    )


T = TypeVar("T")


class Clients:
    """The clients of one Region. Each is made on first use: a client loads its API model (tens of
    milliseconds), and most commands need two of the four. Clients are thread-safe; their making is not, so it is
    done under a lock. Tests pass ready clients (or None for those never used)."""

    def __init__(
        self,
        region: str,
        ecs: Any = None,
        elbv2: Any = None,
        logs: Any = None,
        ecr: Any = None,
        factory: Callable[[str], Any] | None = None,
    ) -> None:
        self.region = region
        self._made: dict[str, Any] = {"ecs": ecs, "elbv2": elbv2, "logs": logs, "ecr": ecr}
        self._factory = factory
        self._lock = threading.Lock()
        self._once: dict[Hashable, Any] = {}
        self._once_locks: dict[Hashable, threading.Lock] = {}

    def once(self, key: Hashable, read: Callable[[], T]) -> T:
        """`read()` once per key for the clients' life (one run): for what a deploy never changes and the
        services of a run share, such as a load balancer's listeners. The services are prepared in parallel:
        the others wait for the first one's read rather than all reading at once."""
        with self._lock:
            key_lock = self._once_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._once:
                self._once[key] = read()
            return cast(T, self._once[key])

    def forget(self) -> None:
        """Drop what `once` kept: a new run reads it again."""
        with self._lock:
            self._once.clear()
            self._once_locks.clear()

    def client(self, name: str) -> Any:
        """A client of any other API of the Region (the pre-flight checks read IAM, SSM, EC2, …)."""
        return self._get(name)

    def for_region(self, region: str | None) -> Clients:
        """These clients, or another Region's (a secret or log group may live elsewhere)."""
        return self if region in (None, "", self.region) else make_clients(region)

    def _get(self, name: str) -> Any:
        made = self._made.get(name)
        if made is not None or self._factory is None:
            return made
        with self._lock:
            if self._made.get(name) is None:
                self._made[name] = self._factory(name)
            return self._made[name]

    @property
    def ecs(self) -> Any:
        return self._get("ecs")

    @property
    def elbv2(self) -> Any:
        return self._get("elbv2")

    @property
    def logs(self) -> Any:
        return self._get("logs")

    @property
    def ecr(self) -> Any:
        return self._get("ecr")


# What a new session would read from the environment: made again when any of it changed.
_SESSION_ENV = (
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)
_made_lock = threading.Lock()
_made: dict[tuple[str | None, ...], Clients] = {}


def _session(region: str | None) -> botocore.session.Session:
    """What boto3.Session(region_name=region) makes, without importing boto3. Imported here, not at the top:
    only a command that calls AWS pays for botocore's session machinery."""
    from importlib.metadata import version

    import botocore.session

    session = botocore.session.get_session()
    # boto3.Session's user agent: "Boto3/<version> ... Botocore/<version>" (a new session has no extra yet).
    session.user_agent_extra = f"Botocore/{session.user_agent_version}"
    session.user_agent_name = "Boto3"
    session.user_agent_version = version("boto3")
    if region is not None:
        session.set_config_variable("region", region)
    return session


def forget_reads() -> None:
    """A new run begins in this process (a test, an embedding): what earlier runs read once is read again."""
    with _made_lock:
        made = list(_made.values())
    for clients in made:
        clients.forget()


def make_clients(region: str | None) -> Clients:
    """The Region's clients, one set per process: the services of a run share them (and the run's rate budget,
    ratelimit.SHARED). No request is made here (no I/O in constructors)."""
    key = (
        region,
        *(os.environ.get(k) for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")),
    )
    with _made_lock:
        if key in _made:
            return _made[key]
        session = _session(region)
        resolved = session.get_config_variable("region")
        if not resolved:
            raise InputError(
                "failed to choose an AWS region: none is set",
                fix="set `region:` in the spec or AWS_REGION in the environment",
            )
        session_lock = threading.Lock()  # a botocore Session is not thread-safe; its clients are

        def client(name: str) -> Any:
            with session_lock:
                made = session.create_client(name, config=retry_config())
            return ratelimit.SHARED.attach(resolved, made)

        _made[key] = Clients(region=resolved, factory=client)
        return _made[key]


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
