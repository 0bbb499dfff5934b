"""Carrying out a `run-local` plan: start the containers in order, follow them, and remove them whatever happens."""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from docker.models.containers import Container

from .. import matcher, taskdef
from ..aws import Clients
from ..errors import DeployError
from ..spec import ServiceSpec, Spec
from .inputs import engine_network, ensure_images, explain_engine_error, resolve_images, task_definition
from .plan import Dependency, LocalContainer, LocalOptions, LocalPlan, Say, plan_local

LABEL = "ecs-ship.local"
_POLL = 0.25
_LOG_JOIN = 10.0
_HOLDER_COMMAND = ["sleep", "2147483647"]


@dataclass
class Probe:
    """A health check asked of the local task instead of running it until Ctrl-C (`ecs-ship doctor --run-local`):
    GET `path` on the main container until it answers a code `codes` accepts (a target group's Matcher.HttpCode),
    then stop. `served`, `answer` (what it said last) and `answered` (an HTTP status came back) are filled in.
    An app may answer 503 while it warms up: a refused code ends the probe only once it has stood for `settle`
    seconds."""

    path: str
    codes: str
    settle: float = 10.0
    served: bool = False
    answer: str = "no answer"
    answered: bool = False


# ---------------------------------------------------------------------------------------------------------------------
# running it
# ---------------------------------------------------------------------------------------------------------------------
def container_name(family: str, container: str | None, run_id: str) -> str:
    """ecs-ship-local-<family>-<container>-<run id>; the network holder has no container part."""
    middle = f"{family}-{container}" if container else family
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"ecs-ship-local-{middle}-{run_id}")


