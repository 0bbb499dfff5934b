"""`ecs-ship run-local`: run the task definition a deploy would register on the local Docker engine.

The images are the ones a deploy would ship (built here with the same tag rules, or, with an image tag, pulled
from the registry by the digest the registry reports) and the containers share one network namespace, as under
awsvpc, so they reach each other on localhost exactly as in ECS. What cannot be reproduced without AWS (secrets,
registry credentials, the task role, S3 environment files, volumes) is skipped and said so, with the way to
supply it locally.

``plan_local`` decides everything (start order, environment, mounts, health checks) without Docker or AWS; it
reads only the --env-file files and checks that the --mount sources exist. ``run_local`` carries the plan out
and removes every container it started, whatever happens.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

import botocore.exceptions
import docker
import docker.errors
import requests
from docker.models.containers import Container

from . import build, deploy, image, registry, taskdef
from .aws import CREDENTIAL_CODES, CREDENTIAL_ERRORS, Clients, error_code
from .errors import DeployError, InputError
from .spec import ServiceSpec, Spec

__all__ = [
    "LABEL",
    "Dependency",
    "LocalContainer",
    "LocalOptions",
    "LocalPlan",
    "Mount",
    "container_name",
    "engine_network",
    "healthcheck",
    "parse_env_file",
    "parse_mount",
    "plan_local",
    "run_local",
    "start_order",
    "task_definition",
]

Say = Callable[[str], None]
Network: TypeAlias = Literal["host", "bridge"]
Condition: TypeAlias = Literal["START", "COMPLETE", "SUCCESS", "HEALTHY"]

LABEL = "ecs-ship.local"
CONDITIONS: tuple[Condition, ...] = ("START", "COMPLETE", "SUCCESS", "HEALTHY")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NS = 1_000_000_000
# ECS's own limits (RegisterTaskDefinition HealthCheck): a check ECS would refuse must not pass locally.
_HEALTH_LIMITS = {"interval": (5, 300, 30), "timeout": (2, 60, 5), "retries": (1, 10, 3), "startPeriod": (0, 300, 0)}
_POLL = 0.25
_DEFAULT_STOP_TIMEOUT = 10  # docker's own default; ECS's stopTimeout overrides it
_LOG_JOIN = 10.0
# Any program that just waits will do; this one is in busybox, coreutils and most base images.
_HOLDER_COMMAND = ["sleep", "2147483647"]


# ---------------------------------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalOptions:
    image_tag: str | None = None  # run this tag from the registry instead of building
    mounts: tuple[str, ...] = ()  # SRC:DST[:ro] bind mounts for development
    env_files: tuple[Path, ...] = ()  # KEY=VALUE files applied to every container
    port: int | None = None  # the main container's port on 127.0.0.1 (default: its first containerPort)


@dataclass(frozen=True)
class Mount:
    source: Path  # absolute, exists
    target: str  # absolute path in the container
    read_only: bool = False


@dataclass(frozen=True)
class Dependency:
    container: str
    condition: Condition


@dataclass(frozen=True)
class LocalContainer:
    name: str
    image: str
    essential: bool
    command: tuple[str, ...] | None
    entrypoint: tuple[str, ...] | None
    working_dir: str | None
    user: str | None
    environment: Mapping[str, str] = field(hash=False)
    mounts: tuple[Mount, ...]
    healthcheck: Mapping[str, Any] | None = field(hash=False)  # docker-py's `healthcheck` argument
    depends_on: tuple[Dependency, ...]
    ports: tuple[tuple[int, str], ...]  # (containerPort, protocol) of its portMappings
    init: bool
    read_only: bool
    stop_timeout: int
    start_timeout: float | None  # how long its dependencies may take (ECS startTimeout)
    labels: Mapping[str, str] = field(hash=False)  # dockerLabels


@dataclass(frozen=True)
class LocalPlan:
    family: str
    network: Network
    containers: tuple[LocalContainer, ...]  # in start order
    main: str | None  # the container the URL and the health check path reach
    port: int | None  # its port on 127.0.0.1
    published: Mapping[str, tuple[str, int]] = field(hash=False)  # bridge networking: "8080/tcp" -> (ip, port)
    secrets: Mapping[str, tuple[str, ...]] = field(hash=False)  # container -> names of secrets not fetched
    skipped: tuple[str, ...]  # what is not reproduced locally, and how to supply it

    def container(self, name: str) -> LocalContainer:
        return next(c for c in self.containers if c.name == name)


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as `docker run --env-file` reads them: values are taken literally (quotes included),
    blank lines and lines starting with # are skipped, and `export ` before a line is allowed."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(
            f"failed to read env file {file}: no such file", fix="pass an existing file to --env-file"
        ) from None
    except IsADirectoryError:
        raise InputError(f"failed to read env file {file}: it is a folder", fix="pass a file to --env-file") from None
    except UnicodeDecodeError as e:
        raise InputError(f"failed to read env file {file}: not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise InputError(f"failed to read env file {file}: {e.strerror or e}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r").lstrip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        # The line itself is never quoted back: it may hold a secret.
        if not sep:
            raise InputError(
                f"failed to read env file {file}:{number}: expected KEY=VALUE",
                fix="write one KEY=VALUE per line; lines starting with # are comments",
            )
        if not _ENV_NAME.fullmatch(key):
            raise InputError(
                f"failed to read env file {file}:{number}: {key!r} is not a variable name",
                fix="a name is letters, digits and _, not starting with a digit, and has no spaces around the =",
            )
        values[key] = value
    return values


def parse_mount(text: str, cwd: Path | None = None) -> Mount:
    """SRC:DST or SRC:DST:ro; a relative SRC is relative to ``cwd`` (default: the current folder)."""
    parts = text.split(":")
    read_only = False
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        read_only = parts.pop() == "ro"
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise InputError(
            f"failed to parse --mount {text!r}: expected SRC:DST or SRC:DST:ro",
            fix="e.g. --mount ./src:/app/src (SRC on this machine, DST in the container)",
        )
    src, target = parts
    source = ((cwd or Path.cwd()) / Path(src).expanduser()).resolve()
    if not source.exists():
        raise InputError(
            f"failed to mount {src!r}: {source} does not exist",
            fix="a relative SRC is relative to the folder ecs-ship runs in",
        )
    if not target.startswith("/"):
        raise InputError(
            f"failed to mount {src!r} at {target!r}: the container path must be absolute",
            fix=f"e.g. --mount {src}:/{target}",
        )
    return Mount(source, target.rstrip("/") or "/", read_only)


def healthcheck(check: Mapping[str, Any], container: str) -> dict[str, Any]:
    """A task definition's ``healthCheck`` as docker-py's ``healthcheck`` argument (durations in nanoseconds)."""
    where = f"failed to read the healthCheck of container {container!r}"
    command = check.get("command")
    if (
        not isinstance(command, list)
        or not all(isinstance(part, str) for part in command)
        or len(command) < 2
        or command[0] not in ("CMD", "CMD-SHELL")
    ):
        raise InputError(
            f'{where}: command must be ["CMD-SHELL", "<shell command>"] or ["CMD", "<program>", ...]',
            fix='e.g. "command": ["CMD-SHELL", "curl -f http://localhost/health || exit 1"]',
        )
    values: dict[str, int] = {}
    for key, (low, high, default) in _HEALTH_LIMITS.items():
        value = check.get(key, default)
        if value is None:
            value = default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InputError(
                f"{where}: {key} is {value!r}; ECS accepts a whole number from {low} to {high}",
                fix=f"set {key} within ECS's limits (or leave it out for the default, {default})",
            )
        values[key] = value
    result: dict[str, Any] = {
        "test": list(command),
        "interval": values["interval"] * _NS,
        "timeout": values["timeout"] * _NS,
        "retries": values["retries"],
    }
    if values["startPeriod"]:
        result["start_period"] = values["startPeriod"] * _NS
    return result


def start_order(containers: Sequence[Mapping[str, Any]]) -> list[str]:
    """Container names so that every container comes after the ones it depends on; otherwise definition order."""
    names = [str(c["name"]) for c in containers]
    deps = {str(c["name"]): [str(d["containerName"]) for d in c.get("dependsOn") or []] for c in containers}
    for name, wanted in deps.items():
        unknown = [d for d in wanted if d not in deps]
        if unknown:
            raise InputError(
                f"failed to order containers: {name!r} depends on {unknown[0]!r}, which the task does not have",
                fix="name one of: " + ", ".join(names),
            )
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(names):
        ready = next((n for n in names if n not in placed and all(d in placed for d in deps[n])), None)
        if ready is None:
            raise InputError(
                f"failed to order containers: dependsOn forms a cycle: {' -> '.join(_cycle(deps, placed))}",
                fix="remove one of the dependencies; ECS would never start these containers either",
            )
        order.append(ready)
        placed.add(ready)
    return order


def _cycle(deps: Mapping[str, list[str]], placed: set[str]) -> list[str]:
    # Every unplaced container waits on another unplaced one, so walking first dependencies must loop.
    start = next(n for n in deps if n not in placed)
    path = [start]
    while True:
        nxt = next(d for d in deps[path[-1]] if d not in placed)
        if nxt in path:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)


def _dependencies(defs: Mapping[str, Mapping[str, Any]], name: str) -> tuple[Dependency, ...]:
    out: list[Dependency] = []
    for i, entry in enumerate(defs[name].get("dependsOn") or []):
        where = f"failed to read dependsOn[{i}] of container {name!r}"
        target = entry.get("containerName") if isinstance(entry, Mapping) else None
        condition = entry.get("condition") if isinstance(entry, Mapping) else None
        if target not in defs:
            raise InputError(
                f"{where}: no container named {target!r} in the task definition",
                fix="name one of: " + ", ".join(defs),
            )
        if condition not in CONDITIONS:
            raise InputError(f"{where}: condition is {condition!r}", fix="use one of: " + ", ".join(CONDITIONS))
        dep = defs[str(target)]
        if condition == "HEALTHY" and not dep.get("healthCheck"):
            raise InputError(
                f"{where}: {target!r} has no healthCheck, so it can never be HEALTHY",
                fix=f"add a healthCheck to {target!r}, or depend on it with condition START",
            )
        if condition in ("COMPLETE", "SUCCESS") and dep.get("essential", True):
            raise InputError(
                f"{where}: {target!r} is essential, and ECS refuses {condition} on an essential container "
                "(its exit would stop the task)",
                fix=f'set "essential": false on {target!r}, or depend on it with START or HEALTHY',
            )
        out.append(Dependency(str(target), condition))
    return tuple(out)


def _strings(value: Any, what: str) -> tuple[str, ...] | None:
    if value is None or value == []:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"failed to read {what}: expected a list of strings", fix='e.g. ["/app/server", "--flag"]')
    return tuple(value)


def _ports(c: Mapping[str, Any]) -> tuple[tuple[int, str], ...]:
    out: list[tuple[int, str]] = []
    for mapping in c.get("portMappings") or []:
        port = mapping.get("containerPort") if isinstance(mapping, Mapping) else None
        if port is None:
            continue  # a containerPortRange: nothing to route a URL to
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InputError(
                f"failed to read the portMappings of container {c['name']!r}: containerPort {port!r} is not a port"
            )
        out.append((port, str(mapping.get("protocol") or "tcp")))
    return tuple(out)


def _main_container(ports: Mapping[str, tuple[tuple[int, str], ...]], svc: ServiceSpec, hint: str | None) -> str | None:
    if hint and ports.get(hint):
        return hint
    for img in svc.images:
        if ports.get(img.container):
            return img.container
    return next((name for name, p in ports.items() if p), None)


def plan_local(
    svc: ServiceSpec,
    document: Mapping[str, Any],
    options: LocalOptions,
    *,
    network: Network = "host",
    main_container: str | None = None,
    cwd: Path | None = None,
) -> LocalPlan:
    """Decide how to run ``document`` (a task definition, register- or describe-style) locally.

    ``main_container`` is the load-balanced container when the service says which; otherwise the first of the
    spec's image containers with a port mapping, else the first container with one.
    """
    doc = taskdef.normalise(document)
    family = str(doc["family"])
    defs: dict[str, Mapping[str, Any]] = {str(c["name"]): c for c in doc["containerDefinitions"]}
    if not any(c.get("essential", True) for c in defs.values()):
        raise InputError(
            "failed to plan the local task: no container is essential",
            fix='mark at least one container "essential": true (ECS requires it too)',
        )
    base = Path.cwd() if cwd is None else cwd
    extra: dict[str, str] = {}
    for env_file in options.env_files:
        path = env_file if env_file.is_absolute() else base / env_file
        # Same rule as the spec's own paths: a spec from a pull request must not point run-local at ~/.aws.
        if svc.workspace is not None and (refused := svc.workspace.refused(path)) is not None:
            raise InputError(
                f"failed to read env file {env_file}: {refused} is outside the workspace {svc.workspace.root}",
                fix=svc.workspace.fix,
            )
        extra.update(parse_env_file(path))
    mounts = tuple(parse_mount(m, base) for m in options.mounts)
    seen_targets: set[str] = set()
    for m in mounts:
        if m.target in seen_targets:
            raise InputError(f"failed to mount: two --mount options use the container path {m.target}")
        seen_targets.add(m.target)
    mounted = {img.container for img in svc.images if img.container in defs} or set(defs)

    ports = {name: _ports(c) for name, c in defs.items()}
    main = _main_container(ports, svc, main_container)
    if options.port is not None:
        if not 1 <= options.port <= 65535:
            raise InputError(f"failed to use --port {options.port}: a port is 1 to 65535")
        if main is None:
            raise InputError(
                f"failed to use --port {options.port}: no container of {family} has portMappings",
                fix="add a portMappings entry to the container that serves, or drop --port",
            )
    owner: dict[tuple[int, str], str] = {}
    for name, mapped in ports.items():
        for key in mapped:
            if key in owner and owner[key] != name:
                raise InputError(
                    f"failed to plan the local task: containers {owner[key]!r} and {name!r} both map "
                    f"port {key[0]}/{key[1]}, and the containers of a task share one network",
                    fix="give each container its own containerPort",
                )
            owner[key] = name
    main_port = ports[main][0][0] if main else None
    port = options.port if options.port is not None else main_port
    if options.port is not None and owner.get((options.port, "tcp"), main) != main:
        raise InputError(
            f"failed to use --port {options.port}: container {owner[(options.port, 'tcp')]!r} uses that port",
            fix="choose a port no container of the task maps",
        )

    published: dict[str, tuple[str, int]] = {}
    if network == "bridge":
        for name, mapped in ports.items():
            for i, (container_port, protocol) in enumerate(mapped):
                host_port = port if name == main and i == 0 and port is not None else container_port
                published[f"{container_port}/{protocol}"] = ("127.0.0.1", host_port)

    dependencies = {name: _dependencies(defs, name) for name in defs}  # checked before ordering: clearer errors
    order = start_order(list(defs.values()))
    containers: list[LocalContainer] = []
    secrets: dict[str, tuple[str, ...]] = {}
    skipped: list[str] = []
    for name in order:
        c = defs[name]
        env = {str(e["name"]): str(e.get("value", "")) for e in c.get("environment") or [] if isinstance(e, Mapping)}
        env.update(extra)
        if ports[name]:
            # On host networking the port a container must listen on is the one ECS would route to; --port moves
            # the main container's (the container's own port stays as is behind the bridge mapping).
            own = ports[name][0][0]
            if name == main and network == "host" and port is not None:
                own = port
            env["PORT"] = str(own)
        secret_names = tuple(str(s.get("name")) for s in c.get("secrets") or [] if isinstance(s, Mapping))
        if secret_names:
            secrets[name] = secret_names
            missing = [s for s in secret_names if s not in extra]
            how = (
                "--env-file sets them all"
                if not missing
                else f"supply {', '.join(missing)} with --env-file FILE (KEY=VALUE lines)"
            )
            skipped.append(f"container {name!r}: secrets are not fetched ({', '.join(secret_names)}); {how}")
        if c.get("repositoryCredentials"):
            skipped.append(
                f"container {name!r}: repositoryCredentials are not fetched; its image is pulled with your own "
                "registry login (`docker login`, or ECS_SHIP_REGISTRY_USERNAME/ECS_SHIP_REGISTRY_PASSWORD)"
            )
        if c.get("environmentFiles"):
            skipped.append(
                f"container {name!r}: environmentFiles (S3) are not fetched; pass their KEY=VALUE content with "
                "--env-file FILE"
            )
        if c.get("mountPoints") or c.get("volumesFrom"):
            skipped.append(
                f"container {name!r}: mountPoints/volumesFrom are not mounted locally; use --mount SRC:DST for "
                "what the container needs"
            )
        check = c.get("healthCheck")
        linux = c.get("linuxParameters") or {}
        stop_timeout = c.get("stopTimeout")
        start_timeout = c.get("startTimeout")
        containers.append(
            LocalContainer(
                name=name,
                image=str(c.get("image") or ""),
                essential=bool(c.get("essential", True)),
                command=_strings(c.get("command"), f"the command of container {name!r}"),
                entrypoint=_strings(c.get("entryPoint"), f"the entryPoint of container {name!r}"),
                working_dir=c.get("workingDirectory") or None,
                user=c.get("user") or None,
                environment=env,
                mounts=mounts if name in mounted else (),
                healthcheck=healthcheck(check, name) if check else None,
                depends_on=dependencies[name],
                ports=ports[name],
                init=bool(linux.get("initProcessEnabled")),
                read_only=bool(c.get("readonlyRootFilesystem")),
                stop_timeout=int(stop_timeout) if isinstance(stop_timeout, int) else _DEFAULT_STOP_TIMEOUT,
                start_timeout=float(start_timeout) if isinstance(start_timeout, int | float) else None,
                labels={str(k): str(v) for k, v in (c.get("dockerLabels") or {}).items()},
            )
        )
    if doc.get("taskRoleArn"):
        skipped.append(
            f"task role {doc['taskRoleArn']} is not assumed: the containers get no AWS credentials; to call AWS "
            "locally put AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN/AWS_REGION in an --env-file"
        )
    if doc.get("volumes"):
        names = ", ".join(str(v.get("name")) for v in doc["volumes"] if isinstance(v, Mapping))
        skipped.append(f"volumes {names} are not created locally; use --mount SRC:DST instead")
    mode = doc.get("networkMode", "awsvpc")
    if mode != "awsvpc":
        skipped.append(f"networkMode {mode}: the containers still share one network namespace locally, as under awsvpc")
    return LocalPlan(
        family=family,
        network=network,
        containers=tuple(containers),
        main=main,
        port=port,
        published=published,
        secrets=secrets,
        skipped=tuple(skipped),
    )


# ---------------------------------------------------------------------------------------------------------------------
# inputs that need the outside world: the task definition, the engine, the images
# ---------------------------------------------------------------------------------------------------------------------
def task_definition(svc: ServiceSpec, clients: Clients | None) -> tuple[dict[str, Any], str | None]:
    """The base task definition (register-style), and the load-balanced container when the service names one."""
    source = svc.task_definition
    if source.kind != "current" and source.document is not None:
        return taskdef.normalise(source.document), None
    fix = (
        "add `task_definition: taskdef.json` to the spec (the task definition as a file in the repository, e.g. "
        "`aws ecs describe-task-definition` output) so run-local needs no AWS"
    )
    why = f"the spec takes the task definition from service {svc.service}'s current revision"
    if clients is None:
        raise InputError(f"failed to read the task definition: {why}, which needs AWS access", fix=fix)
    try:
        service = deploy.describe_service(clients, svc.cluster, svc.service)
        described = clients.ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    except InputError as exc:  # no such cluster or service
        raise InputError(f"failed to read the task definition: {why}: {exc}", fix=fix) from exc
    except CREDENTIAL_ERRORS as exc:
        raise InputError(
            f"failed to read the task definition: {why}, and AWS credentials are missing", fix=fix
        ) from exc
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in CREDENTIAL_CODES:
            raise InputError(f"failed to read the task definition: {why}: {exc}", fix=fix) from exc
        raise
    described.pop("ResponseMetadata", None)
    lb = next((b for b in service.get("loadBalancers") or [] if b.get("containerName")), None)
    return taskdef.normalise(described), lb["containerName"] if lb else None


def engine_network(docker_client: docker.DockerClient) -> Network:
    """The way to give a task one network: "bridge" when the engine has its default bridge network (a holder
    container can publish ports), else "host"."""
    try:
        networks = docker_client.networks.list(names=["bridge"])
    except docker.errors.APIError as exc:
        raise DeployError(f"failed to list the engine's networks: {_explain(exc)}") from exc
    # The names filter matches substrings: a user network "my-bridge" is not the default bridge.
    return "bridge" if any(n.name == "bridge" for n in networks) else "host"


def _pull(
    docker_client: docker.DockerClient, repository: str, tag: str, creds: registry.Credentials | None, say: Say
) -> None:
    say(f"pulling {repository}{'@' if tag.startswith('sha256:') else ':'}{tag}")
    error = registry.run_stream(
        # tag may be a digest: the engine takes either.
        lambda: docker_client.api.pull(
            repository, tag=tag, auth_config=creds.auth_config() if creds else None, stream=True, decode=True
        )
    )
    if error:
        raise registry.registry_failure("pull", f"{repository}:{tag}", error)


def resolve_images(
    svc: ServiceSpec,
    spec: Spec,
    options: LocalOptions,
    *,
    docker_client: docker.DockerClient,
    clients: Clients | None,
    say: Say,
    mask: Callable[[str], None],
    cancel: threading.Event,
) -> dict[str, str]:
    """Container -> image reference for the spec's images, on the local engine: built as a deploy would tag
    them, or (with an image tag) pulled by the digest the registry reports, which is what a deploy registers."""
    refs: dict[str, str] = {}
    values: dict[str, str] | None = None
    builder: build.Builder | None = None
    for img in svc.images:
        if cancel.is_set():
            break
        if options.image_tag:
            host, path = registry.split_repository(img.repository)
            creds = registry.resolve_credentials(host, clients=clients, mask=mask)
            digest = registry.RegistryAPI(host, creds).manifest_digest(path, options.image_tag)
            if digest is None:
                raise InputError(
                    f"failed to find image {img.repository}:{options.image_tag} in registry {host}",
                    fix="push that tag first (`ecs-ship deploy` does), or drop --image-tag to build locally",
                )
            _pull(docker_client, img.repository, digest, creds, say)
            refs[img.container] = taskdef.image_ref(img.repository, digest)
        else:
            if values is None:
                values = image.tag_values(image.git_info(spec.path.parent), spec.env)
            tag = image.image_tag(img, values)
            say(f"building {img.repository}:{tag} for container {img.container}")
            if builder is None:
                builder = build.detect_builder()
                say(builder.describe())
            # The engine holds one platform's image: of a multi-platform spec, the first listed is run.
            one = dataclasses.replace(img, platform=img.platform[:1])
            build.build_image(builder, one, f"{img.repository}:{tag}", say, docker_client=lambda: docker_client)
            refs[img.container] = f"{img.repository}:{tag}"
    return refs


def _ensure_images(
    docker_client: docker.DockerClient,
    plan: LocalPlan,
    own: Mapping[str, str],
    *,
    clients: Clients | None,
    say: Say,
    mask: Callable[[str], None],
) -> None:
    # Images of containers the spec does not build run as the task definition names them; a copy already on the
    # engine is used as it is (a digest pins it anyway; a tag is what the developer has).
    for c in plan.containers:
        if c.name in own:
            continue
        try:
            docker_client.images.get(c.image)
            continue
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise DeployError(f"failed to look up image {c.image}: {_explain(exc)}") from exc
        repository, tag = registry.split_reference(c.image)
        host = registry.split_repository(repository)[0]
        creds = registry.resolve_credentials(host, clients=clients, mask=mask)
        _pull(docker_client, repository, tag, creds, say)


# ---------------------------------------------------------------------------------------------------------------------
# running it
# ---------------------------------------------------------------------------------------------------------------------
def container_name(family: str, container: str | None, run_id: str) -> str:
    """ecs-ship-local-<family>-<container>-<run id>; the network holder has no container part."""
    middle = f"{family}-{container}" if container else family
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"ecs-ship-local-{middle}-{run_id}")


def _explain(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc)


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
    def run(self, health_check_path: str | None, ready_timeout: float) -> int:
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
        code = self._ready(health_check_path, ready_timeout)
        if code is not None:
            return code
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
                raise DeployError(f"failed to create the task's network holder: {_explain(exc)}") from exc
            self.created.append(holder)
            try:
                holder.start()
            except docker.errors.APIError as exc:
                why = _explain(exc)
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
            raise DeployError(f"failed to create container {c.name}: {_explain(exc)}") from exc
        self.created.append(container)
        try:
            container.start()
        except docker.errors.APIError as exc:
            raise DeployError(
                f"failed to start container {c.name}: {_explain(exc)}",
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

    def _ready(self, path: str | None, timeout: float) -> int | None:
        """None once the main container answers (its health check path, else a TCP connect); else an exit code."""
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
                        if 200 <= resp.status_code < 400:
                            break
                        last = f"HTTP {resp.status_code}"
                    except requests.RequestException as exc:
                        last = type(exc).__name__
                if time.monotonic() >= deadline:
                    what = f"GET {target} answered no 2xx/3xx" if target else f"nothing listened on 127.0.0.1:{port}"
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
                self.say(f"warning: failed to stop {c.name}: {_explain(exc)}")
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
                self.say(f"warning: failed to remove {container.name}: {_explain(exc)}")
        try:
            # Anything created but lost track of (an interrupted create) still carries the run's label.
            for container in self.client.containers.list(all=True, filters={"label": f"{LABEL}={self.run_id}"}):
                container.remove(force=True)
                removed += 1
        except docker.errors.APIError as exc:
            self.say(f"warning: failed to remove containers labelled {LABEL}={self.run_id}: {_explain(exc)}")
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
) -> int:
    """Run ``svc``'s task on the local engine until ``cancel`` is set or the task stops; remove it either way.

    Returns the exit code to end with: 0 after a cancel, an essential container's exit code if one exited, 1 if
    the task never became ready (an unmet dependency, or no 2xx/3xx from the health check path in time). Bad input
    raises InputError, engine failures DeployError; everything started is removed in every case.

    ``ready_timeout`` bounds the wait for the health check path (a TCP connect without one) and each dependsOn
    wait of a container that sets no startTimeout.
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
    _ensure_images(docker_client, plan, own, clients=clients, say=say, mask=mask)

    task = _Task(plan, docker_client, say, cancel, uuid.uuid4().hex[:8])
    try:
        return task.run(svc.load_balancer.health_check_path, ready_timeout)
    except docker.errors.APIError as exc:
        raise DeployError(f"failed to run {plan.family} locally: {_explain(exc)}") from exc
    finally:
        task.cleanup()
