"""Image naming, tags, credentials, the registry API (against a local fake registry), push and ship.

No Docker engine: push/build/ship get a fake docker client; the registry is a tiny HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import botocore.client
import botocore.config
import botocore.exceptions
import docker.errors
import pytest
import requests
from botocore.stub import Stubber

from ecs_ship import image
from ecs_ship import registry as registry_module
from ecs_ship.aws import Clients
from ecs_ship.builder import Builder
from ecs_ship.cache import CacheFlags
from ecs_ship.errors import DeployError, InputError, Interrupted
from ecs_ship.image import GitInfo
from ecs_ship.registry import Credentials, RegistryAPI
from ecs_ship.spec import ImageSpec

SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
ECR_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


LEGACY = Builder("legacy", None, "test")


def image_spec(tmp_path: Path, *, tag: str = "{git_sha}", repository: str = f"{ECR_HOST}/hello") -> ImageSpec:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY app /app\n")
    return ImageSpec(
        container="web",
        repository=repository,
        context=tmp_path,
        dockerfile=tmp_path / "Dockerfile",
        platform=("linux/amd64",),
        build_args={"VERSION": "1"},
        target=None,
        tag=tag,
    )


# ---------------------------------------------------------------------------------------------------------------------
# naming
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        ("nginx", ("docker.io", "library/nginx")),
        ("user/app", ("docker.io", "user/app")),
        ("user/team/app", ("docker.io", "user/team/app")),
        ("docker.io/user/app", ("docker.io", "user/app")),
        ("docker.io/nginx", ("docker.io", "library/nginx")),
        ("ghcr.io/o/r", ("ghcr.io", "o/r")),
        ("127.0.0.1:5000/x", ("127.0.0.1:5000", "x")),
        ("localhost:5000/x", ("localhost:5000", "x")),
        ("localhost/x", ("localhost", "x")),
        (f"{ECR_HOST}/team/hello", (ECR_HOST, "team/hello")),
    ],
)
def test_split_repository(repository: str, expected: tuple[str, str]) -> None:
    assert registry_module.split_repository(repository) == expected


@pytest.mark.parametrize(
    ("host", "insecure"),
    [
        ("127.0.0.1:5000", True),
        ("127.0.0.1", True),
        ("127.1.2.3:443", True),
        ("localhost:5000", True),
        ("localhost", True),
        ("[::1]:5000", True),
        ("ghcr.io", False),
        ("docker.io", False),
        (ECR_HOST, False),
        ("registry.example.com:5000", False),
        ("10.0.0.1:5000", False),
        ("localhost.example.com:5000", False),
        # A DNS name that merely starts with "127." is not loopback: credentials must not go out in clear text.
        ("127.example.com:5000", False),
    ],
)
def test_insecure_only_for_loopback(host: str, insecure: bool) -> None:
    assert registry_module._insecure(host) is insecure


def test_registry_api_base_url() -> None:
    assert RegistryAPI("127.0.0.1:5000", None).base == "http://127.0.0.1:5000"
    assert RegistryAPI("ghcr.io", None).base == "https://ghcr.io"
    assert RegistryAPI("docker.io", None).base == "https://registry-1.docker.io"


# ---------------------------------------------------------------------------------------------------------------------
# tags
# ---------------------------------------------------------------------------------------------------------------------


def test_tag_values_dirty_run_number_and_env() -> None:
    values = image.tag_values(GitInfo(SHA, dirty=True), "prod", {"GITHUB_RUN_NUMBER": "42"})
    assert values == {
        "git_sha": SHA + "-dirty",
        "git_short_sha": "0123456-dirty",
        "run_number": "42",
        "env": "prod",
    }


def test_tag_values_clean_and_without_extras() -> None:
    assert image.tag_values(GitInfo(SHA, dirty=False), None, {}) == {"git_sha": SHA, "git_short_sha": "0123456"}
    assert image.tag_values(None, None, {"GITHUB_RUN_NUMBER": ""}) == {}


def test_tag_values_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_RUN_NUMBER", "7")
    assert image.tag_values(None, "dev") == {"run_number": "7", "env": "dev"}


def test_image_tag_renders(tmp_path: Path) -> None:
    spec = image_spec(tmp_path, tag="{git_short_sha}-{run_number}")
    assert image.image_tag(spec, {"git_short_sha": "0123456", "run_number": "42"}) == "0123456-42"


def test_image_tag_names_missing_placeholder_and_fix(tmp_path: Path) -> None:
    spec = image_spec(tmp_path, tag="{git_short_sha}-{run_number}")
    with pytest.raises(InputError) as caught:
        image.image_tag(spec, {"git_short_sha": "0123456"})
    err = caught.value
    assert err.message == (
        "failed to render the tag '{git_short_sha}-{run_number}' of container 'web': no value for {run_number}"
    )
    assert err.fix == "set GITHUB_RUN_NUMBER (GitHub Actions sets it), or pass --image-tag to deploy an existing tag"


def test_image_tag_without_git(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        image.image_tag(image_spec(tmp_path, tag="{git_sha}"), image.tag_values(None, None, {}))
    assert caught.value.message.endswith("no value for {git_sha}")
    assert caught.value.fix is not None and "GITHUB_SHA" in caught.value.fix


# ---------------------------------------------------------------------------------------------------------------------
# git
# ---------------------------------------------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)
    folder = tmp_path / "app"
    folder.mkdir()
    git(folder, "init", "-q")
    (folder / "app.py").write_text("print('hello')\n", encoding="utf-8")
    git(folder, "add", "app.py")
    git(folder, "commit", "-q", "-m", "first")
    return folder


def test_git_info_reads_a_clean_repository(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert len(head) == 40
    info = image.git_info(repo, environ={})
    assert info == GitInfo(head, dirty=False)
    assert info is not None and info.short_sha == head[:7]


def test_git_info_detects_a_modified_tracked_file(repo: Path) -> None:
    (repo / "app.py").write_text("print('changed')\n", encoding="utf-8")
    assert image.git_info(repo, environ={}) == GitInfo(git(repo, "rev-parse", "HEAD"), dirty=True)


def test_git_info_detects_a_staged_change(repo: Path) -> None:
    (repo / "new.py").write_text("x = 1\n", encoding="utf-8")
    git(repo, "add", "new.py")
    info = image.git_info(repo, environ={})
    assert info is not None and info.dirty is True


def test_git_info_counts_untracked_files_but_not_ignored_ones(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n", encoding="utf-8")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore")
    (repo / "debug.log").write_text("noise\n", encoding="utf-8")
    info = image.git_info(repo, environ={})
    assert info is not None and info.dirty is False
    # A new file a `COPY . .` would ship must not reuse the clean commit's tag.
    (repo / "notes.txt").write_text("scratch\n", encoding="utf-8")
    info = image.git_info(repo, environ={})
    assert info is not None and info.dirty is True


def test_git_info_prefers_github_sha(repo: Path) -> None:
    (repo / "app.py").write_text("print('changed')\n", encoding="utf-8")
    assert image.git_info(repo, environ={"GITHUB_SHA": SHA}) == GitInfo(SHA, dirty=False)


def test_git_info_reads_github_sha_from_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_SHA", SHA)
    assert image.git_info(tmp_path) == GitInfo(SHA, dirty=False)


def test_git_info_outside_a_repository_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert image.git_info(tmp_path, environ={}) is None


# ---------------------------------------------------------------------------------------------------------------------
# credentials
# ---------------------------------------------------------------------------------------------------------------------


class Masked(list[str]):
    def __call__(self, secret: str) -> None:
        self.append(secret)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_ecs_ship_registry_env_wins() -> None:
    mask = Masked()
    env = {
        "ECS_SHIP_REGISTRY_USERNAME": "bot",
        "ECS_SHIP_REGISTRY_PASSWORD": "pw-1",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_TOKEN": "gh-token",
    }
    creds = registry_module.resolve_credentials("ghcr.io", clients=None, mask=mask, environ=env, docker_config={})
    assert creds == Credentials("bot", "pw-1", "$ECS_SHIP_REGISTRY_USERNAME/$ECS_SHIP_REGISTRY_PASSWORD")
    # The password, and the `Authorization: Basic` / config.json `auth` form tools echo it in.
    assert mask == ["pw-1", b64("bot:pw-1")]


def test_ghcr_falls_back_to_github_token() -> None:
    mask = Masked()
    env = {"GITHUB_ACTOR": "octocat", "GITHUB_TOKEN": "gh-token", "DOCKERHUB_USERNAME": "u", "DOCKERHUB_TOKEN": "d"}
    creds = registry_module.resolve_credentials("ghcr.io", clients=None, mask=mask, environ=env, docker_config={})
    assert creds == Credentials("octocat", "gh-token", "$GITHUB_ACTOR/$GITHUB_TOKEN")
    assert mask == ["gh-token", b64("octocat:gh-token")]


def test_docker_hub_falls_back_to_dockerhub_env() -> None:
    mask = Masked()
    env = {"GITHUB_ACTOR": "octocat", "GITHUB_TOKEN": "gh-token", "DOCKERHUB_USERNAME": "u", "DOCKERHUB_TOKEN": "d"}
    creds = registry_module.resolve_credentials("docker.io", clients=None, mask=mask, environ=env, docker_config={})
    assert creds == Credentials("u", "d", "$DOCKERHUB_USERNAME/$DOCKERHUB_TOKEN")
    assert creds.auth_config() == {"username": "u", "password": "d"}
    assert mask == ["d", b64("u:d")]


def test_other_hosts_use_only_ecs_ship_env() -> None:
    mask = Masked()
    env = {"GITHUB_ACTOR": "octocat", "GITHUB_TOKEN": "gh-token", "DOCKERHUB_USERNAME": "u", "DOCKERHUB_TOKEN": "d"}
    assert (
        registry_module.resolve_credentials(
            "registry.example.com", clients=None, mask=mask, environ=env, docker_config={}
        )
        is None
    )
    # A username without a password is not a credential.
    half = {"ECS_SHIP_REGISTRY_USERNAME": "bot"}
    assert (
        registry_module.resolve_credentials("ghcr.io", clients=None, mask=mask, environ=half, docker_config={}) is None
    )
    assert mask == []


def test_docker_config_credentials_are_used_and_masked() -> None:
    auths = {"auths": {"registry.example.com": {"username": "cfg-user", "password": "cfg-pw"}}}
    mask = Masked()
    creds = registry_module.resolve_credentials(
        "registry.example.com", clients=None, mask=mask, environ={}, docker_config=auths
    )
    assert creds == Credentials("cfg-user", "cfg-pw", "docker config")
    assert mask == ["cfg-pw", b64("cfg-user:cfg-pw")]


@pytest.fixture
def ecr_clients() -> Iterator[tuple[Clients, Stubber]]:
    ecr = boto3.client("ecr", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(ecr) as stub:
        yield Clients(region="eu-west-1", ecs=None, elbv2=None, logs=None, ecr=ecr), stub
        stub.assert_no_pending_responses()


def test_ecr_credentials_come_from_get_authorization_token(ecr_clients: tuple[Clients, Stubber]) -> None:
    clients, stub = ecr_clients
    token = base64.b64encode(b"AWS:secret").decode()
    stub.add_response(
        "get_authorization_token",
        {
            "authorizationData": [
                {
                    "authorizationToken": token,
                    "expiresAt": datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc),
                    "proxyEndpoint": f"https://{ECR_HOST}",
                }
            ]
        },
        {"registryIds": ["123456789012"]},
    )
    mask = Masked()
    # The ECR token is used even when the generic variables are set.
    env = {"ECS_SHIP_REGISTRY_USERNAME": "bot", "ECS_SHIP_REGISTRY_PASSWORD": "pw"}
    creds = registry_module.resolve_credentials(ECR_HOST, clients=clients, mask=mask, environ=env)
    assert creds == Credentials("AWS", "secret", "ecr:GetAuthorizationToken")
    assert mask == ["secret", token]


def test_ecr_failure_is_an_input_error(ecr_clients: tuple[Clients, Stubber]) -> None:
    clients, stub = ecr_clients
    stub.add_client_error(
        "get_authorization_token", service_error_code="AccessDeniedException", service_message="not allowed"
    )
    with pytest.raises(InputError) as caught:
        registry_module.resolve_credentials(ECR_HOST, clients=clients, mask=Masked(), environ={})
    err = caught.value
    assert err.message.startswith("failed to log in to ECR 123456789012 in eu-west-1: ")
    assert "AccessDeniedException" in err.message
    assert err.fix is not None and "ecr:GetAuthorizationToken" in err.fix


@pytest.mark.parametrize(
    "code",
    [
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
    ],
)
def test_ecr_credential_failures_are_input_errors(ecr_clients: tuple[Clients, Stubber], code: str) -> None:
    clients, stub = ecr_clients
    stub.add_client_error("get_authorization_token", service_error_code=code, http_status_code=403)
    with pytest.raises(InputError) as caught:
        registry_module.resolve_credentials(ECR_HOST, clients=clients, mask=Masked(), environ={})
    assert code in caught.value.message
    assert caught.value.fix == "grant ecr:GetAuthorizationToken to the deploying role"


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("ServerException", 500), ("ServiceUnavailableException", 503)],
)
def test_ecr_faults_are_deploy_errors_without_an_iam_hint(
    ecr_clients: tuple[Clients, Stubber], code: str, status: int
) -> None:
    clients, stub = ecr_clients
    stub.add_client_error("get_authorization_token", service_error_code=code, http_status_code=status)
    with pytest.raises(DeployError) as caught:
        registry_module.resolve_credentials(ECR_HOST, clients=clients, mask=Masked(), environ={})
    assert_ecr_fault(caught.value, code)


def assert_ecr_fault(err: DeployError, cause: str) -> None:
    assert type(err) is DeployError  # exit 1: not bad input
    assert err.message.startswith("failed to get an ECR login token: ") and cause in err.message
    assert err.fix is not None and "retry" in err.fix
    assert "ecr:" not in err.fix and "IAM" not in err.fix and "role" not in err.fix


def test_ecr_unreachable_is_a_deploy_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ecr = boto3.client(
        "ecr",
        region_name="eu-west-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )
    clients = Clients(region="eu-west-1", ecs=None, elbv2=None, logs=None, ecr=ecr)
    with pytest.raises(DeployError) as caught:
        registry_module.resolve_credentials(ECR_HOST, clients=clients, mask=Masked(), environ={})
    assert_ecr_fault(caught.value, "Could not connect to the endpoint URL")


def test_ecr_of_another_region_gets_its_own_session_not_the_shared_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3.client() uses one module-wide default session, which parallel service threads would share."""

    def shared(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("boto3's shared default session was used")

    monkeypatch.setattr(boto3, "client", shared)
    made: list[str | None] = []
    real = registry_module.make_clients

    def make_clients(region: str | None) -> Clients:
        made.append(region)
        return real(region)

    monkeypatch.setattr(registry_module, "make_clients", make_clients)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    other_region = Clients(region="us-east-1", ecs=None, elbv2=None, logs=None, ecr=None)

    def token(self: Any, **_kwargs: Any) -> Any:
        return {"authorizationData": [{"authorizationToken": base64.b64encode(b"AWS:tok3n-secret").decode()}]}

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", lambda self, op, params: token(self))
    creds = registry_module.resolve_credentials(ECR_HOST, clients=other_region, mask=Masked(), environ={})
    assert creds is not None and creds.password == "tok3n-secret"
    assert made == ["eu-west-1"]


def test_ecr_without_aws_credentials_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    ecr = boto3.client("ecr", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")

    def no_credentials(**_kwargs: Any) -> Any:
        raise botocore.exceptions.NoCredentialsError()

    monkeypatch.setattr(ecr, "get_authorization_token", no_credentials)
    clients = Clients(region="eu-west-1", ecs=None, elbv2=None, logs=None, ecr=ecr)
    with pytest.raises(InputError) as caught:
        registry_module.resolve_credentials(ECR_HOST, clients=clients, mask=Masked(), environ={})
    assert caught.value.message == "failed to log in to ECR 123456789012 in eu-west-1: Unable to locate credentials"
    assert caught.value.fix is not None and "AWS credentials" in caught.value.fix


# ---------------------------------------------------------------------------------------------------------------------
# a fake registry
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    accept: str | None


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class FakeRegistry:
    route: Callable[[Seen], Reply]
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_GET(self) -> None:
        self._serve("GET")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        req = Seen(
            method, url.path, dict(parse_qsl(url.query)), self.headers.get("Authorization"), self.headers.get("Accept")
        )
        registry = self.server.registry
        registry.seen.append(req)
        status, headers, body = registry.route(req)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: FakeRegistry


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Seen], Reply]], FakeRegistry]]:
    servers: list[_Server] = []

    def start(route: Callable[[Seen], Reply]) -> FakeRegistry:
        server = _Server(("127.0.0.1", 0), _Handler)
        registry = FakeRegistry(route, port=server.server_address[1])
        server.registry = registry
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return registry

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


