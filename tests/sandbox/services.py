"""Process lifecycle of the local stand-ins: Docker engine and image registry.

Everything listens on loopback only; the registry is reachable over plain
HTTP because dockerd treats 127.0.0.0/8 as an insecure registry by default,
so no daemon configuration is needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import docker
import docker.errors
import requests

from .regproxy import RegistryFaults

__all__ = [
    "DEFAULT_PACKAGES",
    "Engine",
    "Registry",
    "ensure_engine",
    "ensure_packages",
    "free_port",
    "start_registry",
    "stop_engine",
    "stop_registry",
    "wait_until",
]

DEFAULT_PACKAGES: tuple[str, ...] = (
    "docker.io",
    "docker-registry",
    "apache2-utils",
    "busybox-static",
)

DOCKERD_ARGS: tuple[str, ...] = (
    # No bridge, no iptables: the sandbox must not touch host networking;
    # containers run with network_mode="host" instead.
    "--bridge=none",
    "--iptables=false",
    "--ip-masq=false",
)
DEFAULT_DOCKER_SOCKET = "unix:///var/run/docker.sock"
DOCKERD_PIDFILE = Path("/var/run/docker.pid")
REGISTRY_BINARY = "/usr/bin/docker-registry"

_T = TypeVar("_T")


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], _T],
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
) -> _T:
    """Poll ``predicate`` until it returns something truthy and return it.

    Exceptions from ``predicate`` propagate, which lets callers abort early
    (e.g. when the process they wait for has already died).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(min(interval, remaining))


