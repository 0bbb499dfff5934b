"""The pure plan of `run-local`: start order, environment, mounts and health checks, without Docker or AWS."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from .. import taskdef
from ..errors import InputError
from ..spec import ServiceSpec

Say = Callable[[str], None]
Network: TypeAlias = Literal["host", "bridge"]
Condition: TypeAlias = Literal["START", "COMPLETE", "SUCCESS", "HEALTHY"]

CONDITIONS: tuple[Condition, ...] = ("START", "COMPLETE", "SUCCESS", "HEALTHY")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NS = 1_000_000_000
# ECS's own limits (RegisterTaskDefinition HealthCheck): a check ECS would refuse must not pass locally.
_HEALTH_LIMITS = {"interval": (5, 300, 30), "timeout": (2, 60, 5), "retries": (1, 10, 3), "startPeriod": (0, 300, 0)}
_DEFAULT_STOP_TIMEOUT = 10  # docker's own default; ECS's stopTimeout overrides it
# Any program that just waits will do; this one is in busybox, coreutils and most base images.


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
