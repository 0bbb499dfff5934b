"""YAML read with line numbers, `${VAR}` expansion and limits on size, aliases and nodes, so every error can
name the file, line and key path where a value was written and a hostile file cannot blow up."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import SpecError
from .model import ImageSpec, KeyPath

# ---------------------------------------------------------------------------------------------------------------------
# YAML with line numbers
# ---------------------------------------------------------------------------------------------------------------------


def _fmt(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


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


def looks_secret(name: str) -> bool:
    """Whether a variable (or build argument) name holds a credential by convention."""
    return _SECRET_NAME.search(name) is not None


def secret_like_build_args(spec: ImageSpec) -> list[str]:
    """Build args whose names say they hold a credential (they would land in the image's history)."""
    return [name for name in spec.build_args if looks_secret(name)]


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
        if looks_secret(ref["name"]):
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
# How deep mappings and lists may nest: a task definition's deepest is under ten levels. Parsers recurse per
# level, so a document nested thousands deep would end in a RecursionError rather than a message.
MAX_DEPTH = 64

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _CountingLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a document with more than MAX_ALIASES aliases, or nested deeper than MAX_DEPTH,
    while composing it."""

    def __init__(self, text: str, file: str, what: str) -> None:
        super().__init__(text)
        self.file = file
        self.what = what
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise self._refused(
                    f"more than {MAX_ALIASES} aliases (*name)", "write the values out, or share them with fewer aliases"
                )
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self._refused(
                    f"values nested more than {MAX_DEPTH} levels deep",
                    "flatten the document: no spec or task definition needs that depth",
                )
            node: yaml.Node | None = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        return node

    def _refused(self, why: str, fix: str) -> SpecError:
        """The document refused at the event about to be composed."""
        peek: Callable[[], yaml.Event] = self.peek_event
        mark = peek().start_mark
        return SpecError(
            f"failed to parse {self.what}: {why}", file=self.file, line=mark.line + 1 if mark else None, fix=fix
        )


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


def nesting(value: Any) -> int:
    """How deep mappings and lists nest in `value` (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:  # past the bound the answer is known: too deep
            stack += [(child, depth + 1) for child in children]
    return deepest