def _serialised(say: Say) -> Say:
    lock = threading.Lock()

    def locked(line: str) -> None:
        with lock:
            say(line)

    return locked


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class _Task:
    """One local task: its containers in start order, their log threads, and what has exited."""

    def __init__(
        self, plan: LocalPlan, docker_client: docker.DockerClient, say: Say, cancel: threading.Event, run_id: str
    ) -> None:
        self.plan = plan
        self.client = docker_client
        self.say = say
        self.cancel = cancel
        self.run_id = run_id
        self.created: list[Container] = []  # everything to remove, holder first
        self.started: list[tuple[LocalContainer, Container]] = []
        self.exited: dict[str, int] = {}
        self.threads: dict[str, threading.Thread] = {}
        self.holder: Container | None = None

    def labels(self, container: str) -> dict[str, str]:
        return {LABEL: self.run_id, f"{LABEL}.family": self.plan.family, f"{LABEL}.container": container}

    # --- the run --------------------------------------------------------------------------------------------------
    def run(self, health_check_path: str | None, ready_timeout: float, probe: Probe | None = None) -> int:
        plan = self.plan
        self.say(f"running {plan.family} locally as run {self.run_id} ({plan.network} networking)")
        if plan.network == "bridge":
            self._start_holder()
        elif plan.port is not None:
            for c in plan.containers:
                port = int(c.environment["PORT"]) if c.ports else 0
                if port and _listening(port):
                    self.say(
                        f"warning: something on this machine already listens on 127.0.0.1:{port} ({c.name}'s port)"
                    )
        for c in plan.containers:
            for dep in c.depends_on:
                code = self._wait_for(dep, c, c.start_timeout or ready_timeout)
                if code is not None:
                    return code
            if self.cancel.is_set():
                return self._cancelled()
            self._start(c)
        code = self._ready(health_check_path, ready_timeout, probe)
        if code is not None:
            return code
        if probe is not None:
            return 0  # asked and answered: the task is removed now
        while not self.cancel.wait(_POLL):
            code = self._poll()
            if code is not None:
                return code
        return self._cancelled()

    def _cancelled(self) -> int:
        self.say("stopping: cancelled")
        return 0

    def _start_holder(self) -> None:
        # The holder owns the task's network namespace and its published ports, so a container that exits (an
        # init container, a crash) does not take the others' network with it.
        images = list(dict.fromkeys(c.image for c in self.plan.containers))
        for ref in images:
            try:
                holder = self.client.containers.create(
                    ref,
                    entrypoint=_HOLDER_COMMAND[:1],
                    command=_HOLDER_COMMAND[1:],
                    name=container_name(self.plan.family, None, self.run_id),
                    labels=self.labels(""),
                    ports=dict(self.plan.published),
                )
            except docker.errors.APIError as exc:
                raise DeployError(f"failed to create the task's network holder: {explain_engine_error(exc)}") from exc
            self.created.append(holder)
            try:
                holder.start()
            except docker.errors.APIError as exc:
                why = explain_engine_error(exc)
                if "executable file not found" not in why and "no such file or directory" not in why:
                    raise DeployError(
                        f"failed to start the task's network holder: {why}",
                        fix="if a port is taken, stop what uses it or pick another main port with --port",
                    ) from exc
                # No `sleep` in this image (distroless, scratch): try the next one.
                holder.remove(force=True)
                self.created.remove(holder)
                continue
            self.holder = holder
            published = ", ".join(f"{ip}:{port}->{inside}" for inside, (ip, port) in self.plan.published.items())
            self.say(f"network namespace held by {holder.name}" + (f"; published {published}" if published else ""))
            return
        raise DeployError(
            "failed to start the task's network holder: none of the task's images has a `sleep` program",
            fix="run on an engine without a bridge network (host networking), or add a container whose image has "
            "`sleep` (e.g. busybox) as non-essential",
        )

    def _start(self, c: LocalContainer) -> None:
        network_mode = f"container:{self.holder.id}" if self.holder is not None else "host"
        volumes = {str(m.source): {"bind": m.target, "mode": "ro" if m.read_only else "rw"} for m in c.mounts}
        try:
            container = self.client.containers.create(
                c.image,
                name=container_name(self.plan.family, c.name, self.run_id),
                command=list(c.command) if c.command is not None else None,
                entrypoint=list(c.entrypoint) if c.entrypoint is not None else None,
                working_dir=c.working_dir,
                user=c.user,
                environment=dict(c.environment),
                labels={**c.labels, **self.labels(c.name)},
                healthcheck=dict(c.healthcheck) if c.healthcheck else None,
                init=c.init or None,
                read_only=c.read_only or None,
                volumes=volumes or None,
                network_mode=network_mode,
            )
        except docker.errors.APIError as exc:
            raise DeployError(f"failed to create container {c.name}: {explain_engine_error(exc)}") from exc
        self.created.append(container)
        try:
            container.start()
        except docker.errors.APIError as exc:
            raise DeployError(
                f"failed to start container {c.name}: {explain_engine_error(exc)}",
                fix=f"check its entryPoint/command and that the image runs: docker run --rm --network host {c.image}",
            ) from exc
        self.started.append((c, container))
        self._follow_logs(c.name, container)
        where = f" on port {c.environment['PORT']}" if c.ports and self.holder is None else ""
        mounts = "".join(f"; {m.source} -> {m.target}{' (ro)' if m.read_only else ''}" for m in c.mounts)
        self.say(f"started {c.name} ({c.image}){where}{mounts}")

    def _follow_logs(self, name: str, container: Container) -> None:
        def pump() -> None:
            buffer = b""
            try:
                for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        self.say(f"[{name}] " + line.decode("utf-8", "replace").removesuffix("\r"))
            except Exception:  # the stream ends however the container goes away; nothing to report
                pass
            if buffer:
                self.say(f"[{name}] " + buffer.decode("utf-8", "replace").removesuffix("\r"))

        thread = threading.Thread(target=pump, name=f"logs-{name}", daemon=True)
        thread.start()
        self.threads[name] = thread

    # --- watching -------------------------------------------------------------------------------------------------
    def _poll(self) -> int | None:
        """Report containers that exited; the exit code of an essential one, which ends the task."""
        for c, container in self.started:
            if c.name in self.exited:
                continue
            try:
                container.reload()
                state: Mapping[str, Any] = container.attrs.get("State") or {}
            except docker.errors.NotFound:
                state = {"Status": "removed", "ExitCode": 137}
            if state.get("Status") not in ("exited", "dead", "removed"):
                continue
            code = int(state.get("ExitCode") or 0)
            self.exited[c.name] = code
            # Its last log lines (often the reason) read better before the verdict.
            self.threads[c.name].join(timeout=2)
            how = f"exited with code {code}" if state.get("Status") != "removed" else "was removed"
            how += " (out of memory)" if state.get("OOMKilled") else ""
            if c.essential:
                self.say(f"essential container {c.name} {how}: stopping the task")
                return code
            self.say(f"container {c.name} {how} (not essential: the task keeps running)")
        return None

    def _state(self, name: str) -> Mapping[str, Any]:
        container = next(k for c, k in self.started if c.name == name)
        state: Mapping[str, Any] = container.attrs.get("State") or {}
        return state

    def _wait_for(self, dep: Dependency, dependent: LocalContainer, timeout: float) -> int | None:
        """None once ``dep`` holds; else the exit code the task ends with."""
        if dep.condition == "START":
            return None
        deadline = time.monotonic() + timeout
        self.say(f"{dependent.name} waits for {dep.container} to be {dep.condition}")
        while True:
            if self.cancel.is_set():
                return self._cancelled()
            code = self._poll()
            if code is not None:
                return code
            state = self._state(dep.container)
            exit_code = self.exited.get(dep.container)
            if dep.condition == "HEALTHY":
                health = (state.get("Health") or {}).get("Status")
                if health == "healthy":
                    self.say(f"{dep.container} is healthy")
                    return None
                if health == "unhealthy" or exit_code is not None:
                    why = "is unhealthy" if exit_code is None else f"exited with code {exit_code} before it was healthy"
                    self.say(f"failed to start {dependent.name}: {dep.container} {why}")
                    return 1
            elif exit_code is not None:
                if dep.condition == "COMPLETE" or exit_code == 0:
                    return None
                self.say(f"failed to start {dependent.name}: {dep.container} exited with code {exit_code}, not 0")
                return 1
            if time.monotonic() >= deadline:
                self.say(
                    f"failed to start {dependent.name}: {dep.container} was not {dep.condition} within {timeout:.0f}s"
                )
                return 1
            self.cancel.wait(_POLL)

    def _ready(self, path: str | None, timeout: float, probe: Probe | None = None) -> int | None:
        """None once the main container answers (its health check path, else a TCP connect); else an exit code.
        A probe's path and codes replace the spec's path and any 2xx/3xx."""
        if probe is not None:
            path = probe.path
        port = self.plan.port
        if port is None:
            self.say("no container maps a port: the task runs without a URL")
            return None
        url = f"http://127.0.0.1:{port}/"
        target = f"http://127.0.0.1:{port}/{path.lstrip('/')}" if path else None
        session = requests.Session()
        session.trust_env = False  # a proxy from the environment must never see a loopback request
        deadline = time.monotonic() + timeout
        last = "no answer"
        refused_since: float | None = None  # a probe's first answer with a code it does not accept
        try:
            while True:
                if self.cancel.is_set():
                    return self._cancelled()
                code = self._poll()
                if code is not None:
                    return code
                if target is None:
                    if _listening(port):
                        break
                    last = "connection refused"
                else:
                    try:
                        resp = session.get(target, timeout=2, allow_redirects=False)
                        last = f"HTTP {resp.status_code}"
                        if probe is not None:
                            probe.answer, probe.answered = last, True
                            if matcher.accepts(probe.codes, resp.status_code):
                                probe.served = True
                                break
                            refused_since = refused_since or time.monotonic()
                            if time.monotonic() - refused_since >= probe.settle:
                                self.say(f"GET {target} answered {last}, not HTTP {probe.codes or '200'}")
                                return 1
                        elif 200 <= resp.status_code < 400:
                            break
                    except requests.RequestException as exc:
                        last = type(exc).__name__
                        if probe is not None:
                            probe.answer = last
                if time.monotonic() >= deadline:
                    wanted = f"HTTP {probe.codes or '200'}" if probe is not None else "2xx/3xx"
                    what = f"GET {target} answered no {wanted}" if target else f"nothing listened on 127.0.0.1:{port}"
                    self.say(f"failed to become ready: {what} within {timeout:.0f}s (last: {last})")
                    return 1
                self.cancel.wait(_POLL)
        finally:
            session.close()
        self.say(f"ready: {url} (container {self.plan.main})")
        return None

    # --- cleaning up ----------------------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Stop (dependents first, as ECS does) and remove everything this run created; never raises."""
        for c, container in reversed(self.started):
            if c.name in self.exited:
                continue
            try:
                container.stop(timeout=c.stop_timeout)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                self.say(f"warning: failed to stop {c.name}: {explain_engine_error(exc)}")
        deadline = time.monotonic() + _LOG_JOIN
        for thread in self.threads.values():
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        removed = 0
        for container in reversed(self.created):
            try:
                container.remove(force=True)
                removed += 1
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                self.say(f"warning: failed to remove {container.name}: {explain_engine_error(exc)}")
        try:
            # Anything created but lost track of (an interrupted create) still carries the run's label.
            for container in self.client.containers.list(all=True, filters={"label": f"{LABEL}={self.run_id}"}):
                container.remove(force=True)
                removed += 1
        except docker.errors.APIError as exc:
            self.say(
                f"warning: failed to remove containers labelled {LABEL}={self.run_id}: {explain_engine_error(exc)}"
            )
        if removed:
            self.say(f"removed {removed} container{'s' if removed != 1 else ''} of run {self.run_id}")


