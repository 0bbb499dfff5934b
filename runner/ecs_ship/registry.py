"""Registries: whose credentials, the distribution API (does a tag exist, what is its digest), and pushing.

The registry is the hand-off between build and deploy, so the digest that gets deployed is the one read back
from the registry after the push, never a local image id. Credentials reach a docker CLI only through a
temporary DOCKER_CONFIG that is removed afterwards: never a command line, never `docker login` state left behind.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import botocore.exceptions
import requests
import requests.adapters
import urllib3

from .aws import Clients, make_clients
from .errors import DeployError, InputError, Interrupted

if TYPE_CHECKING:
    import docker

Log = Callable[[str], None]
Mask = Callable[[str], None]

ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
DOCKER_HUB = "docker.io"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)
AUTH_FAILURE = ("unauthorized", "authentication required", "no basic auth credentials", "denied", "forbidden")


# --------------------------------------------------------------------------------------------
# naming
# --------------------------------------------------------------------------------------------
def split_repository(repository: str) -> tuple[str, str]:
    """'ghcr.io/o/r' -> ('ghcr.io', 'o/r'); 'user/app' -> ('docker.io', 'user/app'); 'nginx' -> library/nginx."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        # Docker Hub's official images live under library/, also when the host is written out.
        return first, f"library/{rest}" if first == DOCKER_HUB and "/" not in rest else rest
    path = repository if rest else f"library/{repository}"
    return DOCKER_HUB, path


def split_reference(ref: str) -> tuple[str, str]:
    """'repo@sha256:…' -> (repo, 'sha256:…'); 'host:5000/repo:tag' -> (…/repo, tag); no tag -> 'latest'."""
    if "@" in ref:
        repository, _, digest = ref.partition("@")
        return repository, digest
    slash, colon = ref.rfind("/"), ref.rfind(":")
    return (ref[:colon], ref[colon + 1 :]) if colon > slash else (ref, "latest")


def _is_loopback(hostname: str) -> bool:
    """Whether a bare host name (no port, no brackets) is this machine: localhost, 127.0.0.0/8 or ::1."""
    if hostname.lower() == "localhost":
        return True
    try:
        # An IP literal only: a DNS name such as 127.example.com is not loopback.
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _hostname(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # an unbalanced "[" in an IPv6 literal
        return ""


def _insecure(host: str) -> bool:
    # Docker itself talks plain HTTP to loopback registries; everything else is HTTPS.
    return _is_loopback(_hostname(f"//{host}"))


# --------------------------------------------------------------------------------------------
# credentials
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class Credentials:
    username: str
    password: str
    source: str  # where they came from, for messages (never the secret itself)

    def __repr__(self) -> str:
        # Objects end up in logs, tracebacks and test output; the password must not come with them.
        return f"Credentials(username={self.username!r}, password=***, source={self.source!r})"

    def auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


def mask_login(mask: Mask, username: str, password: str) -> None:
    """Mask a registry password and the form tools echo it in: base64 of `user:password`.

    That is both a Basic `Authorization` header and config.json's `auth` field, which a failing tool or a debug
    log may print whole.
    """
    mask(password)
    mask(base64.b64encode(f"{username}:{password}".encode()).decode())


def resolve_credentials(
    host: str,
    *,
    clients: Clients | None,
    mask: Mask,
    environ: Mapping[str, str] | None = None,
    docker_config: Mapping[str, Any] | None = None,
) -> Credentials | None:
    """Registry credentials: ECR's token, then the environment, then the user's `docker login`.

    `docker login` is read from config.json (and its credential helpers) directly, so no Docker engine has to be
    running for a deploy that builds nothing. `docker_config` replaces config.json (tests).
    """
    env = os.environ if environ is None else environ
    ecr = ECR_HOST.match(host)
    if ecr:
        return _ecr_credentials(ecr["account"], ecr["region"], clients, mask)
    pairs = [("ECS_SHIP_REGISTRY_USERNAME", "ECS_SHIP_REGISTRY_PASSWORD")]
    if host == "ghcr.io":
        pairs.append(("GITHUB_ACTOR", "GITHUB_TOKEN"))
    if host == DOCKER_HUB:
        pairs.append(("DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"))
    for user_var, password_var in pairs:
        if env.get(user_var) and env.get(password_var):
            mask_login(mask, env[user_var], env[password_var])
            return Credentials(env[user_var], env[password_var], f"${user_var}/${password_var}")
    # docker-py only for the last resort: importing it costs a redeploy with credentials in the environment
    # (the usual CI setup) more start-up time than the rest of its registry client.
    import docker.auth

    config = docker.auth.load_config() if docker_config is None else docker_config
    index = "https://index.docker.io/v1/" if host == DOCKER_HUB else host
    conf = docker.auth.resolve_authconfig(config, index)
    if conf and conf.get("password"):
        creds = Credentials(str(conf.get("username", "")), str(conf["password"]), "docker config")
        mask_login(mask, creds.username, creds.password)
        return creds
    return None


def _ecr_credentials(account: str, region: str, clients: Clients | None, mask: Mask) -> Credentials:
    # Another region's registry gets clients from a Session of its own: boto3.client() would use the module's
    # shared default session, which is not safe from the threads that deploy services in parallel.
    ecr = clients.ecr if clients is not None and clients.region == region else make_clients(region).ecr
    try:
        data = ecr.get_authorization_token(registryIds=[account])["authorizationData"][0]
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError) as exc:
        raise InputError(
            f"failed to log in to ECR {account} in {region}: {exc}",
            fix="give ecs-ship AWS credentials (e.g. aws-actions/configure-aws-credentials) for a role allowed "
            "ecr:GetAuthorizationToken",
        ) from exc
    except botocore.exceptions.ClientError as exc:
        if not _is_credentials_failure(exc):
            raise _ecr_fault(exc) from exc
        raise InputError(
            f"failed to log in to ECR {account} in {region}: {exc}",
            fix="grant ecr:GetAuthorizationToken to the deploying role",
        ) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise _ecr_fault(exc) from exc
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    mask_login(mask, user, password)
    return Credentials(user, password, "ecr:GetAuthorizationToken")