MANIFEST = "/v2/team/app/manifests/"


def test_basic_auth_challenge_then_digest(serve: Callable[..., FakeRegistry]) -> None:
    def route(req: Seen) -> Reply:
        if req.authorization != basic("bot", "pw"):
            return 401, {"WWW-Authenticate": 'Basic realm="registry"'}, b""
        if req.path == MANIFEST + "v1":
            return 200, {"Docker-Content-Digest": DIGEST}, b""
        return 404, {}, b""

    reg = serve(route)
    api = RegistryAPI(reg.host, Credentials("bot", "pw", "test"))
    assert api.manifest_digest("team/app", "v1") == DIGEST
    assert [(s.method, s.path, s.authorization) for s in reg.seen] == [
        ("HEAD", MANIFEST + "v1", None),
        ("HEAD", MANIFEST + "v1", basic("bot", "pw")),
    ]
    assert reg.seen[0].accept == registry_module.MANIFEST_TYPES
    # Unknown tag: the credentials are remembered, and a 404 means "not there".
    assert api.manifest_digest("team/app", "nope") is None
    assert [(s.path, s.authorization) for s in reg.seen[2:]] == [(MANIFEST + "nope", basic("bot", "pw"))]


def test_basic_challenge_without_credentials_is_an_input_error(serve: Callable[..., FakeRegistry]) -> None:
    reg = serve(lambda req: (401, {"WWW-Authenticate": 'Basic realm="registry"'}, b""))
    with pytest.raises(InputError) as caught:
        RegistryAPI(reg.host, None).manifest_digest("team/app", "v1")
    assert caught.value.message == f"failed to read team/app:v1 from registry {reg.host}: HTTP 401"
    assert len(reg.seen) == 1


