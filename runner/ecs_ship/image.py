"""Build, log in, push and read back the digest of each image the spec builds (docker-py + the registry API).

The registry is the hand-off between build and deploy, so the digest that gets deployed is the one read back
from the registry after the push, never a local image id. A tag that already exists in the registry (the same
commit built before) is not built or pushed again.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.exceptions
import docker
import docker.auth
import docker.errors
import requests
import requests.adapters
import urllib3

from .aws import Clients, make_clients
from .errors import DeployError, InputError
from .spec import ImageSpec, render_tag

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


@dataclass(frozen=True)
class GitInfo:
    sha: str
    dirty: bool

    @property
    def short_sha(self) -> str:
        return self.sha[:7]


def git_info(folder: Path, environ: Mapping[str, str] | None = None) -> GitInfo | None:
    """The commit being shipped: $GITHUB_SHA in Actions (the checkout may be detached), else `git` in folder."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_SHA"):
        return GitInfo(env["GITHUB_SHA"], dirty=False)
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        status = subprocess.run(
            # Untracked (not ignored) files count: `COPY . .` would put them in the image.
            ["git", "status", "--porcelain", "--untracked-files=normal"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return GitInfo(sha, dirty=bool(status)) if sha else None


def tag_values(git: GitInfo | None, env_name: str | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    if git is not None:
        # An uncommitted change must not reuse (and so silently skip) the clean commit's tag.
        suffix = "-dirty" if git.dirty else ""
        values["git_sha"] = git.sha + suffix
        values["git_short_sha"] = git.short_sha + suffix
    if env.get("GITHUB_RUN_NUMBER"):
        values["run_number"] = env["GITHUB_RUN_NUMBER"]
    if env_name:
        values["env"] = env_name
    return values


def image_tag(spec: ImageSpec, values: Mapping[str, str]) -> str:
    missing = sorted(set(re.findall(r"{(\w+)}", spec.tag)) - set(values))
    if missing:
        hints = {
            "git_sha": "run inside a git checkout or set GITHUB_SHA",
            "git_short_sha": "run inside a git checkout or set GITHUB_SHA",
            "run_number": "set GITHUB_RUN_NUMBER (GitHub Actions sets it)",
            "env": "pass --env",
        }
        raise InputError(
            f"failed to render the tag {spec.tag!r} of container {spec.container!r}: no value for "
            + ", ".join("{" + m + "}" for m in missing),
            fix="; ".join(hints.get(m, "") for m in missing) + ", or pass --image-tag to deploy an existing tag",
        )
    return render_tag(spec.tag, values)


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


# --------------------------------------------------------------------------------------------
# build and push
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShippedImage:
    container: str
    repository: str
    tag: str
    digest: str
    built: bool
    pushed: bool

    @property
    def ref(self) -> str:
        return f"{self.repository}@{self.digest}"


def run_stream(
    start: Callable[[], Iterable[Mapping[str, Any]]], on_line: Callable[[Mapping[str, Any]], None] = lambda _: None
) -> str | None:
    """Run a streaming engine call (build, push, pull) to its end; return its error, if any.

    docker-py raises only when the engine refuses the request; a registry or build failure arrives as an
    `error`/`errorDetail` chunk in the stream, so both are turned into one return value here.
    """
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


def build(
    spec: ImageSpec,
    tag: str,
    docker_client: docker.DockerClient,
    log: Log,
    *,
    cache_from: list[str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> None:
    def on_line(chunk: Mapping[str, Any]) -> None:
        for line in str(chunk.get("stream") or "").rstrip().splitlines():
            log(line)

    error = run_stream(
        lambda: docker_client.api.build(
            path=str(spec.context),
            dockerfile=str(spec.dockerfile),
            tag=f"{spec.repository}:{tag}",
            buildargs=dict(spec.build_args),
            target=spec.target,
            platform=spec.platform,
            cache_from=cache_from or None,
            labels=dict(labels or {}),
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        ),
        on_line,
    )
    if error:
        raise DeployError(
            f"failed to build image for container {spec.container!r}: {error}",
            fix=f"reproduce locally: docker build --platform {spec.platform} -f {spec.dockerfile} {spec.context}",
        )


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


def missing_image(repository: str, tag: str) -> InputError:
    host, _ = split_repository(repository)
    return InputError(
        f"failed to find image {repository}:{tag} in registry {host}",
        fix="push that tag first, or deploy without --image-tag/--skip-build to build it",
    )


def ship(
    spec: ImageSpec,
    tag: str,
    *,
    docker_client: Callable[[], docker.DockerClient] | None,
    registry: RegistryAPI,
    log: Log,
    build_allowed: bool = True,
    cache_from: list[str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> ShippedImage:
    """Make sure `repository:tag` is in the registry (building and pushing only if it is not); return its digest.

    `docker_client` is called only when a build is needed: a redeploy of an image the registry has needs no engine.
    """
    _, path = split_repository(spec.repository)
    existing = registry.manifest_digest(path, tag)
    if existing:
        log(f"{spec.repository}:{tag} is already in the registry ({existing}); not building it again")
        return ShippedImage(spec.container, spec.repository, tag, existing, built=False, pushed=False)
    if not build_allowed:
        raise missing_image(spec.repository, tag)
    if docker_client is None:
        raise InputError("failed to build: no Docker engine answered", fix="start Docker or set DOCKER_HOST")
    engine = docker_client()
    build(spec, tag, engine, log, cache_from=cache_from, labels=labels)
    reported = push(spec.repository, tag, registry.credentials, engine, log)
    digest = registry.manifest_digest(path, tag)
    if digest is None:
        raise DeployError(
            f"failed to read back {spec.repository}:{tag} after pushing it: the registry does not have it"
        )
    if reported and reported != digest:
        raise DeployError(
            f"failed to confirm the push of {spec.repository}:{tag}: the engine reported {reported}, "
            f"the registry serves {digest}",
            fix="another push to the same tag raced this one; use a unique tag such as {git_sha}",
        )
    return ShippedImage(spec.container, spec.repository, tag, digest, built=True, pushed=True)
