"""ELBv2's success-code matcher (a target group's Matcher.HttpCode): "200", "200,302", "200-299"."""

from __future__ import annotations

import re


def _ranges(matcher: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for part in re.split(r"\s*,\s*", matcher.strip()):
        low, _, high = part.partition("-")
        try:
            out.append((int(low), int(high or low)))
        except ValueError:
            continue  # not a code ELBv2 would accept either
    return out


def accepts(matcher: str, code: int) -> bool:
    """Does the matcher count an answer with this status code as healthy? An empty matcher is ELBv2's default
    for HTTP checks, 200."""
    return any(low <= code <= high for low, high in _ranges(matcher or "200"))


def accepts_errors(matcher: str) -> bool:
    """Does the matcher count a 4xx or 5xx answer as healthy (e.g. "200-499")?"""
    return any(high >= 400 for _, high in _ranges(matcher))