def bearer_route(port_holder: dict[str, int]) -> Callable[[Seen], Reply]:
    def route(req: Seen) -> Reply:
        if req.path == "/token":
            ok = (
                req.authorization == basic("bot", "pw")
                and req.query.get("scope") == "repository:team/app:pull"
                and req.query.get("service") == "reg"
            )
            return (
                (200, {"Content-Type": "application/json"}, json.dumps({"token": "t"}).encode())
                if ok
                else (
                    401,
                    {},
                    b"",
                )
            )
        if req.authorization != "Bearer t":
            realm = f"http://127.0.0.1:{port_holder['port']}/token"
            return 401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="reg"'}, b""
        if req.path == MANIFEST + "v1":
            return 200, {"Docker-Content-Digest": DIGEST}, b""
        return 404, {}, b""

    return route


def test_bearer_token_flow(serve: Callable[..., FakeRegistry]) -> None:
    port: dict[str, int] = {}
    reg = serve(bearer_route(port))
    port["port"] = reg.port
    api = RegistryAPI(reg.host, Credentials("bot", "pw", "test"))

    assert api.manifest_digest("team/app", "v1") == DIGEST
    assert [(s.method, s.path, s.authorization) for s in reg.seen] == [
        ("HEAD", MANIFEST + "v1", None),
        ("GET", "/token", basic("bot", "pw")),
        ("HEAD", MANIFEST + "v1", "Bearer t"),
    ]
    assert reg.seen[1].query == {"service": "reg", "scope": "repository:team/app:pull"}
    # The token is reused for the next request.
    assert api.manifest_digest("team/app", "v2") is None
    assert [(s.method, s.path, s.authorization) for s in reg.seen[3:]] == [("HEAD", MANIFEST + "v2", "Bearer t")]