def free_port() -> int:
    """Return a currently unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _file_tail(path: Path, lines: int = 40) -> str:
    try:
        return _tail(path.read_text(errors="replace"), lines)
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def _http_session() -> requests.Session:
    session = requests.Session()
    # A proxy from the environment must never see loopback sandbox traffic.
    session.trust_env = False
    return session


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An exited process its parent has not reaped yet still answers kill(0): a zombie is not alive.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _terminate(proc: subprocess.Popen[bytes], grace: float) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# --------------------------------------------------------------------------
# packages
# --------------------------------------------------------------------------


def _run(argv: Sequence[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


def _missing_packages(packages: Sequence[str]) -> list[str]:
    if shutil.which("dpkg-query") is None:
        raise RuntimeError(
            f"dpkg-query not found: the sandbox needs a Debian-based system to check for {', '.join(packages)}"
        )
    missing: list[str] = []
    for package in packages:
        # Queried one by one: with several names dpkg-query stops at the
        # first unknown one and concatenates the rest without separators.
        result = _run(["dpkg-query", "-W", "-f=${Status}", package])
        if result.returncode != 0 or not result.stdout.strip().endswith(" installed"):
            missing.append(package)
    return missing


def ensure_packages(packages: Sequence[str] = DEFAULT_PACKAGES) -> None:
    """Install whichever of ``packages`` is not installed yet (Debian only)."""
    missing = _missing_packages(packages)
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(
            f"packages missing: {' '.join(missing)}; installing them needs root (apt-get install {' '.join(missing)})"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    update = _run(["apt-get", "update"], env=env)
    if update.returncode != 0:
        raise RuntimeError(f"apt-get update failed (exit {update.returncode}):\n{_tail(update.stdout)}")
    install = _run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env)
    if install.returncode != 0:
        raise RuntimeError(
            f"apt-get install {' '.join(missing)} failed (exit {install.returncode}):\n{_tail(install.stdout)}"
        )
    still_missing = _missing_packages(missing)
    if still_missing:
        raise RuntimeError(
            f"apt-get reported success but still missing: {' '.join(still_missing)}\n{_tail(install.stdout)}"
        )


# --------------------------------------------------------------------------
# docker engine
# --------------------------------------------------------------------------


@dataclass
class Engine:
    """A reachable Docker engine; ``started`` says whether we own its process."""

    base_url: str
    started: bool
    pid: int | None = None
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def client(self, timeout: int = 120) -> docker.DockerClient:
        if os.environ.get("DOCKER_HOST", DEFAULT_DOCKER_SOCKET) == self.base_url:
            # from_env also picks up DOCKER_TLS_VERIFY/DOCKER_CERT_PATH.
            return docker.from_env(timeout=timeout)
        return docker.DockerClient(base_url=self.base_url, timeout=timeout)


def _ping(base_url: str | None) -> bool:
    # A short timeout: a wedged daemon should fail the poll, not stall it.
    try:
        client = docker.from_env(timeout=5) if base_url is None else docker.DockerClient(base_url=base_url, timeout=5)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, requests.RequestException, OSError):
        return False
    finally:
        client.close()


def _is_dockerd(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd"
    except OSError:
        return False


def _read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def ensure_engine(
    state_dir: Path,
    *,
    timeout: float = 60.0,
    extra_args: Sequence[str] = (),
) -> Engine:
    """Reuse a running Docker engine, or start dockerd if none answers."""
    docker_host = os.environ.get("DOCKER_HOST")
    if _ping(None):
        return Engine(base_url=docker_host or DEFAULT_DOCKER_SOCKET, started=False)

    if docker_host and docker_host != DEFAULT_DOCKER_SOCKET:
        # A daemon started here would listen somewhere DOCKER_HOST does not
        # point to, so every client would still fail.
        raise RuntimeError(f"DOCKER_HOST={docker_host} does not answer a ping")
    if os.geteuid() != 0:
        raise RuntimeError("no Docker engine answers and starting dockerd needs root")
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise RuntimeError("no Docker engine answers and dockerd is not installed")

    old_pid = _read_pidfile(DOCKERD_PIDFILE)
    if old_pid is not None:
        if pid_alive(old_pid) and _is_dockerd(old_pid):
            # Most likely still starting up (or wedged); starting a second
            # daemon would only fail on the pidfile lock.
            try:
                wait_until(
                    lambda: _ping(DEFAULT_DOCKER_SOCKET),
                    timeout,
                    0.5,
                    f"already running dockerd (pid {old_pid}) to answer",
                )
            except TimeoutError as exc:
                raise RuntimeError(
                    f"dockerd pid {old_pid} (from {DOCKERD_PIDFILE}) is alive but "
                    f"{DEFAULT_DOCKER_SOCKET} does not answer"
                ) from exc
            return Engine(base_url=DEFAULT_DOCKER_SOCKET, started=False)
        # dockerd refuses to start while its pidfile names a live pid, and a
        # recycled pid would look live.
        DOCKERD_PIDFILE.unlink(missing_ok=True)

    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "dockerd.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [dockerd, *DOCKERD_ARGS, "--host", DEFAULT_DOCKER_SOCKET, *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # A Ctrl-C aimed at the test run must not kill the daemon halfway
            # through; stop_engine shuts it down in order instead.
            start_new_session=True,
        )

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(
                f"dockerd exited with {process.returncode} during startup; {log_path}:\n{_file_tail(log_path)}"
            )
        return _ping(DEFAULT_DOCKER_SOCKET)

    engine = Engine(
        base_url=DEFAULT_DOCKER_SOCKET,
        started=True,
        pid=process.pid,
        log_path=log_path,
        process=process,
    )
    try:
        wait_until(ready, timeout, 0.5, "dockerd to answer a ping")
    except BaseException as exc:
        # The daemon lives in its own session, so nothing else would reap it.
        stop_engine(engine)
        if isinstance(exc, TimeoutError):
            raise RuntimeError(f"{exc}; {log_path}:\n{_file_tail(log_path)}") from exc
        raise
    return engine


def stop_engine(engine: Engine, *, grace: float = 20.0) -> None:
    """Stop dockerd if ``ensure_engine`` started it; a reused engine is left alone."""
    if not engine.started or engine.pid is None:
        return
    if engine.process is not None:
        _terminate(engine.process, grace)
    elif pid_alive(engine.pid):
        os.kill(engine.pid, signal.SIGTERM)
        try:
            wait_until(lambda: not pid_alive(engine.pid or 0), grace, 0.2, "dockerd to exit")
        except TimeoutError:
            os.kill(engine.pid, signal.SIGKILL)
    # A SIGKILLed daemon leaves its pidfile behind, which blocks the next start.
    if _read_pidfile(DOCKERD_PIDFILE) == engine.pid:
        DOCKERD_PIDFILE.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------


@dataclass
class Registry:
    """A local docker-registry with htpasswd auth on 127.0.0.1, reached through a fault proxy.

    ``address`` is the proxy's, and the only one clients are given; ``upstream`` is the registry's own.
    """

    address: str
    user: str
    password: str
    storage_dir: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    faults: RegistryFaults = field(repr=False)
    upstream: str = ""
    config_path: Path | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def auth_config(self) -> dict[str, str]:
        return {"username": self.user, "password": self.password}

    def login(self, client: docker.DockerClient) -> None:
        # The client caches the credentials, so later pushes/pulls through it
        # authenticate even without an explicit auth_config.
        client.login(username=self.user, password=self.password, registry=self.address)

    def session(self) -> requests.Session:
        """An HTTP session for the registry API, authenticated and proxy-free."""
        session = _http_session()
        session.auth = (self.user, self.password)
        return session


def _yaml_str(value: str) -> str:
    # A JSON string literal is a valid YAML double-quoted scalar.
    return json.dumps(value)


def _write_registry_config(path: Path, *, addr: str, storage: Path, htpasswd: Path, secret: str) -> None:
    path.write_text(
        "\n".join(
            [
                "version: 0.1",
                "log:",
                "  level: warn",
                "  accesslog:",
                "    disabled: true",
                "storage:",
                "  filesystem:",
                f"    rootdirectory: {_yaml_str(str(storage))}",
                "  delete:",
                "    enabled: true",
                "http:",
                f"  addr: {_yaml_str(addr)}",
                # A fixed secret silences the registry's random-secret warning.
                f"  secret: {_yaml_str(secret)}",
                "auth:",
                "  htpasswd:",
                '    realm: "ecs-ship-sandbox"',
                f"    path: {_yaml_str(str(htpasswd))}",
                "",
            ]
        )
    )


def _htpasswd_line(user: str, password: str) -> str:
    htpasswd = shutil.which("htpasswd")
    if htpasswd is None:
        raise RuntimeError("htpasswd not found (package apache2-utils)")
    # -i reads the password from stdin so it never shows up in the process list;
    # -B because the registry only accepts bcrypt entries.
    result = subprocess.run(
        [htpasswd, "-Bin", user],
        input=password,
        capture_output=True,
        text=True,
        check=False,
    )
    line = result.stdout.strip()
    if result.returncode != 0 or not line.startswith(f"{user}:"):
        raise RuntimeError(f"htpasswd failed (exit {result.returncode}): {result.stderr.strip()}")
    return line + "\n"


def start_registry(
    state_dir: Path,
    user: str = "ecs-ship",
    password: str | None = None,
    *,
    timeout: float = 30.0,
) -> Registry:
    """Start a docker-registry on a free 127.0.0.1 port with htpasswd auth."""
    if not os.access(REGISTRY_BINARY, os.X_OK):
        raise RuntimeError(f"{REGISTRY_BINARY} not found (package docker-registry)")
    if password is None:
        password = secrets.token_urlsafe(18)

    state_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    upstream = f"127.0.0.1:{port}"
    run_dir = state_dir / f"registry-{port}"
    run_dir.mkdir()
    storage_dir = run_dir / "storage"
    storage_dir.mkdir()
    htpasswd_path = run_dir / "htpasswd"
    htpasswd_path.write_text(_htpasswd_line(user, password))
    htpasswd_path.chmod(0o600)
    config_path = run_dir / "config.yml"
    _write_registry_config(
        config_path,
        addr=upstream,
        storage=storage_dir,
        htpasswd=htpasswd_path,
        secret=secrets.token_hex(16),
    )
    log_path = run_dir / "registry.log"

    faults = RegistryFaults(upstream)
    faults.start()
    process = _spawn_registry(config_path, log_path)
    registry = Registry(
        address=faults.address,
        user=user,
        password=password,
        storage_dir=storage_dir,
        process=process,
        faults=faults,
        upstream=upstream,
        config_path=config_path,
        log_path=log_path,
    )

    try:
        _wait_ready(registry, timeout)
    except BaseException:
        stop_registry(registry)
        raise
    return registry


def _spawn_registry(config_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        # Same process group as the caller on purpose: an interrupted test run
        # should take the registry down with it rather than leak it.
        return subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(registry: Registry, timeout: float) -> None:
    session = _http_session()
    process, log_path = registry.process, registry.log_path

    def answers_401() -> bool:
        if process.poll() is not None:
            tail = _file_tail(log_path) if log_path else ""
            raise RuntimeError(f"docker-registry exited with {process.returncode} during startup; {log_path}:\n{tail}")
        try:
            return session.get(f"http://{registry.address}/v2/", timeout=2).status_code == 401
        except requests.RequestException:
            return False

    try:
        wait_until(answers_401, timeout, 0.1, f"registry on {registry.address} to answer 401")
    except TimeoutError as exc:
        tail = _file_tail(registry.log_path) if registry.log_path else ""
        raise RuntimeError(f"{exc}; {registry.log_path}:\n{tail}") from exc
    finally:
        session.close()


def pause_registry(registry: Registry) -> None:
    """Fault injection: the registry goes away (connections refused); its images stay on disk."""
    registry.faults.suspend()
    with contextlib.suppress(ProcessLookupError):
        _terminate(registry.process, 10.0)


def resume_registry(registry: Registry, timeout: float = 30.0) -> None:
    """Bring a paused registry back on the same address, with the same users and images."""
    assert registry.config_path is not None and registry.log_path is not None
    registry.process = _spawn_registry(registry.config_path, registry.log_path)
    registry.faults.resume()
    _wait_ready(registry, timeout)


def stop_registry(registry: Registry, *, grace: float = 10.0) -> None:
    """Stop the registry process and its proxy, and delete the images it stored."""
    registry.faults.stop()
    with contextlib.suppress(ProcessLookupError):
        _terminate(registry.process, grace)
    shutil.rmtree(registry.storage_dir, ignore_errors=True)
