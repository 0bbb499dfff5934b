"""Load and check the deploy spec (ecs-ship.yml) into frozen dataclasses.

schema/ecs-ship.schema.json is the one description of the spec's keys, types and defaults: editors validate with
it, and load_spec validates with a small validator for exactly the JSON Schema subset it uses, then fills in its
defaults. Every error names the file, the line and the key path where the offending value was written, also when
it reached a service through an environment overlay or a `services` entry.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeAlias

import yaml

from .errors import SpecError

__all__ = [
    "PLACEHOLDERS",
    "ImageSpec",
    "LoadBalancerSpec",
    "ServiceSpec",
    "SmokeSpec",
    "Spec",
    "TaskDefinitionSource",
    "WaitSpec",
    "Workspace",
    "load_spec",
    "render_tag",
    "spec_schema",
]

PLACEHOLDERS = ("git_sha", "git_short_sha", "run_number", "env")

KeyPath: TypeAlias = tuple[str | int, ...]

# ---------------------------------------------------------------------------------------------------------------------
# the result
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSpec:
    container: str
    repository: str
    context: Path  # absolute
    dockerfile: Path  # absolute
    platform: str
    build_args: Mapping[str, str] = field(hash=False)
    target: str | None
    tag: str  # a template: see render_tag


@dataclass(frozen=True)
class TaskDefinitionSource:
    """Where the base task definition comes from. ``document`` is the file's or the inline mapping's content as
    written (possibly `describe-task-definition` output); it belongs to this object: copy it before changing it."""

    kind: Literal["file", "inline", "current"]
    path: Path | None = None
    document: Mapping[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class LoadBalancerSpec:
    health_check_path: str | None
    apply_health_check_path: bool


@dataclass(frozen=True)
class WaitSpec:
    until: Literal["serving", "stable"]
    timeout: float
    poll_interval: float


@dataclass(frozen=True)
class SmokeSpec:
    path: str
    expect_status: int
    contains: str | None
    timeout: float


@dataclass(frozen=True)
class Workspace:
    """The folder the files a spec names must be in (build contexts, Dockerfiles, task definition files, and
    run-local's --env-file): $GITHUB_WORKSPACE when set, else the git work tree holding the spec, else its folder.
    A spec from a pull request must not send /home or ../../etc to a build or a log."""

    root: Path  # absolute, symlinks resolved
    allow_outside: bool  # the spec's allow_paths_outside_workspace

    def refused(self, path: Path) -> Path | None:
        """``path`` with symlinks resolved when it lies outside the workspace and that is not allowed, else None."""
        resolved = path.resolve()
        return None if self.allow_outside or resolved.is_relative_to(self.root) else resolved

    @property
    def fix(self) -> str:
        return f"move it inside {self.root}, or set `allow_paths_outside_workspace: true` at the top level of the spec"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    region: str | None
    cluster: str
    service: str
    images: tuple[ImageSpec, ...]
    task_definition: TaskDefinitionSource
    load_balancer: LoadBalancerSpec
    wait: WaitSpec
    on_failure: Literal["rollback", "stop"]
    allow_host_volumes: bool
    smoke: SmokeSpec | None
    # None only for a ServiceSpec built by hand rather than by load_spec: then there is no spec to confine to.
    workspace: Workspace | None = None


@dataclass(frozen=True)
class Spec:
    path: Path  # absolute
    env: str | None
    services: tuple[ServiceSpec, ...]

    def service(self, name: str) -> ServiceSpec:
        """The service labelled ``name``; a SpecError listing the labels when there is none."""
        for s in self.services:
            if s.name == name:
                return s
        names = [s.name for s in self.services]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(
            f"no service named {name!r} in the spec{hint}; it has: {', '.join(names)}",
            file=str(self.path),
            fix="pass one of those names, or set `name:` on the services entry",
        )


# ---------------------------------------------------------------------------------------------------------------------
# tags
# ---------------------------------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# https://docs.docker.com/reference/cli/docker/image/tag/
_DOCKER_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_KNOWN = ", ".join("{" + p + "}" for p in PLACEHOLDERS)


_TAG_RULES = "a tag is 1 to 128 letters, digits, '_', '.' and '-', and does not start with '.' or '-'"


def _placeholders(template: str) -> list[str]:
    names = _PLACEHOLDER.findall(template)
    rest = _PLACEHOLDER.sub("", template)
    if "{" in rest or "}" in rest:
        raise ValueError("it has an unmatched { or }")
    for name in names:
        if name not in PLACEHOLDERS:
            close = difflib.get_close_matches(name, PLACEHOLDERS, n=1)
            hint = f"did you mean {{{close[0]}}}? " if close else ""
            raise ValueError(f"unknown placeholder {{{name}}} ({hint}known: {_KNOWN})")
    return names


def _render(template: str, values: Mapping[str, str]) -> str:
    missing = [n for n in _placeholders(template) if n not in values]
    if missing:
        raise ValueError("no value for " + ", ".join("{" + n + "}" for n in missing))
    tag = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    if not _DOCKER_TAG.fullmatch(tag):
        raise ValueError(f"{tag!r} is not a valid Docker tag")
    return tag


def render_tag(template: str, values: Mapping[str, str]) -> str:
    """Fill the placeholders of an image tag template (see PLACEHOLDERS) and check the result is a Docker tag."""
    try:
        return _render(template, values)
    except ValueError as e:
        fix = _TAG_RULES if "Docker tag" in str(e) else None
        raise SpecError(f"failed to render tag {template!r}: {e}", fix=fix) from None


# ---------------------------------------------------------------------------------------------------------------------
# YAML with line numbers
# ---------------------------------------------------------------------------------------------------------------------


def _fmt(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass
class _Source:
    """A parsed YAML document, with the line where each value and each mapping key was written."""

    file: str
    data: Any = None
    lines: dict[KeyPath, int] = field(default_factory=dict)
    key_lines: dict[KeyPath, int] = field(default_factory=dict)
    written: dict[KeyPath, str] = field(default_factory=dict)  # the text of values that had ${...} references

    def line(self, path: KeyPath, *, key: bool = False) -> int | None:
        if key and path in self.key_lines:
            return self.key_lines[path]
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)

    def error(self, path: KeyPath, message: str, *, fix: str | None = None, key: bool = False) -> SpecError:
        return SpecError(message, key_path=_fmt(path) or None, file=self.file, line=self.line(path, key=key), fix=fix)

    # An error message quotes a value as written in the file, never what its ${...} references expanded to: the
    # environment holds things that must not reach a log, and the text as written is what the user can find.
    def shown(self, path: KeyPath, text: str) -> str:
        """``text`` (the value at ``path``, formatted for a message), or the value as written if it was expanded."""
        written = self.written.get(path)
        return text if written is None else repr(written)

    def describe(self, path: KeyPath, value: Any) -> str:
        written = self.written.get(path)
        return _describe(value) if written is None else f"{_kind(value)} written as {written!r}"


_REFERENCE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)\}|\$\{")
_REFERENCE_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>.*))?", re.DOTALL)


# Names of variables that hold credentials by convention. Spec values end up in logs, step summaries, error
# messages and task definitions, so a spec must not pull them in.
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|_KEY$", re.IGNORECASE)


class _Secret(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _Unset(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _expand(text: str, environ: Mapping[str, str]) -> str:
    """${NAME}, ${NAME:-default} (unset or empty), ${NAME-default} (unset) and $$ for a literal $, as in Compose."""

    def replace(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        body = m.group("body")
        if body is None:
            raise ValueError("unclosed ${ (a reference reads ${NAME} or ${NAME:-default})")
        ref = _REFERENCE_BODY.fullmatch(body)
        if ref is None:
            raise ValueError(f"invalid reference ${{{body}}} (a reference reads ${{NAME}} or ${{NAME:-default}})")
        if _SECRET_NAME.search(ref["name"]):
            raise _Secret(ref["name"])
        value = environ.get(ref["name"])
        if (ref["op"] == ":-" and not value) or (ref["op"] == "-" and value is None):
            return ref["default"]
        if value is None:
            raise _Unset(ref["name"])
        return value

    return _REFERENCE.sub(replace, text)


# A spec is a few hundred lines. The caps keep a hostile one (aliases of aliases double the data at every line)
# from taking minutes and gigabytes: aliases and nodes are counted while the tree is built, not afterwards.
MAX_SPEC_BYTES = 1024 * 1024
MAX_ALIASES = 1000
MAX_NODES = 100_000

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _CountingLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a document with more than MAX_ALIASES aliases while composing it."""

    def __init__(self, text: str, file: str, what: str) -> None:
        super().__init__(text)
        self.file = file
        self.what = what
        self.aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                peek: Callable[[], yaml.Event] = self.peek_event
                mark = peek().start_mark
                raise SpecError(
                    f"failed to parse {self.what}: more than {MAX_ALIASES} aliases (*name)",
                    file=self.file,
                    line=mark.line + 1 if mark else None,
                    fix="write the values out, or share them with fewer aliases",
                )
        node: yaml.Node | None = super().compose_node(parent, index)
        return node


class _Builder:
    """Turns composed YAML nodes into plain Python values, recording lines on the way.

    Built by hand rather than by the constructor, because PyYAML keeps the last of duplicate keys silently and
    forgets where each value came from.
    """

    def __init__(self, loader: _CountingLoader, src: _Source, environ: Mapping[str, str] | None) -> None:
        self.loader = loader
        self.src = src
        self.environ = environ
        self.open: set[int] = set()
        self.flattened: set[int] = set()
        self.nodes = 0

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.src.lines[path] = node.start_mark.line + 1
        self.nodes += 1
        if self.nodes > MAX_NODES:
            # No key path: in a bomb it is hundreds of indexes deep.
            raise SpecError(
                f"failed to parse {self.loader.what}: more than {MAX_NODES:,} values once aliases (*name) are expanded",
                file=self.src.file,
                line=node.start_mark.line + 1,
                fix="write the values out, or use fewer aliases of aliases",
            )
        if isinstance(node, yaml.ScalarNode):
            # An inline task definition is kept as written, like a file: its commands may use ${...} for the shell.
            if self.environ is not None and "$" in node.value and "task_definition" not in path:
                node = self._expanded(node, path)
            return self.loader.construct_object(node, deep=True)
        if id(node) in self.open:
            raise self.src.error(path, "an alias refers to the mapping or list that contains it")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                self._check_tag(node, _SEQ_TAG, path)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                self._check_tag(node, _MAP_TAG, path)
                return self._mapping(node, path)
        finally:
            self.open.discard(id(node))
        raise self.src.error(path, f"unsupported YAML node {type(node).__name__}")

    def _expanded(self, node: yaml.ScalarNode, path: KeyPath) -> yaml.ScalarNode:
        assert self.environ is not None
        try:
            text = _expand(node.value, self.environ)
        except _Secret as e:
            raise self.src.error(
                path,
                f"failed to expand ${{{e.name}}}: the name looks like a secret's, and spec values are shown in logs",
                fix="pass secrets to the task through the task definition's `secrets:` (valueFrom a Secrets Manager "
                "secret or SSM parameter ARN); for registry credentials set ECS_SHIP_REGISTRY_USERNAME and "
                "ECS_SHIP_REGISTRY_PASSWORD, which ecs-ship reads itself",
            ) from None
        except _Unset as e:
            raise self.src.error(
                path,
                f"environment variable {e.name} is not set",
                fix=f"set {e.name} in the environment, or give a default: ${{{e.name}:-value}}",
            ) from None
        except ValueError as e:
            raise self.src.error(path, str(e), fix="write $$ for a literal $") from None
        self.src.written[path] = node.value
        tag = node.tag
        resolve: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = self.loader.resolve
        if node.style is None and tag == resolve(yaml.ScalarNode, node.value, (True, False)):
            # Unquoted, `timeout: ${TIMEOUT}` is a number, as if the value had been written in its place.
            tag = resolve(yaml.ScalarNode, text, (True, False))
        return yaml.ScalarNode(tag, text, node.start_mark, node.end_mark, node.style)

    def _check_tag(self, node: yaml.Node, tag: str, path: KeyPath) -> None:
        if node.tag != tag:
            raise self.src.error(path, f"unsupported YAML tag {node.tag}")

    def _key(self, node: yaml.Node, path: KeyPath) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise SpecError(
                "keys must be plain text, not mappings or lists",
                key_path=_fmt(path) or None,
                file=self.src.file,
                line=node.start_mark.line + 1,
            )
        key = self.loader.construct_object(node)
        if not isinstance(key, str):
            raise SpecError(
                f"keys must be text, got {key!r}",
                key_path=_fmt(path) or None,
                file=self.src.file,
                line=node.start_mark.line + 1,
                fix="quote the key" if isinstance(key, bool | int | float) else None,
            )
        return key

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        if id(node) not in self.flattened:
            # Checked before merge keys (<<) are expanded: a key written once that overrides a merged one is fine.
            first: dict[str, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self._key(key_node, path)
                line = key_node.start_mark.line + 1
                if key in first:
                    raise SpecError(
                        f"duplicate key (first written at line {first[key]})",
                        key_path=_fmt((*path, key)),
                        file=self.src.file,
                        line=line,
                        fix="keep one of them: YAML would silently use the last one",
                    )
                first[key] = line
            self.loader.flatten_mapping(node)
            self.flattened.add(id(node))
        winners: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            # flatten_mapping puts merged pairs first, so an explicit key overrides them.
            winners[self._key(key_node, path)] = (key_node, value_node)
        out: dict[str, Any] = {}
        for key, (key_node, value_node) in winners.items():
            self.src.key_lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*path, key))
        return out