def test_bearer_token_refused_is_an_input_error(serve: Callable[..., FakeRegistry]) -> None:
    port: dict[str, int] = {}
    reg = serve(bearer_route(port))
    port["port"] = reg.port
    with pytest.raises(InputError) as caught:
        RegistryAPI(reg.host, Credentials("bot", "wrong", "test")).manifest_digest("team/app", "v1")
    assert caught.value.message == f"failed to get a registry token from http://127.0.0.1:{reg.port}/token: HTTP 401"
    assert caught.value.fix is not None and "ECS_SHIP_REGISTRY_USERNAME" in caught.value.fix


def test_head_without_digest_falls_back_to_get_body(serve: Callable[..., FakeRegistry]) -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}).encode()

    def route(req: Seen) -> Reply:
        return 200, {"Content-Type": "application/vnd.oci.image.index.v1+json"}, body

    reg = serve(route)
    digest = RegistryAPI(reg.host, None).manifest_digest("team/app", "v1")
    assert digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert [(s.method, s.path) for s in reg.seen] == [("HEAD", MANIFEST + "v1"), ("GET", MANIFEST + "v1")]


def test_get_fallback_error_is_not_taken_for_a_digest(serve: Callable[..., FakeRegistry]) -> None:
    def route(req: Seen) -> Reply:
        if req.method == "HEAD":
            return 200, {}, b""
        return 500, {}, b"internal error"

    reg = serve(route)
    with pytest.raises(DeployError) as caught:
        RegistryAPI(reg.host, None).manifest_digest("team/app", "v1")
    assert type(caught.value) is DeployError
    assert caught.value.message == f"failed to read team/app:v1 from registry {reg.host}: HTTP 500"


def test_unauthorized_after_credentials_is_an_input_error(serve: Callable[..., FakeRegistry]) -> None:
    reg = serve(lambda req: (401, {"WWW-Authenticate": 'Basic realm="registry"'}, b""))
    with pytest.raises(InputError) as caught:
        RegistryAPI(reg.host, Credentials("bot", "wrong", "test")).manifest_digest("team/app", "v1")
    err = caught.value
    assert err.message == f"failed to read team/app:v1 from registry {reg.host}: HTTP 401"
    assert err.fix == (f"set ECS_SHIP_REGISTRY_USERNAME and ECS_SHIP_REGISTRY_PASSWORD, or `docker login {reg.host}`")
    assert [s.authorization for s in reg.seen] == [None, basic("bot", "wrong")]