# Error codes that mean the caller's AWS identity or its permissions, not ECR, are at fault.
_CREDENTIAL_CODES = frozenset({"UnrecognizedClient", "UnrecognizedClientException", "InvalidClientTokenId"})
_CREDENTIAL_CODE_PREFIXES = ("AccessDenied", "ExpiredToken", "SignatureDoesNotMatch")


def _is_credentials_failure(exc: botocore.exceptions.ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in _CREDENTIAL_CODES or code.startswith(_CREDENTIAL_CODE_PREFIXES)


def _ecr_fault(exc: Exception) -> DeployError:
    # Throttling, a 5xx or an unreachable endpoint: retrying helps, IAM changes would not.
    return DeployError(
        f"failed to get an ECR login token: {exc}",
        fix="retry the deploy; if it keeps failing, check the AWS Health Dashboard and the network path to ECR",
    )


# --------------------------------------------------------------------------------------------
# the registry API
# --------------------------------------------------------------------------------------------
def retrying_session(backoff: float = 0.5) -> requests.Session:
    """A session that rides out a registry's brief 5xx or dropped connection (read-only requests only), as the
    Docker engine does for its own pulls and pushes, instead of failing a deploy on one bad answer."""
    retry = urllib3.util.Retry(
        total=3,
        backoff_factor=backoff,  # 0.5: waits 0.5, 1 and 2 s
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=frozenset({"HEAD", "GET"}),
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class RegistryAPI:
    """Just enough of the distribution API to answer "does this tag exist, and what is its digest"."""

    def __init__(self, host: str, credentials: Credentials | None, session: requests.Session | None = None) -> None:
        self.host = host
        self.credentials = credentials
        self.session = session or retrying_session()
        api_host = "registry-1.docker.io" if host == DOCKER_HUB else host
        self.base = f"{'http' if _insecure(host) else 'https'}://{api_host}"
        self._headers: dict[str, str] = {}

    def manifest_digest(self, path: str, reference: str) -> str | None:
        url = f"{self.base}/v2/{path}/manifests/{reference}"
        try:
            resp = self._request("HEAD", url, path)
            if resp.status_code == 200 and not resp.headers.get("Docker-Content-Digest"):
                resp = self._request("GET", url, path)
                if resp.status_code == 200:  # otherwise the body is an error page, not the manifest
                    return "sha256:" + hashlib.sha256(resp.content).hexdigest()
        except requests.RequestException as exc:
            raise DeployError(
                f"failed to reach registry {self.host}: {exc}", fix="check that the registry is up and reachable"
            ) from exc
        if resp.status_code == 404:
            return None
        if resp.status_code in (401, 403):
            raise InputError(
                f"failed to read {path}:{reference} from registry {self.host}: HTTP {resp.status_code}",
                fix=credentials_fix(self.host),
            )
        if resp.status_code != 200:
            raise DeployError(f"failed to read {path}:{reference} from registry {self.host}: HTTP {resp.status_code}")
        return str(resp.headers["Docker-Content-Digest"])

    def platforms(self, path: str, reference: str) -> list[str]:
        """The "os/arch" an image offers: each of an index's manifests, or a single image's config. Empty when
        the registry's answer says nothing of it (an attestation-only index, a config that names no OS)."""
        resp = self._request("GET", f"{self.base}/v2/{path}/manifests/{reference}", path)
        if resp.status_code != 200:
            return []
        body = resp.json()
        if body.get("manifests"):
            return [
                f"{m['platform'].get('os', '')}/{m['platform'].get('architecture', '')}"
                for m in body["manifests"]
                if (m.get("platform") or {}).get("architecture") not in (None, "unknown")
            ]
        config = (body.get("config") or {}).get("digest")
        if not config:
            return []
        blob = self._request("GET", f"{self.base}/v2/{path}/blobs/{config}", path)
        if blob.status_code != 200:
            return []
        data = blob.json()
        return [f"{data.get('os', '')}/{data['architecture']}"] if data.get("architecture") else []

    def _request(self, method: str, url: str, path: str) -> requests.Response:
        headers = {"Accept": MANIFEST_TYPES, **self._headers}
        resp = self.session.request(method, url, headers=headers, timeout=30)
        if resp.status_code != 401:
            return resp
        challenge = resp.headers.get("WWW-Authenticate", "")
        if challenge.lower().startswith("basic") and self.credentials:
            token = base64.b64encode(f"{self.credentials.username}:{self.credentials.password}".encode()).decode()
            self._headers = {"Authorization": f"Basic {token}"}
        elif challenge.lower().startswith("bearer"):
            self._headers = {"Authorization": f"Bearer {self._bearer(challenge, path)}"}
        else:
            return resp
        return self.session.request(method, url, headers={"Accept": MANIFEST_TYPES, **self._headers}, timeout=30)

    def _bearer(self, challenge: str, path: str) -> str:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", "")
        params.setdefault("scope", f"repository:{path}:pull")
        auth = None
        if self.credentials:
            self._check_realm(realm)
            auth = (self.credentials.username, self.credentials.password)
        resp = self.session.get(realm, params=params, auth=auth, timeout=30)
        if resp.status_code != 200:
            raise InputError(
                f"failed to get a registry token from {realm}: HTTP {resp.status_code}",
                fix=credentials_fix(self.host),
            )
        body = resp.json()
        return str(body.get("token") or body.get("access_token") or "")

    def _check_realm(self, realm: str) -> None:
        """Refuse to send the registry credentials to a token realm where others could read them.

        The realm is whatever URL the registry's 401 names. Over HTTPS the credentials reach only that host (Docker
        Hub's auth.docker.io and GHCR's realm are HTTPS); over plain HTTP they are readable on the way, which is
        accepted only on this machine and only for the registry's own host, as for the registry itself.
        """
        scheme = realm.partition("://")[0].lower()
        host = _hostname(realm)
        registry_host = _hostname(self.base)
        if scheme == "https" and host:
            return
        if scheme != "http" or not host:
            why = "is not an https:// URL"
        elif not _is_loopback(host):
            why = "is plain HTTP to another machine: anyone on the way could read them"
        elif host != registry_host:
            why = f"is plain HTTP to another host than the registry's ({registry_host})"
        else:
            return
        raise InputError(
            f"failed to get a registry token from {host or repr(realm)}: the credentials for registry {self.host} "
            f"were not sent, because its token realm {realm!r} {why}",
            fix=f"serve the token endpoint of {self.host} over HTTPS (plain HTTP is accepted only on the "
            "registry's own loopback host)",
        )


def credentials_fix(host: str) -> str:
    if ECR_HOST.match(host):
        return "grant the deploying role ecr:GetAuthorizationToken and push/pull on the repository"
    extra = " (or GITHUB_ACTOR/GITHUB_TOKEN)" if host == "ghcr.io" else ""
    extra = " (or DOCKERHUB_USERNAME/DOCKERHUB_TOKEN)" if host == DOCKER_HUB else extra
    return f"set ECS_SHIP_REGISTRY_USERNAME and ECS_SHIP_REGISTRY_PASSWORD{extra}, or `docker login {host}`"


def run_stream(
    start: Callable[[], Iterable[Mapping[str, Any]]], on_line: Callable[[Mapping[str, Any]], None] = lambda _: None
) -> str | None:
    """Run a streaming engine call (build, push, pull) to its end; return its error, if any.

    docker-py raises only when the engine refuses the request; a registry or build failure arrives as an
    `error`/`errorDetail` chunk in the stream, so both are turned into one return value here.
    """
    import docker.errors  # engine calls go through docker-py, which is imported only when one is made

    error = None
    try:
        for chunk in start():
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail") or {}
                error = str(chunk.get("error") or detail.get("message") or chunk)
                continue
            on_line(chunk)
    except docker.errors.APIError as exc:
        error = str(exc.explanation or exc)
    return error


def registry_failure(verb: str, reference: str, error: str) -> DeployError:
    """A push or pull that failed: bad credentials are bad input (exit 2), anything else a fault (exit 1)."""
    host = split_repository(split_reference(reference)[0])[0]
    if any(word in error.lower() for word in AUTH_FAILURE):
        return InputError(f"failed to {verb} {reference}: {error}", fix=credentials_fix(host))
    return DeployError(f"failed to {verb} {reference}: {error}", fix=f"check that registry {host} is up and reachable")


# A push that a dropped connection or a registry 5xx broke is tried again: the layers already up are not sent
# again, so a retry costs little, and a flaky link is common between CI runners and registries.
PUSH_ATTEMPTS = 3
PUSH_BACKOFF = 2.0  # seconds before the 2nd attempt, doubled for each next one


def retrying(
    push_once: Callable[[], str | None],
    log: Log,
    cancel: threading.Event | None = None,
    attempts: int = PUSH_ATTEMPTS,
    backoff: float = PUSH_BACKOFF,
) -> str | None:
    """Run `push_once` until it succeeds, at most `attempts` times. A refusal of the credentials (bad input)
    is final, and a cancel stops the waiting between attempts."""
    for attempt in range(1, attempts + 1):
        try:
            return push_once()
        except (InputError, Interrupted):
            raise
        except DeployError as exc:
            if attempt == attempts:
                raise
            delay = backoff * 2 ** (attempt - 1)
            log(f"{exc}; pushing again in {delay:g}s (attempt {attempt + 1} of {attempts})")
            if cancel is None:
                time.sleep(delay)
            elif cancel.wait(delay):
                raise Interrupted("interrupted while waiting to push again") from exc
    raise AssertionError("unreachable: the last attempt returns or raises")


def push(
    repository: str, tag: str, credentials: Credentials | None, docker_client: docker.DockerClient, log: Log
) -> str | None:
    """Push and return the digest the engine reports. docker-py's push never raises on registry errors."""
    reported: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()

    def on_line(chunk: Mapping[str, Any]) -> None:
        aux = chunk.get("aux") or {}
        if aux.get("Digest"):
            reported["digest"] = str(aux["Digest"])
        status = str(chunk.get("status") or "")
        layer = str(chunk.get("id") or "")
        if status in ("Pushed", "Layer already exists") or status.startswith("Mounted from"):
            if (layer, status) not in seen:
                seen.add((layer, status))
                log(f"{layer}: {status}")
        elif status and not chunk.get("progressDetail") and status not in ("Pushing", "Preparing", "Waiting"):
            log(status)

    error = run_stream(
        lambda: docker_client.api.push(
            repository,
            tag=tag,
            auth_config=credentials.auth_config() if credentials else None,
            stream=True,
            decode=True,
        ),
        on_line,
    )
    if error:
        raise registry_failure("push", f"{repository}:{tag}", error)
    return reported.get("digest")


def user_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else Path.home() / ".docker"


def merged_config(user: Mapping[str, Any], host: str, credentials: Credentials | None) -> dict[str, Any]:
    """The user's config.json with this registry's login added: their other logins, credHelpers and credsStore
    stay. A credsStore (or a credHelper for this host) would answer for this registry instead of `auths`, so
    this host alone is pointed at the file store by an empty helper name."""
    config: dict[str, Any] = json.loads(json.dumps(user))  # a deep copy of plain JSON data
    if credentials is None:
        return config
    key = "https://index.docker.io/v1/" if host == DOCKER_HUB else host
    token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    config.setdefault("auths", {})[key] = {"auth": token}
    if config.get("credsStore") or key in config.get("credHelpers", {}):
        config.setdefault("credHelpers", {})[key] = ""
    return config


@contextlib.contextmanager
def cli_config(host: str, credentials: Credentials | None, environ: Mapping[str, str] | None = None) -> Iterator[Path]:
    """A temporary DOCKER_CONFIG for the docker CLI: config.json with this registry's login merged into the user's,
    and the rest of the user's config folder (cli-plugins such as buildx, buildx's builders, contexts) linked in
    so the CLI behaves as it does for them. Removed on the way out, also on errors."""
    source = user_config_dir(environ)
    user: Mapping[str, Any] = {}
    if (source / "config.json").is_file():
        try:
            user = json.loads((source / "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise InputError(
                f"failed to read the docker config {source / 'config.json'}: {exc}",
                fix="repair or remove that file",
            ) from exc
    folder = Path(tempfile.mkdtemp(prefix="ecs-ship-docker-"))
    try:
        if source.is_dir():
            for entry in source.iterdir():
                if entry.name != "config.json":
                    (folder / entry.name).symlink_to(entry.resolve())
        target = folder / "config.json"
        # Created 0600 before anything is written: the file holds a registry password.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(merged_config(user, host, credentials), f)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def stream_command(
    argv: list[str], env: Mapping[str, str], log: Log, keep: int = 30, cancel: threading.Event | None = None
) -> tuple[int, list[str]]:
    """Run a docker CLI command, its output (stdout and stderr, as they come) line by line into `log`; return
    its exit code and its last `keep` lines, for the error message. A cancel stops the command, so a cancelled
    run never leaves it running behind (nor the temporary login it was given)."""
    tail: list[str] = []
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", env=dict(env)
        )
    except OSError as exc:
        raise InputError(
            f"failed to run {argv[0]}: {exc}", fix="install the docker CLI or point ECS_SHIP_DOCKER to it"
        ) from exc

    def stop_on_cancel() -> None:
        assert cancel is not None
        while proc.poll() is None:
            if cancel.wait(0.2):
                proc.terminate()
                return

    if cancel is not None:
        threading.Thread(target=stop_on_cancel, name="ecs-ship-cli-cancel", daemon=True).start()
    assert proc.stdout is not None
    with proc:
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            log(line)
            tail = [*tail[-(keep - 1) :], line]
    if cancel is not None and cancel.is_set() and proc.returncode != 0:
        raise Interrupted(f"interrupted: stopped `{' '.join(argv[:3])}`")
    return proc.returncode, tail


_PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def cli_push(
    docker_cli: str, repository: str, tag: str, config_dir: Path, log: Log, cancel: threading.Event | None = None
) -> str | None:
    """`docker push` with the temporary config; return the digest the CLI reports."""
    ref = f"{repository}:{tag}"
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}
    code, tail = stream_command([docker_cli, "push", ref], env, log, keep=10, cancel=cancel)
    if code != 0:
        raise registry_failure("push", ref, " / ".join(line.strip() for line in tail if line.strip())[-600:])
    digests = [m[1] for line in tail if (m := _PUSHED_DIGEST.search(line))]
    return digests[-1] if digests else None
