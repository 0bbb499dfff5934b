"""Image tag templates: `{git_sha}` and friends, rendered and checked against Docker's tag grammar."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from ..errors import SpecError
from .model import PLACEHOLDERS

# ---------------------------------------------------------------------------------------------------------------------
# tags
# ---------------------------------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# https://docs.docker.com/reference/cli/docker/image/tag/
DOCKER_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
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
    if not DOCKER_TAG.fullmatch(tag):
        raise ValueError(f"{tag!r} is not a valid Docker tag")
    return tag


def render_tag(template: str, values: Mapping[str, str]) -> str:
    """Fill the placeholders of an image tag template (see PLACEHOLDERS) and check the result is a Docker tag."""
    try:
        return _render(template, values)
    except ValueError as e:
        fix = _TAG_RULES if "Docker tag" in str(e) else None
        raise SpecError(f"failed to render tag {template!r}: {e}", fix=fix) from None