def test_forbidden_is_an_input_error(serve: Callable[..., FakeRegistry]) -> None:
    reg = serve(lambda req: (403, {}, b""))
    with pytest.raises(InputError):
        RegistryAPI(reg.host, None).manifest_digest("team/app", "v1")


def test_server_error_is_a_deploy_error(serve: Callable[..., FakeRegistry]) -> None:
    reg = serve(lambda req: (503, {}, b""))
    with pytest.raises(DeployError) as caught:
        RegistryAPI(reg.host, None).manifest_digest("team/app", "v1")
    assert type(caught.value) is DeployError
    assert caught.value.message.endswith("HTTP 503")


def test_credentials_fix_per_host() -> None:
    assert "GITHUB_ACTOR/GITHUB_TOKEN" in registry_module.credentials_fix("ghcr.io")
    assert "DOCKERHUB_USERNAME/DOCKERHUB_TOKEN" in registry_module.credentials_fix("docker.io")
    assert "ecr:GetAuthorizationToken" in registry_module.credentials_fix(ECR_HOST)


def test_connection_refused_is_a_deploy_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DeployError) as caught:
        RegistryAPI(f"127.0.0.1:{port}", None).manifest_digest("team/app", "v1")
    assert type(caught.value) is DeployError
    assert caught.value.message.startswith(f"failed to reach registry 127.0.0.1:{port}: ")


# ---------------------------------------------------------------------------------------------------------------------
# push, build, ship with a fake docker client
# ---------------------------------------------------------------------------------------------------------------------


