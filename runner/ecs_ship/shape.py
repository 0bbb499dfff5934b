"""An API request checked against the shape botocore's service model gives its input, before anything is sent.

A task definition written inline in the spec or in a file reaches RegisterTaskDefinition after the image was
built and pushed: a mapping where the API takes a list, a string where it takes a number, a key it does not
know, would fail there, minutes in, or be refused by botocore's own validation with a traceback. Checked here
against the model of the installed botocore (no hand copy to fall behind the API), each problem is named by its
key path. Only types, known keys and required keys are checked: allowed values and ranges are the API's to
judge, and a model older than the API would refuse what the API accepts.
"""

from __future__ import annotations

import datetime
import difflib
from collections.abc import Iterator, Mapping
from typing import Any

_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "string": ((str,), "a string"),
    "integer": ((int,), "a whole number"),
    "long": ((int,), "a whole number"),
    "boolean": ((bool,), "true or false"),
    "float": ((int, float), "a number"),
    "double": ((int, float), "a number"),
    "timestamp": ((str, datetime.datetime, int, float), "a time"),
    "blob": ((str, bytes), "bytes"),
}


def _what(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    return "null" if value is None else type(value).__name__


def problems(value: Any, shape: Any, path: str) -> Iterator[str]:
    """Each way `value` does not fit botocore `shape`, as "path: what is wrong" (iterative depth is bounded by
    the spec loader's MAX_DEPTH, so plain recursion is safe here)."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            yield f"{path}: {_what(value)} where the API takes a mapping"
            return
        members = shape.members
        for key in value:
            if key not in members:
                close = difflib.get_close_matches(str(key), list(members), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                yield f"{_join(path, key)}: not a key the API knows{hint}"
        for key in shape.required_members:
            if key not in value:
                yield f"{_join(path, key)}: missing, and the API requires it"
        for key, member in members.items():
            if key in value and value[key] is not None:
                yield from problems(value[key], member, _join(path, key))
    elif kind == "list":
        if not isinstance(value, (list, tuple)):
            yield f"{path}: {_what(value)} where the API takes a list"
            return
        for i, item in enumerate(value):
            yield from problems(item, shape.member, f"{path}[{i}]")
    elif kind == "map":
        if not isinstance(value, Mapping):
            yield f"{path}: {_what(value)} where the API takes a mapping"
            return
        for key, item in value.items():
            yield from problems(item, shape.value, _join(path, key))
    elif kind in _TYPES:
        types, said = _TYPES[kind]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            yield f"{path}: {_what(value)} where the API takes {said}"


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)
