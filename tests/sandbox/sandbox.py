"""One object that brings the whole sandbox up and takes it down again.

Order matters: packages, engine, registry, base image, then moto + simulator (the simulator pulls from the
registry with its credentials). ``stop()`` undoes exactly what ``start()`` did, in reverse, and tolerates a
partial start so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from . import images, services
from .bootstrap import REGION, World, WorldSpec, bootstrap, clients
from .hosts import HostsFile
from .ledger import Ledger
from .motoworld import MotoServer, MotoWorld
from .regproxy import RegistryFaults
from .simulator import SimConfig, Simulator
from .tls import SandboxCA


@contextlib.contextmanager
def _timed(took: dict[str, float], name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        took[name] = time.monotonic() - started


DEFAULT_STATE_DIR = Path(os.environ.get("ECS_SHIP_SANDBOX_DIR", "/tmp/ecs-ship-sandbox"))


@dataclass
class Sandbox:
    state_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ecs-ship-sandbox-")))
    sim_config: SimConfig = field(default_factory=SimConfig)
    install_packages: bool = True

    ledger: Ledger = field(default_factory=Ledger)
    engine: services.Engine | None = None
    registry: services.Registry | None = None
    docker: docker.DockerClient | None = None
    world: MotoWorld | None = None
    server: MotoServer | None = None
    simulator: Simulator | None = None
    ca: SandboxCA | None = None
    stop_times: dict[str, float] = field(default_factory=dict)  # the last stop(): seconds per part

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> Sandbox:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ca = SandboxCA(self.state_dir / "ca")
        if self.install_packages:
            services.ensure_packages()
        self.engine = services.ensure_engine(self.state_dir)
        self.docker = self.engine.client()
        self.registry = services.start_registry(self.state_dir, password=secrets.token_urlsafe(18))
        self.registry.login(self.docker)
        images.ensure_base_image(self.docker)
        self.sim_config.registry_auth[self.registry.address] = self.registry.auth_config
        if self.sim_config.run_label == "default":
            self.sim_config.run_label = secrets.token_hex(6)
        self.world = MotoWorld(self.ledger, ca=self.ca)
        self.simulator = Simulator(
            self.world,
            self.ledger,
            self.docker,
            self.sim_config,
            hosts=HostsFile(tag=self.sim_config.run_label),
            free_port=services.free_port,
        )
        self.simulator.start()
        self.server = MotoServer(self.world)
        self.server.start()

    def stop(self) -> None:
        took: dict[str, float] = {}
        if self.server is not None:
            with _timed(took, "moto server"):
                self.server.stop()
            self.server = None
        if self.simulator is not None:
            with _timed(took, "simulator"):
                self.simulator.stop()
            took.update({f"simulator {name}": seconds for name, seconds in self.simulator.stop_times.items()})
            self.simulator = None
        if self.registry is not None:
            with _timed(took, "registry"):
                services.stop_registry(self.registry)
            self.registry = None
        if self.docker is not None:
            self.docker.close()
            self.docker = None
        if self.engine is not None:
            with _timed(took, "engine"):
                services.stop_engine(self.engine)
            self.engine = None
        # A slow teardown is paid by every CI run: kept so the test session can say where the time went.
        self.stop_times = took

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what clients need ----------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        assert self.server is not None, "sandbox not started"
        return self.server.endpoint

    @property
    def time_scale(self) -> float:
        """AWS seconds per real second of this sandbox's world (``SimConfig.time_scale``; 1.0 unless set).

        API timestamps and ledger facts are wall-clock times, so a lag a benchmark measures between them (or
        against its own clock) is in real seconds: lag_aws = lag_real * time_scale (``aws_seconds``).
        """
        return self.sim_config.time_scale

    def aws_seconds(self, real_seconds: float) -> float:
        """AWS seconds that pass in `real_seconds` of this world: real_seconds * time_scale."""
        return self.sim_config.aws_seconds(real_seconds)

    def trust_env(self) -> dict[str, str]:
        """Environment that makes clients trust the sandbox's certificates as they trust ACM's on AWS: the system
        store plus the sandbox CA, for requests (ecs-ship's smoke check), curl and OpenSSL-based tools."""
        assert self.ca is not None, "sandbox not started"
        store = str(self.ca.trust_store())
        return {"REQUESTS_CA_BUNDLE": store, "CURL_CA_BUNDLE": store, "SSL_CERT_FILE": store}

    @property
    def ca_bundle(self) -> Path:
        """The CA that issues the sandbox's certificates (``ca.issue``), for clients that verify them."""
        assert self.ca is not None, "sandbox not started"
        return self.ca.bundle

    def env(self) -> dict[str, str]:
        """Environment for any AWS client or tool (boto3, awscli, ecs-deploy, ecs-ship)."""
        assert self.registry is not None
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "REGISTRY": self.registry.address,
            "REGISTRY_USER": self.registry.user,
            "REGISTRY_PASSWORD": self.registry.password,
            # The names ecs-ship reads registry credentials from.
            "ECS_SHIP_REGISTRY_USERNAME": self.registry.user,
            "ECS_SHIP_REGISTRY_PASSWORD": self.registry.password,
            # The docker CLI ecs-ship builds with: BuildKit-capable here (see images.BUILDKIT_DOCKER).
            "ECS_SHIP_DOCKER": images.BUILDKIT_DOCKER,
        }

    # --- faults ------------------------------------------------------------------------------------
    # AWS errors are set on ``ledger`` (fail, throttle, burst, expire_credentials); registry faults on
    # ``registry_faults``; these are the ones that need more than one part of the sandbox.
    @property
    def registry_faults(self) -> RegistryFaults:
        assert self.registry is not None, "sandbox not started"
        return self.registry.faults

    def restart_aws(self, down_seconds: float) -> None:
        """The AWS endpoint refuses connections for `down_seconds`, then serves again on the same port with
        the same state. Blocks until it serves again; the simulated tasks keep running meanwhile."""
        assert self.server is not None, "sandbox not started"
        self.server.restart(down_seconds)

    def pause_registry(self) -> None:
        assert self.registry is not None, "sandbox not started"
        services.pause_registry(self.registry)

    def resume_registry(self) -> None:
        assert self.registry is not None, "sandbox not started"
        services.resume_registry(self.registry)

    def slow_start(self, service: str, seconds: float) -> None:
        """Tasks of `service` wait `seconds` after their image is pulled before their containers start."""
        self.sim_config.service_start_delay[service] = seconds

    def interrupt_task(self, task_arn: str) -> None:
        """Take a running FARGATE_SPOT task away as a Spot interruption would."""
        assert self.simulator is not None, "sandbox not started"
        if not self.simulator.interrupt(task_arn):
            raise ValueError(f"task {task_arn} is not a running FARGATE_SPOT task of the sandbox")

    def end_test(self) -> None:
        """What a finished test leaves behind: no fault, and its services' tasks stopped. The API keeps its
        world until its tasks have stopped; a later test's end forgets it (``Simulator.forget_finished``)."""
        self.clear_faults()
        if self.simulator is not None:
            self.simulator.retire()
            self.simulator.forget_finished()

    def clear_faults(self) -> None:
        """Back to a healthy world: no AWS or registry fault, no rate limit, no slow start, registry and endpoint up."""
        self.ledger.clear_faults()
        self.sim_config.service_start_delay.clear()
        if self.registry is not None:
            self.registry.faults.clear()
            if self.registry.process.poll() is not None:
                services.resume_registry(self.registry)

    def clients(self) -> dict[str, Any]:
        return clients(self.endpoint)

    def build_and_push(self, repo: str, version: str, **behaviour: Any) -> str:
        """Build examples/hello with the given behaviour, push it; return ``registry/repo@sha256:…``."""
        assert self.docker is not None and self.registry is not None
        ref = f"{self.registry.address}/{repo}:{version}"
        images.build_hello(self.docker, ref, version, **behaviour)
        digest = images.push(self.docker, self.registry, ref)
        return f"{self.registry.address}/{repo}@{digest}"

    def bootstrap(self, spec: WorldSpec) -> World:
        return bootstrap(self.endpoint, spec)