class FakeDockerAPI:
    def __init__(
        self,
        push_chunks: list[dict[str, Any]] | None = None,
        build_chunks: list[dict[str, Any]] | None = None,
        push_raises: Exception | None = None,
    ) -> None:
        self.push_chunks = push_chunks or []
        self.build_chunks = build_chunks or []
        self.push_raises = push_raises
        self.pushes: list[tuple[str, dict[str, Any]]] = []
        self.builds: list[dict[str, Any]] = []

    def push(self, repository: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.pushes.append((repository, kwargs))
        if self.push_raises:
            raise self.push_raises
        return iter(self.push_chunks)

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.builds.append(kwargs)
        return iter(self.build_chunks)


class FakeDocker:
    def __init__(self, api: FakeDockerAPI) -> None:
        self.api = api


def push_success_chunks(digest: str = DIGEST) -> list[dict[str, Any]]:
    return [
        {"status": "The push refers to repository [127.0.0.1:5000/team/app]"},
        {"status": "Preparing", "progressDetail": {}, "id": "aaa111"},
        {"status": "Preparing", "progressDetail": {}, "id": "bbb222"},
        {"status": "Waiting", "progressDetail": {}, "id": "aaa111"},
        {"status": "Pushing", "progressDetail": {"current": 512, "total": 1024}, "id": "aaa111"},
        {"status": "Pushing", "progressDetail": {"current": 1024, "total": 1024}, "id": "aaa111"},
        {"status": "Pushed", "progressDetail": {}, "id": "aaa111"},
        {"status": "Pushed", "progressDetail": {}, "id": "aaa111"},
        {"status": "Layer already exists", "progressDetail": {}, "id": "bbb222"},
        {"status": f"v1: digest: {digest} size: 528"},
        {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": digest, "Size": 528}},
    ]


def auth_error_chunk() -> dict[str, Any]:
    message = "unauthorized: authentication required"
    return {"errorDetail": {"message": message}, "error": message}


def test_push_success_returns_aux_digest_and_logs_each_layer_once() -> None:
    api = FakeDockerAPI(push_chunks=push_success_chunks())
    log: list[str] = []
    creds = Credentials("bot", "pw", "test")
    digest = registry_module.push("127.0.0.1:5000/team/app", "v1", creds, FakeDocker(api), log.append)  # type: ignore[arg-type]

    assert digest == DIGEST
    assert log == [
        "The push refers to repository [127.0.0.1:5000/team/app]",
        "aaa111: Pushed",
        "bbb222: Layer already exists",
        f"v1: digest: {DIGEST} size: 528",
    ]
    assert api.pushes == [
        (
            "127.0.0.1:5000/team/app",
            {"tag": "v1", "auth_config": {"username": "bot", "password": "pw"}, "stream": True, "decode": True},
        )
    ]


def test_push_without_credentials_passes_no_auth_config() -> None:
    api = FakeDockerAPI(push_chunks=push_success_chunks())
    registry_module.push("127.0.0.1:5000/team/app", "v1", None, FakeDocker(api), lambda _: None)  # type: ignore[arg-type]
    assert api.pushes[0][1]["auth_config"] is None


def test_push_auth_error_chunk_is_an_input_error() -> None:
    chunks = [{"status": "The push refers to repository [ghcr.io/o/app]"}, auth_error_chunk()]
    api = FakeDockerAPI(push_chunks=chunks)
    with pytest.raises(InputError) as caught:
        registry_module.push("ghcr.io/o/app", "v1", None, FakeDocker(api), lambda _: None)  # type: ignore[arg-type]
    err = caught.value
    assert err.message == "failed to push ghcr.io/o/app:v1: unauthorized: authentication required"
    assert err.fix is not None and "GITHUB_ACTOR/GITHUB_TOKEN" in err.fix


def test_push_error_detail_only_is_an_input_error() -> None:
    chunk = {"errorDetail": {"message": "denied: requested access to the resource is denied"}}
    with pytest.raises(InputError) as caught:
        registry_module.push("user/app", "v1", None, FakeDocker(FakeDockerAPI(push_chunks=[chunk])), lambda _: None)  # type: ignore[arg-type]
    assert caught.value.message.endswith(": denied: requested access to the resource is denied")


def test_push_generic_error_is_a_deploy_error() -> None:
    message = "received unexpected HTTP status: 500 Internal Server Error"
    chunks = [*push_success_chunks()[:3], {"errorDetail": {"message": message}, "error": message}]
    with pytest.raises(DeployError) as caught:
        registry_module.push(
            "127.0.0.1:5000/team/app", "v1", None, FakeDocker(FakeDockerAPI(push_chunks=chunks)), lambda _: None
        )  # type: ignore[arg-type]
    assert type(caught.value) is DeployError
    assert not isinstance(caught.value, InputError)
    assert caught.value.message == f"failed to push 127.0.0.1:5000/team/app:v1: {message}"
    assert caught.value.fix == "check that registry 127.0.0.1:5000 is up and reachable"


def test_push_api_error_is_reported() -> None:
    raised = docker.errors.APIError("500 Server Error", explanation="no basic auth credentials")
    api = FakeDockerAPI(push_raises=raised)
    with pytest.raises(InputError) as caught:
        registry_module.push(f"{ECR_HOST}/hello", "v1", None, FakeDocker(api), lambda _: None)  # type: ignore[arg-type]
    assert caught.value.message == f"failed to push {ECR_HOST}/hello:v1: no basic auth credentials"


class FakeRegistryAPI:
    def __init__(self, digests: list[str | None], credentials: Credentials | None = None) -> None:
        self.digests = list(digests)
        self.credentials = credentials
        self.asked: list[tuple[str, str]] = []

    def manifest_digest(self, path: str, reference: str) -> str | None:
        self.asked.append((path, reference))
        return self.digests.pop(0)


def test_ship_does_not_ask_again_for_a_digest_the_caller_read(tmp_path: Path) -> None:
    registry = FakeRegistryAPI([])
    shipped = image.ship(
        image_spec(tmp_path),
        "v1",
        builder=lambda: LEGACY,
        docker_client=None,
        registry=registry,  # type: ignore[arg-type]
        log=lambda _: None,
        known_digest=DIGEST,
    )
    assert shipped.digest == DIGEST and not shipped.built
    assert registry.asked == []


def test_ship_existing_tag_is_not_built(tmp_path: Path) -> None:
    registry = FakeRegistryAPI([DIGEST])
    api = FakeDockerAPI()
    log: list[str] = []
    shipped = image.ship(
        image_spec(tmp_path),
        "v1",
        builder=lambda: LEGACY,
        docker_client=lambda: FakeDocker(api),  # type: ignore[arg-type,return-value]
        registry=registry,  # type: ignore[arg-type]
        log=log.append,
    )
    assert shipped == image.ShippedImage("web", f"{ECR_HOST}/hello", "v1", DIGEST, built=False, pushed=False)
    assert shipped.ref == f"{ECR_HOST}/hello@{DIGEST}"
    assert registry.asked == [("hello", "v1")]
    assert api.builds == [] and api.pushes == []
    assert log == [f"{ECR_HOST}/hello:v1 is already in the registry ({DIGEST}); not building it again"]


def ship_without_engine(tmp_path: Path, digests: list[str | None]) -> image.ShippedImage:
    return image.ship(
        image_spec(tmp_path),
        "v1",
        builder=lambda: LEGACY,
        docker_client=None,
        registry=FakeRegistryAPI(digests),  # type: ignore[arg-type]
        log=lambda _: None,
    )


def test_ship_existing_tag_needs_no_docker_engine(tmp_path: Path) -> None:
    shipped = ship_without_engine(tmp_path, [DIGEST])
    assert shipped.built is False and shipped.digest == DIGEST


def test_ship_missing_tag_without_build_is_an_input_error(tmp_path: Path) -> None:
    api = FakeDockerAPI()
    with pytest.raises(InputError) as caught:
        image.ship(
            image_spec(tmp_path),
            "release-1",
            builder=lambda: LEGACY,
            docker_client=lambda: FakeDocker(api),  # type: ignore[arg-type,return-value]
            registry=FakeRegistryAPI([None]),  # type: ignore[arg-type]
            log=lambda _: None,
            build_allowed=False,
        )
    assert caught.value.message == f"failed to find image {ECR_HOST}/hello:release-1 in registry {ECR_HOST}"
    assert caught.value.fix is not None and "--image-tag" in caught.value.fix
    assert api.builds == [] and api.pushes == []


def test_ship_missing_tag_without_engine_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        ship_without_engine(tmp_path, [None])
    assert caught.value.fix == "start Docker or set DOCKER_HOST"


def test_ship_builds_pushes_and_reads_the_digest_back(tmp_path: Path) -> None:
    creds = Credentials("AWS", "secret", "ecr:GetAuthorizationToken")
    registry = FakeRegistryAPI([None, DIGEST], credentials=creds)
    api = FakeDockerAPI(
        build_chunks=[{"stream": "Step 1/2 : FROM scratch\n"}, {"stream": "\n"}, {"stream": "Successfully built 1\n"}],
        push_chunks=push_success_chunks(),
    )
    log: list[str] = []
    shipped = image.ship(
        image_spec(tmp_path),
        "v1",
        builder=lambda: LEGACY,
        docker_client=lambda: FakeDocker(api),  # type: ignore[arg-type,return-value]
        registry=registry,  # type: ignore[arg-type]
        log=log.append,
        cache=CacheFlags(("type=registry,ref=cache:latest",)),
        labels={"org.opencontainers.image.revision": SHA},
    )
    assert shipped == image.ShippedImage("web", f"{ECR_HOST}/hello", "v1", DIGEST, built=True, pushed=True)
    assert registry.asked == [("hello", "v1"), ("hello", "v1")]
    assert api.builds == [
        {
            "path": str(tmp_path),
            "dockerfile": str(tmp_path / "Dockerfile"),
            "tag": f"{ECR_HOST}/hello:v1",
            "buildargs": {"VERSION": "1"},
            "target": None,
            "platform": "linux/amd64",
            "cache_from": ["cache:latest"],
            "labels": {"org.opencontainers.image.revision": SHA},
            "rm": True,
            "forcerm": True,
            "pull": False,
            "decode": True,
        }
    ]
    assert api.pushes[0][0] == f"{ECR_HOST}/hello"
    assert api.pushes[0][1]["auth_config"] == {"username": "AWS", "password": "secret"}
    assert log[:2] == ["Step 1/2 : FROM scratch", "Successfully built 1"]


def test_ship_digest_mismatch_is_a_deploy_error(tmp_path: Path) -> None:
    api = FakeDockerAPI(push_chunks=push_success_chunks(OTHER_DIGEST))
    with pytest.raises(DeployError) as caught:
        image.ship(
            image_spec(tmp_path),
            "v1",
            builder=lambda: LEGACY,
            docker_client=lambda: FakeDocker(api),  # type: ignore[arg-type,return-value]
            registry=FakeRegistryAPI([None, DIGEST]),  # type: ignore[arg-type]
            log=lambda _: None,
        )
    assert f"the push reported {OTHER_DIGEST}, the registry serves {DIGEST}" in caught.value.message


def test_ship_push_not_readable_is_a_deploy_error(tmp_path: Path) -> None:
    api = FakeDockerAPI(push_chunks=push_success_chunks())
    with pytest.raises(DeployError) as caught:
        image.ship(
            image_spec(tmp_path),
            "v1",
            builder=lambda: LEGACY,
            docker_client=lambda: FakeDocker(api),  # type: ignore[arg-type,return-value]
            registry=FakeRegistryAPI([None, None]),  # type: ignore[arg-type]
            log=lambda _: None,
        )
    assert caught.value.message == (
        f"failed to read back {ECR_HOST}/hello:v1 after pushing it: the registry does not have it"
    )


def test_build_error_is_a_deploy_error_and_nothing_is_pushed(tmp_path: Path) -> None:
    api = FakeDockerAPI(
        build_chunks=[
            {"stream": "Step 1/2 : FROM nope\n"},
            {"errorDetail": {"message": "pull access denied for nope"}, "error": "pull access denied for nope"},
        ]
    )
    with pytest.raises(DeployError) as caught:
        image.ship(
            image_spec(tmp_path),
            "v1",
            builder=lambda: LEGACY,
            docker_client=lambda: FakeDocker(api),  # type: ignore[arg-type,return-value]
            registry=FakeRegistryAPI([None]),  # type: ignore[arg-type]
            log=lambda _: None,
        )
    assert type(caught.value) is DeployError
    assert caught.value.message == f"failed to build {ECR_HOST}/hello:v1: pull access denied for nope"
    assert (
        caught.value.fix
        == f"reproduce locally: docker build --platform linux/amd64 -f {tmp_path / 'Dockerfile'} {tmp_path}"
    )
    assert api.pushes == []


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("127.0.0.1:5000/app@sha256:" + "a" * 64, ("127.0.0.1:5000/app", "sha256:" + "a" * 64)),
        ("127.0.0.1:5000/app:v2", ("127.0.0.1:5000/app", "v2")),
        ("127.0.0.1:5000/app", ("127.0.0.1:5000/app", "latest")),
        ("nginx", ("nginx", "latest")),
    ],
)
def test_split_reference(ref: str, expected: tuple[str, str]) -> None:
    assert registry_module.split_reference(ref) == expected