def run_local(
    svc: ServiceSpec,
    spec: Spec,
    options: LocalOptions,
    *,
    docker_client: docker.DockerClient,
    say: Say,
    cancel: threading.Event,
    clients: Clients | None = None,
    ready_timeout: float = 60.0,
    mask: Callable[[str], None] | None = None,
    cwd: Path | None = None,
    probe: Probe | None = None,
) -> int:
    """Run ``svc``'s task on the local engine until ``cancel`` is set or the task stops; remove it either way.

    Returns the exit code to end with: 0 after a cancel, an essential container's exit code if one exited, 1 if
    the task never became ready (an unmet dependency, or no 2xx/3xx from the health check path in time). Bad input
    raises InputError, engine failures DeployError; everything started is removed in every case.

    ``ready_timeout`` bounds the wait for the health check path (a TCP connect without one) and each dependsOn
    wait of a container that sets no startTimeout. With a ``probe``, the task stops once the probe is answered
    (0) or not in time (1), and the probe says what the main container answered.
    """
    say = _serialised(say)
    mask = mask or (lambda _secret: None)
    network = engine_network(docker_client)
    base, lb_container = task_definition(svc, clients)
    # Everything that can be refused is checked before the (slow) builds.
    pending = {img.container: f"{img.repository}:pending" for img in svc.images}
    checked = taskdef.render(base, pending, allow_host_volumes=svc.allow_host_volumes)
    plan_local(svc, checked.document, options, network=network, main_container=lb_container, cwd=cwd)
    if options.image_tag and not svc.images:
        say(f"warning: --image-tag {options.image_tag} has no effect: the spec builds no images")

    own = resolve_images(
        svc, spec, options, docker_client=docker_client, clients=clients, say=say, mask=mask, cancel=cancel
    )
    if cancel.is_set():
        say("stopping: cancelled before the task started")
        return 0
    rendered = taskdef.render(base, own, allow_host_volumes=svc.allow_host_volumes)
    for warning in rendered.warnings:
        say(f"warning: {warning}")
    plan = plan_local(svc, rendered.document, options, network=network, main_container=lb_container, cwd=cwd)
    for note in plan.skipped:
        say(f"not reproduced locally: {note}")
    ensure_images(docker_client, plan, own, clients=clients, say=say, mask=mask)

    task = _Task(plan, docker_client, say, cancel, uuid.uuid4().hex[:8])
    try:
        return task.run(svc.load_balancer.health_check_path, ready_timeout, probe)
    except docker.errors.APIError as exc:
        raise DeployError(f"failed to run {plan.family} locally: {explain_engine_error(exc)}") from exc
    finally:
        task.cleanup()
