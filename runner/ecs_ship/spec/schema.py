"""The JSON Schema (schema/ecs-ship.schema.json) and a validator for exactly the subset of it the spec uses;
its defaults are the only defaults."""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from .model import KeyPath
from .source import _fmt, _num, _Source

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