def _parse_yaml(text: str, file: str, what: str, environ: Mapping[str, str] | None = None) -> _Source:
    src = _Source(file)
    try:
        loader = _CountingLoader(text, file, what)
    except yaml.reader.ReaderError as e:
        raise SpecError(
            f"failed to parse {what}: character #x{e.character:04x} is not allowed in YAML",
            file=file,
            line=text.count("\n", 0, e.position) + 1,
        ) from None
    try:
        node = loader.get_single_node()
        if node is not None:
            src.data = _Builder(loader, src, environ).build(node, ())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        cause = e.problem or e.context or "invalid YAML"
        if e.problem and e.context:
            at = f" at line {e.context_mark.line + 1}" if e.context_mark and e.context_mark is not mark else ""
            cause += f" ({e.context}{at})"
        raise SpecError(f"failed to parse {what}: {cause}", file=file, line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as e:
        raise SpecError(f"failed to parse {what}: {e}", file=file) from None
    finally:
        loader.dispose()
    return src


# ---------------------------------------------------------------------------------------------------------------------
# the schema and its validator
# ---------------------------------------------------------------------------------------------------------------------

_SCHEMA_FILE = "schema/ecs-ship.schema.json"
# The validator implements these keywords; the others in the schema are annotations for editors and for the loader
# (default). tests/unit/test_spec.py keeps the schema within this list.
VALIDATION_KEYWORDS = frozenset(
    {"$ref", "type", "const", "enum", "pattern", "minimum", "maximum", "exclusiveMinimum"}
    | {"properties", "additionalProperties", "required", "items", "minItems"}
)
ANNOTATION_KEYWORDS = frozenset({"$schema", "$defs", "title", "description", "default", "patternErrorMessage"})


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("ecs_ship").joinpath(_SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of the spec (a copy), e.g. for `ecs-ship schema` or an editor's settings."""
    return copy.deepcopy(_schema())


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise ValueError(f"unsupported $ref {ref!r} in {_SCHEMA_FILE}")
        target: Any = _schema()
        for part in ref[2:].split("/"):
            target = target[part]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **siblings}
    return node


def _def(name: str) -> Mapping[str, Any]:
    defs: Mapping[str, Any] = _schema()["$defs"]
    return _resolve(defs[name])


_TYPE_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}


