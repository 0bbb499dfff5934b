"""load_spec: read, validate, merge environment overlays and `services` entries, check paths against the
workspace, and build the frozen dataclasses."""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpecError
from .model import (
    BuildSecret,
    CacheEntry,
    DeploymentSpec,
    ImageSpec,
    KeyPath,
    LoadBalancerSpec,
    OneOffList,
    OneOffSpec,
    PauseSpec,
    ServiceSpec,
    SmokeSpec,
    Spec,
    TaskDefinitionSource,
    WaitSpec,
    Workspace,
)
from .schema import _def, _Validator, _with_defaults
from .source import MAX_DEPTH, MAX_SPEC_BYTES, _describe, _fmt, _num, _parse_yaml, _Source, nesting
from .tags import _KNOWN, _TAG_RULES, _render

# ---------------------------------------------------------------------------------------------------------------------
# overlays
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class _Layered:
    """Settings deep-merged from several places of the spec, remembering where each value was written."""

    data: dict[str, Any] = field(default_factory=dict)
    where: dict[KeyPath, KeyPath] = field(default_factory=dict)  # merged path -> path in the spec file

    def add(self, layer: Mapping[str, Any], prefix: KeyPath) -> None:
        self._merge(self.data, layer, prefix, ())

    def _merge(self, acc: dict[str, Any], layer: Mapping[str, Any], prefix: KeyPath, at: KeyPath) -> None:
        for key, value in layer.items():
            path = (*at, key)
            if isinstance(value, dict) and isinstance(acc.get(key), dict):
                acc[key] = dict(acc[key])
                self._merge(acc[key], value, prefix, path)
            else:
                acc[key] = copy.deepcopy(value)
                for stale in [p for p in self.where if p[: len(path)] == path]:
                    del self.where[stale]
                self.where[path] = prefix + path

    def origin(self, path: KeyPath) -> KeyPath | None:
        for n in range(len(path), 0, -1):
            written = self.where.get(path[:n])
            if written is not None:
                return written + path[n:]
        return None


# ---------------------------------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------------------------------

# The settings each cache type takes (the schema lists them all for every type).
_CACHE_SETTINGS: dict[str, tuple[str, ...]] = {
    "registry": ("ref", "mode"),
    "gha": ("scope", "mode"),
    "inline": (),
    "previous": (),
}

# Not in the schema's `required`: they may come from the top level, an environment or a services entry.
_REQUIRED = ("cluster", "service")


def load_spec(
    path: str | os.PathLike[str], *, env: str | None = None, environ: Mapping[str, str] | None = None
) -> Spec:
    """Read, check and resolve the spec file at ``path``, with the overlay of environment ``env`` (if given).

    ${VAR} references in string values are filled from ``environ`` (default: os.environ).
    """
    return _Loader(path, env or None, os.environ if environ is None else environ).load()