def test_registry_failure_separates_credentials_from_faults() -> None:
    auth = registry_module.registry_failure("pull", "ghcr.io/o/r:v1", "unauthorized: authentication required")
    assert isinstance(auth, InputError) and "GITHUB_ACTOR/GITHUB_TOKEN" in (auth.fix or "")
    down = registry_module.registry_failure("push", "127.0.0.1:5000/app:v1", "connection refused")
    assert not isinstance(down, InputError) and "127.0.0.1:5000 is up" in (down.fix or "")


def test_credentials_never_show_the_password() -> None:
    creds = Credentials("bot", "hunter2-pw", "$ECS_SHIP_REGISTRY_USERNAME/$ECS_SHIP_REGISTRY_PASSWORD")
    for shown in (repr(creds), str(creds), f"{creds}", repr([creds]), repr({"c": creds})):
        assert "hunter2-pw" not in shown
    assert repr(creds) == (
        "Credentials(username='bot', password=***, source='$ECS_SHIP_REGISTRY_USERNAME/$ECS_SHIP_REGISTRY_PASSWORD')"
    )
    # Equality still compares the password.
    assert creds != Credentials("bot", "other", creds.source)


# ---------------------------------------------------------------------------------------------------------------------
# where registry credentials may go: the token realm
# ---------------------------------------------------------------------------------------------------------------------