def _expected(kinds: list[str]) -> str:
    if kinds == ["boolean"]:
        return "true or false"
    names = [_TYPE_NAMES[k] for k in kinds]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _is(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if kind == "integer":
        return isinstance(value, int) or value.is_integer()
    if kind == "number":
        return math.isfinite(value)
    raise ValueError(f"unsupported type {kind!r} in {_SCHEMA_FILE}")


def _num(x: float) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _kind(value: Any) -> str:
    kinds = {type(None): "nothing (null)", bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    kinds |= {dict: "a mapping", list: "a list"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def _describe(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return _kind(value)
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} (not a finite number)"
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, float):
        shown = _num(value)
    elif isinstance(value, str):
        shown = repr(value if len(value) <= 60 else value[:57] + "...")
    else:
        shown = repr(value)
    return f"{_kind(value)} ({shown})"


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python, not in JSON Schema.
    return type(a) is type(b) and bool(a == b)


def _type_fix(value: Any, kinds: list[str]) -> str | None:
    if "string" in kinds and isinstance(value, dict) and len(value) == 1 and next(iter(value.values())) is None:
        return 'quote the value: unquoted, YAML reads {...} as a mapping, e.g. tag: "{git_sha}"'
    if isinstance(value, str) and ("number" in kinds or "integer" in kinds):
        try:
            float(value)
        except ValueError:
            return None
        return "write the number without quotes"
    if isinstance(value, str) and "boolean" in kinds and value.lower() in ("true", "false"):
        return "write true or false without quotes"
    if value is None:
        return "give it a value, or delete the key"
    return None


class _Validator:
    def __init__(self, src: _Source) -> None:
        self.src = src
        self.root = _schema()

    def check(self, value: Any, node: Mapping[str, Any], path: KeyPath) -> None:
        node = _resolve(node)
        unknown = set(node) - VALIDATION_KEYWORDS - ANNOTATION_KEYWORDS
        if unknown:
            raise ValueError(f"unsupported keywords {sorted(unknown)} in {_SCHEMA_FILE}")
        if "type" in node:
            kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
            if not any(_is(value, k) for k in kinds):
                raise self.src.error(
                    path,
                    f"expected {_expected(kinds)}, got {self.src.describe(path, value)}",
                    fix=_type_fix(value, kinds),
                )
        if "const" in node and not _same(value, node["const"]):
            raise self.src.error(path, f"expected {node['const']!r}, got {self.src.describe(path, value)}")
        if "enum" in node and not any(_same(value, e) for e in node["enum"]):
            options = ", ".join(repr(e) for e in node["enum"])
            hint = ""
            if isinstance(value, str):
                close = difflib.get_close_matches(value, [str(e) for e in node["enum"]], n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.src.error(path, f"expected one of {options}, got {self.src.shown(path, repr(value))}{hint}")
        if isinstance(value, str) and "pattern" in node and not re.search(node["pattern"], value):
            why = node.get("patternErrorMessage") or f"must match {node['pattern']}"
            raise self.src.error(path, f"{why}, got {self.src.shown(path, repr(value))}")
        if _is(value, "number"):
            self._bounds(value, node, path)
        if isinstance(value, dict):
            self._object(value, node, path)
        if isinstance(value, list):
            if len(value) < node.get("minItems", 0):
                n = node["minItems"]
                raise self.src.error(path, f"must have at least {n} entr{'y' if n == 1 else 'ies'}")
            if "items" in node:
                for i, item in enumerate(value):
                    self.check(item, node["items"], (*path, i))

    def _bounds(self, value: float, node: Mapping[str, Any], path: KeyPath) -> None:
        got = self.src.shown(path, _num(value))
        if "minimum" in node and value < node["minimum"]:
            raise self.src.error(path, f"must be at least {_num(node['minimum'])}, got {got}")
        if "exclusiveMinimum" in node and value <= node["exclusiveMinimum"]:
            raise self.src.error(path, f"must be greater than {_num(node['exclusiveMinimum'])}, got {got}")
        if "maximum" in node and value > node["maximum"]:
            raise self.src.error(path, f"must be at most {_num(node['maximum'])}, got {got}")

    def _object(self, value: dict[str, Any], node: Mapping[str, Any], path: KeyPath) -> None:
        props: Mapping[str, Any] = node.get("properties", {})
        extra = node.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                self.check(item, props[key], (*path, key))
            elif extra is False:
                raise self.src.error((*path, key), f"unknown key ({self._hint(key, props, path)})", key=True)
            elif isinstance(extra, Mapping):
                self.check(item, extra, (*path, key))
        for key in node.get("required", []):
            if key not in value:
                title = _resolve(props[key]).get("title", key) if key in props else key
                where = f"under {_fmt(path)}" if path else "at the top level of the spec"
                raise self.src.error((*path, key), "required", fix=f"add `{key}:` ({title}) {where}")

    def _hint(self, key: str, props: Mapping[str, Any], path: KeyPath) -> str:
        homes = []
        for name, sub in props.items():
            sub = _resolve(sub)
            inner = _resolve(sub["items"]) if "items" in sub else sub
            if key in inner.get("properties", {}):
                homes.append(f"an entry of {name!r}" if "items" in sub else repr(name))
        if homes:
            return f"{key!r} goes under {' or '.join(homes)}"
        if path and key in self.root["properties"]:
            return f"{key!r} is only allowed at the top level of the spec"
        if key in _def("service_entry")["properties"]:
            return f"{key!r} is only allowed in an entry of 'services'"
        close = difflib.get_close_matches(key, list(props), n=1)
        if close:
            return f"did you mean {close[0]!r}?"
        return "valid keys: " + ", ".join(props)


def _with_defaults(value: Any, node: Mapping[str, Any]) -> Any:
    node = _resolve(node)
    if isinstance(value, dict) and "properties" in node:
        out = dict(value)
        for key, sub in node["properties"].items():
            sub = _resolve(sub)
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = _with_defaults(out[key], sub)
        return out
    if isinstance(value, list) and "items" in node:
        return [_with_defaults(item, node["items"]) for item in value]
    return value


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
        root = _schema()
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
        smoke = s["smoke"]
        if smoke is True:
            smoke = _with_defaults({}, _def("smoke"))
        return ServiceSpec(
            name=s.get("name", s["service"]),
            region=s.get("region"),
            cluster=s["cluster"],
            service=s["service"],
            images=tuple(images),
            task_definition=self._task_definition(layered, s.get("task_definition"), entry),
            load_balancer=LoadBalancerSpec(lb.get("health_check_path"), lb["apply_health_check_path"]),
            wait=WaitSpec(wait["until"], float(wait["timeout"]), float(wait["poll_interval"])),
            on_failure=s["on_failure"],
            allow_host_volumes=s["allow_host_volumes"],
            workspace=self.workspace,
            smoke=SmokeSpec(smoke["path"], int(smoke["expect_status"]), smoke.get("contains"), float(smoke["timeout"]))
            if smoke
            else None,
        )

    def _missing(self, key: str, entry: KeyPath) -> SpecError:
        title = _def(key)["title"]
        places = [f"in {_fmt(entry)}", "at the top level (shared by every service)"] if entry else ["at the top level"]
        if self.env is not None:
            places.append(f"under environments.{self.env}")
        return self.src.error((*entry, key), "required", fix=f"set `{key}:` ({title}) " + ", or ".join(places))

    def _image(self, layered: _Layered, i: int, raw: Mapping[str, Any]) -> ImageSpec:
        at = ("images", i)
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
            platform=raw["platform"],
            build_args={k: _build_arg(v) for k, v in raw["build_args"].items()},
            target=raw.get("target"),
            tag=tag,
        )

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


def _read_task_definition(path: Path) -> Mapping[str, Any]:
    file = str(path)
    text = _read_text(path, file, "the task definition", fix="check `task_definition:` in the spec")
    document: Any
    if path.suffix == ".json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"failed to parse the task definition: {e.msg}", file=file, line=e.lineno) from None
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