def _read_text(path: Path, file: str, what: str, fix: str) -> str:
    try:
        with path.open("rb") as f:
            # Read one byte past the cap rather than trusting the size on disk: a FIFO or /dev/zero has none.
            data = f.read(MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES:
            raise SpecError(
                f"failed to read {what}: it is larger than {MAX_SPEC_BYTES // 1024 // 1024} MiB",
                file=file,
                fix=f"check that {file} is the right file: {what} is normally a few KiB",
            )
        return data.decode("utf-8-sig")
    except FileNotFoundError:
        raise SpecError(f"failed to read {what}: no such file", file=file, fix=fix) from None
    except IsADirectoryError:
        raise SpecError(f"failed to read {what}: it is a folder, not a file", file=file, fix=fix) from None
    except UnicodeDecodeError as e:
        raise SpecError(f"failed to read {what}: not UTF-8 text ({e.reason})", file=file) from None
    except OSError as e:
        raise SpecError(f"failed to read {what}: {e.strerror or e}", file=file) from None


def _platforms(value: str | list[str]) -> tuple[str, ...]:
    # A list keeps its order without repeats.
    return (value,) if isinstance(value, str) else tuple(dict.fromkeys(value))


def _build_arg(value: str | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _num(value)
    return str(value)


def _same_name(a: str, b: str) -> bool:
    # A cluster or service may be written as a name or as an ARN ending in /name.
    return a.rsplit("/", 1)[-1] == b.rsplit("/", 1)[-1]


class _Loader:
    def __init__(self, path: str | os.PathLike[str], env: str | None, environ: Mapping[str, str]) -> None:
        self.file = os.fspath(path)
        self.environ = environ
        self.path = Path(path).resolve()
        self.folder = self.path.parent
        self.env = env
        self.src = _Source(self.file)
        self.task_definitions: dict[Path, Mapping[str, Any]] = {}
        self.workspace = Workspace(self.folder, allow_outside=False)

    def load(self) -> Spec:
        text = _read_text(
            Path(self.file),
            self.file,
            "the spec",
            fix="run ecs-ship in the folder that holds ecs-ship.yml, or pass --spec PATH",
        )
        self.src = _parse_yaml(text, self.file, "the spec", self.environ)
        data = self.src.data
        if data is None:
            raise SpecError(
                "the spec is empty", file=self.file, line=1, fix="start it with `version: 1`, `cluster:` and `service:`"
            )
        if not isinstance(data, dict):
            raise self.src.error(
                (),
                "the spec must be a mapping of keys (version, cluster, service, ...), "
                f"got {self.src.describe((), data)}",
            )
        validator = _Validator(self.src)
        root = validator.root
        if "version" in data:
            validator.check(data["version"], root["properties"]["version"], ("version",))
        validator.check(data, root, ())
        allow_outside = _with_defaults(data, root)["allow_paths_outside_workspace"]
        self.workspace = Workspace(_workspace_root(self.folder, self.environ), allow_outside)

        shared = _Layered()
        settings = _def("environment")["properties"]
        shared.add({k: v for k, v in data.items() if k in settings}, ())
        if self.env is not None:
            shared.add(self._overlay(data, self.env), ("environments", self.env))

        services: list[ServiceSpec] = []
        if "services" in data:
            layers: list[_Layered] = []
            for i, entry in enumerate(data["services"]):
                layered = _Layered(copy.deepcopy(shared.data), dict(shared.where))
                layered.add(entry, ("services", i))
                layers.append(layered)
                services.append(self._service(layered, ("services", i)))
            self._check_unique(services, layers)
        else:
            services.append(self._service(shared, ()))
        return Spec(path=self.path, env=self.env, services=tuple(services))

    def _overlay(self, data: Mapping[str, Any], env: str) -> Mapping[str, Any]:
        envs: Mapping[str, Any] | None = data.get("environments")
        if not envs:
            raise SpecError(
                f"failed to select environment {env!r}: the spec defines no environments",
                file=self.file,
                line=self.src.line(("environments",)) if envs is not None else None,
                fix=f"add `environments: {{{env}: {{...}}}}` to the spec, or drop --env",
            )
        if env not in envs:
            close = difflib.get_close_matches(env, list(envs), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.src.error(
                ("environments",),
                f"no environment {env!r}{hint}; the spec defines: {', '.join(envs)}",
                fix="pass one of those to --env, or add it under `environments:`",
                key=True,
            )
        overlay: Mapping[str, Any] = envs[env] or {}
        return overlay

    def _error(
        self, layered: _Layered, path: KeyPath, message: str, *, fix: str | None = None, entry: KeyPath = ()
    ) -> SpecError:
        return self.src.error(layered.origin(path) or entry + path, message, fix=fix)

    def _shown(self, layered: _Layered, path: KeyPath, text: str, entry: KeyPath = ()) -> str:
        return self.src.shown(layered.origin(path) or entry + path, text)

    def _service(self, layered: _Layered, entry: KeyPath) -> ServiceSpec:
        merged = layered.data
        for key in _REQUIRED:
            if key not in merged:
                raise self._missing(key, entry)
        s = _with_defaults(merged, _def("service_entry"))

        images: list[ImageSpec] = []
        seen: dict[str, int] = {}
        for i, raw in enumerate(s["images"]):
            image = self._image(layered, i, raw)
            if image.container in seen:
                raise self._error(
                    layered,
                    ("images", i, "container"),
                    f"container {self._shown(layered, ('images', i, 'container'), repr(image.container), entry)} "
                    f"already gets the image of images[{seen[image.container]}]",
                    fix="build one image per container: remove or rename one of the entries",
                    entry=entry,
                )
            seen[image.container] = i
            images.append(image)

        lb = s["load_balancer"]
        if lb["apply_health_check_path"] and "health_check_path" not in lb:
            raise self._error(
                layered,
                ("load_balancer", "apply_health_check_path"),
                "is true but load_balancer.health_check_path is not set",
                fix="set load_balancer.health_check_path to the path the target groups should check",
                entry=entry,
            )
        wait = s["wait"]
        dep = s["deployment"]
        pause = dep.get("pause")
        smoke = s["smoke"]
        if smoke is True:
            smoke = _with_defaults({}, _def("smoke"))
        one_offs = self._one_offs(layered, s, entry)
        return ServiceSpec(
            name=s.get("name", s["service"]),
            region=s.get("region"),
            cluster=s["cluster"],
            service=s["service"],
            images=tuple(images),
            task_definition=self._task_definition(layered, s.get("task_definition"), entry),
            load_balancer=LoadBalancerSpec(
                lb.get("health_check_path"), lb["apply_health_check_path"], lb.get("url", "").rstrip("/") or None
            ),
            wait=WaitSpec(wait["until"], float(wait["timeout"]), float(wait["poll_interval"])),
            on_failure=s["on_failure"],
            allow_host_volumes=s["allow_host_volumes"],
            workspace=self.workspace,
            keep_revisions=s.get("keep_revisions"),
            deployment=DeploymentSpec(
                strategy=dep.get("strategy"),
                bake_time=_minutes(dep.get("bake_time")),
                canary_percent=dep.get("canary_percent"),
                canary_bake_time=_minutes(dep.get("canary_bake_time")),
                step_percent=dep.get("step_percent"),
                step_bake_time=_minutes(dep.get("step_bake_time")),
                pause=PauseSpec(tuple(pause["at"]), pause.get("timeout"), pause.get("on_timeout")) if pause else None,
            ),
            smoke=SmokeSpec(smoke["path"], int(smoke["expect_status"]), smoke.get("contains"), float(smoke["timeout"]))
            if smoke
            else None,
            pre_deploy=one_offs["pre_deploy"],
            post_deploy=one_offs["post_deploy"],
        )

    def _one_offs(
        self, layered: _Layered, s: Mapping[str, Any], entry: KeyPath
    ) -> dict[OneOffList, tuple[OneOffSpec, ...]]:
        """pre_deploy and post_deploy, checked. A name is the task's startedBy (ecs-ship/NAME) and how a planned
        RunTask finds its entry again, so it is unique across both lists, not only within one."""
        named: dict[str, OneOffList] = {}
        lists: dict[OneOffList, tuple[OneOffSpec, ...]] = {}
        phases: tuple[OneOffList, ...] = ("pre_deploy", "post_deploy")
        for phase in phases:
            jobs = []
            for i, raw in enumerate(s[phase]):
                if raw["name"] in named:
                    other = named[raw["name"]]
                    raise self._error(
                        layered,
                        (phase, i, "name"),
                        f"{raw['name']!r} names {'another' if other == phase else 'a'} {other} task too",
                        fix="give each task its own name, across pre_deploy and post_deploy",
                        entry=entry,
                    )
                named[raw["name"]] = phase
                jobs.append(self._one_off(layered, (phase, i), raw, phase, entry))
            lists[phase] = tuple(jobs)
        return lists

    def _one_off(
        self, layered: _Layered, at: KeyPath, raw: Mapping[str, Any], phase: OneOffList, entry: KeyPath
    ) -> OneOffSpec:
        """The entry at ``at`` (pre_deploy[i] or post_deploy[i]), checked."""
        command = raw["command"]
        if isinstance(command, str):
            try:
                command = shlex.split(command)
            except ValueError as exc:
                raise self._error(
                    layered,
                    (*at, "command"),
                    f"cannot be split into arguments ({exc})",
                    fix="close the quote, or give the command as a list of arguments",
                    entry=entry,
                ) from exc
            if not command:
                raise self._error(layered, (*at, "command"), "is empty", fix="give the command to run", entry=entry)
        return OneOffSpec(
            raw["name"],
            raw.get("container"),
            tuple(command),
            float(raw["timeout"]),
            tuple(sorted(raw["environment"].items())),
            phase,
        )

    def _missing(self, key: str, entry: KeyPath) -> SpecError:
        title = _def(key)["title"]
        places = [f"in {_fmt(entry)}", "at the top level (shared by every service)"] if entry else ["at the top level"]
        if self.env is not None:
            places.append(f"under environments.{self.env}")
        return self.src.error((*entry, key), "required", fix=f"set `{key}:` ({title}) " + ", or ".join(places))

    def _image(self, layered: _Layered, i: int, raw: Mapping[str, Any]) -> ImageSpec:
        at = ("images", i)
        problem = repository_problem(str(raw["repository"]))
        if problem is not None:
            raise self._error(
                layered,
                (*at, "repository"),
                f"{raw['repository']!r} is not a repository a registry accepts: {problem}",
                fix=_REPOSITORY_RULES,
            )
        context = self._inside(layered, (*at, "context"), self.folder / raw["context"], "build context")
        dockerfile = self._inside(layered, (*at, "dockerfile"), context / raw["dockerfile"], "Dockerfile")
        if not context.is_dir():
            problem = "is not a folder" if context.exists() else "does not exist"
            raise self._error(
                layered,
                (*at, "context"),
                f"build context {self._shown(layered, (*at, 'context'), str(context))} {problem}",
                fix=f"context is a folder relative to the spec file's folder ({self.folder})",
            )
        tag = raw["tag"]
        # Real values come at build time; these show now that the template can make a valid tag at all.
        sample = {"git_sha": "0" * 40, "git_short_sha": "0" * 7, "run_number": "1", "env": self.env or "env"}
        try:
            _render(tag, sample)
        except ValueError as e:
            fix = _TAG_RULES if "Docker tag" in str(e) else None
            cause = str(e)
            written = self.src.written.get(layered.origin((*at, "tag")) or (*at, "tag"))
            if written is not None:
                # The cause quotes the expanded text.
                cause, fix = f"{written!r} does not make one once expanded", f"{_TAG_RULES}; placeholders: {_KNOWN}"
            raise self._error(layered, (*at, "tag"), f"invalid tag template: {cause}", fix=fix) from None
        return ImageSpec(
            container=raw["container"],
            repository=raw["repository"],
            context=context,
            dockerfile=dockerfile,
            platform=_platforms(raw["platform"]),
            build_args={k: _build_arg(v) for k, v in raw["build_args"].items()},
            target=raw.get("target"),
            tag=tag,
            secrets=tuple(self._secret(layered, (*at, "secrets", j), s) for j, s in enumerate(raw["secrets"])),
            cache_from=tuple(self._cache(layered, (*at, "cache_from", j), c) for j, c in enumerate(raw["cache_from"])),
            cache_to=tuple(self._cache(layered, (*at, "cache_to", j), c) for j, c in enumerate(raw["cache_to"])),
        )

    def _cache(self, layered: _Layered, at: KeyPath, raw: str | Mapping[str, Any]) -> CacheEntry:
        where = _fmt(layered.origin(at) or at)
        if isinstance(raw, str):
            return CacheEntry("image", where, ref=raw)
        kind = raw["type"]
        allowed = _CACHE_SETTINGS[kind]
        for key in ("ref", "scope", "mode"):
            if key in raw and key not in allowed:
                takes = f"takes only {', '.join(allowed)}" if allowed else "takes no settings"
                raise self._error(
                    layered, (*at, key), f"cache type {kind!r} {takes}", fix=f"remove `{key}:` from this entry"
                )
        if kind == "registry" and "ref" not in raw:
            raise self._error(
                layered,
                (*at, "ref"),
                "required: cache type 'registry' needs the image that holds the cache",
                fix="add `ref:`, e.g. ref: REPOSITORY:buildcache",
            )
        return CacheEntry(kind, where, ref=raw.get("ref"), scope=raw.get("scope"), mode=raw.get("mode"))

    def _secret(self, layered: _Layered, at: KeyPath, raw: Mapping[str, Any]) -> BuildSecret:
        if ("env" in raw) == ("file" in raw):
            raise self._error(
                layered,
                at,
                f"build secret {raw['id']!r} needs exactly one of `env` or `file`",
                fix="write `env: VARIABLE` to take the value from the environment, or `file: path` for a file",
            )
        if "env" in raw:
            return BuildSecret(raw["id"], env=raw["env"])
        path = self._inside(layered, (*at, "file"), self.folder / raw["file"], "build secret file")
        if not path.is_file():
            raise self._error(
                layered,
                (*at, "file"),
                f"build secret file {path} {'is not a file' if path.exists() else 'does not exist'}",
                fix=f"the path is relative to the spec file's folder ({self.folder})",
            )
        return BuildSecret(raw["id"], file=path)

    def _task_definition(self, layered: _Layered, value: Any, entry: KeyPath) -> TaskDefinitionSource:
        if value is None:
            return TaskDefinitionSource("current")
        if isinstance(value, dict):
            return TaskDefinitionSource("inline", document=copy.deepcopy(value))
        path = self._inside(layered, ("task_definition",), self.folder / value, "task definition file", entry)
        if path not in self.task_definitions:
            if not path.is_file():
                raise self._error(
                    layered,
                    ("task_definition",),
                    f"task definition file {path} {'is not a file' if path.exists() else 'does not exist'}",
                    fix=f"the path is relative to the spec file's folder ({self.folder})",
                    entry=entry,
                )
            self.task_definitions[path] = _read_task_definition(path)
        return TaskDefinitionSource("file", path=path, document=copy.deepcopy(self.task_definitions[path]))

    def _inside(self, layered: _Layered, at: KeyPath, path: Path, what: str, entry: KeyPath = ()) -> Path:
        """``path`` with symlinks resolved, if the workspace allows it."""
        refused = self.workspace.refused(path)
        if refused is not None:
            shown = self._shown(layered, at, str(refused), entry)
            raise self._error(
                layered,
                at,
                f"{what} {shown} is outside the workspace {self.workspace.root}",
                fix=self.workspace.fix,
                entry=entry,
            )
        return path.resolve()

    def _check_unique(self, services: list[ServiceSpec], layers: list[_Layered]) -> None:
        for j, (b, layered) in enumerate(zip(services, layers, strict=True)):
            at = ("services", j)
            for i, a in enumerate(services[:j]):
                if a.region == b.region and _same_name(a.cluster, b.cluster) and _same_name(a.service, b.service):
                    cluster = self._shown(layered, ("cluster",), repr(b.cluster), at)
                    service = self._shown(layered, ("service",), repr(b.service), at)
                    raise self.src.error(
                        at,
                        f"deploys the same service as services[{i}] (cluster {cluster}, service {service})",
                        fix="each entry needs its own cluster/service pair; remove the duplicate",
                    )
                if a.name == b.name:
                    name = self._shown(layered, ("name" if "name" in layered.data else "service",), repr(b.name), at)
                    raise self.src.error(
                        at,
                        f"has the same name as services[{i}] ({name})",
                        fix="set a distinct `name:` on one of them",
                    )


def _workspace_root(folder: Path, environ: Mapping[str, str]) -> Path:
    given = environ.get("GITHUB_WORKSPACE")
    if given:
        return Path(given).resolve()
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return folder  # no git: the folder is all there is
    found = top.stdout.strip()
    return Path(found).resolve() if top.returncode == 0 and found else folder


_TOO_DEEP = object()

# The distribution spec's grammar for an image name (the Docker CLI, registries and ECR all follow it).
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?"
)
_REPOSITORY_RULES = (
    "a repository is an optional registry host (and :port), then /-separated parts of lowercase letters and "
    "digits, with '.', '_', '__' or dashes only between them; 255 characters at most, e.g. "
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app or ghcr.io/owner/app"
)


def repository_problem(repository: str) -> str | None:
    """Why a registry would refuse `repository` as an image name, or None."""
    first, _, rest = repository.partition("/")
    host = bool(rest) and ("." in first or ":" in first or first == "localhost")
    if host and not _DOMAIN.fullmatch(first):
        return f"the registry host {first!r} is not a host name (and port)"
    path = rest if host else repository
    if not path:
        return "it names a registry but no repository in it"
    if len(path) > 255:
        return f"the name is {len(path)} characters long"
    for part in path.split("/"):
        if not _COMPONENT.fullmatch(part):
            return f"the part {part!r} is not lowercase letters and digits joined by '.', '_', '__' or '-'"
    return None


def _read_task_definition(path: Path) -> Mapping[str, Any]:
    file = str(path)
    text = _read_text(path, file, "the task definition", fix="check `task_definition:` in the spec")
    document: Any
    if path.suffix == ".json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"failed to parse the task definition: {e.msg}", file=file, line=e.lineno) from None
        except RecursionError:
            document = _TOO_DEEP  # deeper than the parser goes: refused below like any past MAX_DEPTH
        if document is _TOO_DEEP or nesting(document) > MAX_DEPTH:
            raise SpecError(
                f"failed to parse the task definition: values nested more than {MAX_DEPTH} levels deep",
                file=file,
                fix="use the output of `aws ecs describe-task-definition` or its taskDefinition object",
            )
        line: int | None = 1
    else:
        src = _parse_yaml(text, file, "the task definition")
        document, line = src.data, src.line(())
    if not isinstance(document, dict):
        raise SpecError(
            f"the task definition must be a mapping (a JSON object), got {_describe(document)}",
            file=file,
            line=line,
            fix="use the output of `aws ecs describe-task-definition` or its taskDefinition object",
        )
    return document


def _minutes(value: float | None) -> int | None:
    """The schema allows 5.0 for 5; ECS takes whole minutes."""
    return None if value is None else int(value)