class ChallengeSession(requests.Session):
    """A registry that answers 401 with a Bearer challenge naming `realm`, and a token service at the realm."""

    def __init__(self, realm: str) -> None:
        super().__init__()
        self.realm = realm
        self.token_requests: list[tuple[str, Any]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        resp = requests.Response()
        headers = kwargs.get("headers") or {}
        if str(url).startswith(self.realm):
            self.token_requests.append((str(url), kwargs.get("auth")))
            resp.status_code, resp._content = 200, b'{"token": "t"}'
        elif headers.get("Authorization") == "Bearer t":
            resp.status_code = 200
            resp.headers["Docker-Content-Digest"] = DIGEST
        else:
            resp.status_code = 401
            resp.headers["WWW-Authenticate"] = f'Bearer realm="{self.realm}",service="reg"'
        return resp


@pytest.mark.parametrize(
    ("registry", "realm"),
    [
        ("docker.io", "https://auth.docker.io/token"),
        ("ghcr.io", "https://ghcr.io/token"),
        ("registry.example.com", "https://auth.example.net/token"),  # another host, but HTTPS
        ("127.0.0.1:5000", "http://127.0.0.1:5001/token"),  # the registry's own loopback host
        ("[::1]:5000", "http://[::1]:5001/token"),
        ("localhost:5000", "http://localhost:5001/token"),
    ],
)
def test_credentials_go_to_https_or_same_loopback_realms(registry: str, realm: str) -> None:
    session = ChallengeSession(realm)
    api = RegistryAPI(registry, Credentials("bot", "pw", "test"), session)
    assert api.manifest_digest("team/app", "v1") == DIGEST
    assert [auth for _url, auth in session.token_requests] == [("bot", "pw")]


@pytest.mark.parametrize(
    ("registry", "realm", "named", "why"),
    [
        ("registry.example.com", "http://auth.example.com/token", "auth.example.com", "another machine"),
        ("127.0.0.1:5000", "http://10.0.0.5/token", "10.0.0.5", "another machine"),
        ("127.0.0.1:5000", "http://127.example.com/token", "127.example.com", "another machine"),
        ("127.0.0.1:5000", "http://localhost:5001/token", "localhost", "another host than the registry's (127.0.0.1)"),
        ("ghcr.io", "http://127.0.0.1:8080/token", "127.0.0.1", "another host than the registry's (ghcr.io)"),
        ("registry.example.com", "ftp://auth.example.com/token", "auth.example.com", "not an https:// URL"),
        ("registry.example.com", "/token", "'/token'", "not an https:// URL"),
    ],
)
def test_credentials_are_not_sent_to_a_plain_http_realm_elsewhere(
    registry: str, realm: str, named: str, why: str
) -> None:
    session = ChallengeSession(realm)
    with pytest.raises(InputError) as caught:
        RegistryAPI(registry, Credentials("bot", "pw", "test"), session).manifest_digest("team/app", "v1")
    assert session.token_requests == []
    assert caught.value.message.startswith(f"failed to get a registry token from {named}: ")
    assert why in caught.value.message and "pw" not in caught.value.message
    assert caught.value.fix is not None and "HTTPS" in caught.value.fix


def test_anonymous_token_from_a_plain_http_realm_is_fetched() -> None:
    # No credentials, nothing to leak: public images pull with an anonymous token wherever it comes from.
    session = ChallengeSession("http://auth.example.com/token")
    assert RegistryAPI("registry.example.com", None, session).manifest_digest("team/app", "v1") == DIGEST
    assert [auth for _url, auth in session.token_requests] == [None]


def test_a_registry_5xx_is_retried_before_it_fails_a_deploy(
    serve: Callable[[Callable[[Seen], Reply]], FakeRegistry],
) -> None:
    digest = "sha256:" + "ef" * 32
    answers = iter([500, 503])

    def flaky(req: Seen) -> Reply:
        status = next(answers, 200)
        return (status, {"Docker-Content-Digest": digest} if status == 200 else {}, b"")

    registry = serve(flaky)
    api = registry_module.RegistryAPI(registry.host, None, session=registry_module.retrying_session(backoff=0))
    assert api.manifest_digest("app", "v1") == digest
    assert [s.method for s in registry.seen] == ["HEAD", "HEAD", "HEAD"]


def test_a_registry_that_keeps_failing_is_a_fault_not_bad_input(
    serve: Callable[[Callable[[Seen], Reply]], FakeRegistry],
) -> None:
    registry = serve(lambda req: (500, {}, b'{"errors":[{"code":"UNKNOWN"}]}'))
    with pytest.raises(DeployError) as caught:
        registry_module.RegistryAPI(
            registry.host, None, session=registry_module.retrying_session(backoff=0)
        ).manifest_digest("app", "v1")
    assert caught.value.exit_code == 1 and "HTTP 500" in caught.value.message
    assert len(registry.seen) == 4  # the first try and three retries


# ---------------------------------------------------------------------------------------------------------------------
# a push a dropped connection broke is tried again
# ---------------------------------------------------------------------------------------------------------------------
def flaky(*outcomes: BaseException | str) -> tuple[Callable[[], str | None], list[int]]:
    """A push that raises or returns each outcome in turn; and how many times it was called."""
    calls: list[int] = []

    def push_once() -> str | None:
        calls.append(1)
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return push_once, calls


def test_a_push_that_broke_is_tried_again_until_it_succeeds() -> None:
    cut = DeployError("failed to push r/app:v1: EOF", fix="check that registry r is up and reachable")
    push_once, calls = flaky(cut, cut, DIGEST)
    log: list[str] = []
    assert registry_module.retrying(push_once, log.append, backoff=0.01) == DIGEST
    assert len(calls) == 3
    assert log == [
        "failed to push r/app:v1: EOF; pushing again in 0.01s (attempt 2 of 3)",
        "failed to push r/app:v1: EOF; pushing again in 0.02s (attempt 3 of 3)",
    ]


def test_a_push_that_keeps_breaking_fails_with_the_last_error() -> None:
    errors = [DeployError(f"failed to push: attempt {i}") for i in (1, 2, 3)]
    push_once, calls = flaky(*errors)
    with pytest.raises(DeployError, match="attempt 3"):
        registry_module.retrying(push_once, lambda _: None, backoff=0.01)
    assert len(calls) == 3


def test_refused_credentials_and_a_cancel_are_never_tried_again() -> None:
    for final in (InputError("failed to push: unauthorized"), Interrupted("interrupted: stopped `docker push`")):
        push_once, calls = flaky(final, DIGEST)
        with pytest.raises(type(final)):
            registry_module.retrying(push_once, lambda _: None, backoff=0.01)
        assert len(calls) == 1


def test_a_cancel_while_waiting_to_push_again_interrupts() -> None:
    cancel = threading.Event()
    cancel.set()
    push_once, calls = flaky(DeployError("failed to push: EOF"), DIGEST)
    with pytest.raises(Interrupted, match="waiting to push again"):
        registry_module.retrying(push_once, lambda _: None, cancel, backoff=30)
    assert len(calls) == 1
