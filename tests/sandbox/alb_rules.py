"""How an Application Load Balancer picks what to do with a request (pure; the proxy applies the answer).

From the ELBv2 user guide and API reference: a listener's rules are evaluated in priority order, lowest
first, and the default rule last; a rule matches when all its conditions match, a condition when any of its
values matches. ``host-header`` compares the request's host name (without port) case-insensitively,
``path-pattern`` the path without the query string case-sensitively; both take ``*`` (any characters,
including none) and ``?`` (exactly one). Values may be given as ``Values`` or as ``HostHeaderConfig`` /
``PathPatternConfig``. Conditions on other fields are not simulated and never match, so such a rule is
skipped rather than answered wrongly.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

_CONFIG_KEY = {"host-header": "HostHeaderConfig", "path-pattern": "PathPatternConfig"}


def wildcard(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def condition_values(condition: Mapping[str, Any]) -> list[str]:
    field = str(condition.get("Field", ""))
    config = condition.get(_CONFIG_KEY.get(field, "")) or {}
    return [str(v) for v in (config.get("Values") or condition.get("Values") or [])]


def condition_matches(condition: Mapping[str, Any], host: str, path: str) -> bool:
    field = condition.get("Field")
    if field == "host-header":
        value, ignore_case = host, True
    elif field == "path-pattern":
        value, ignore_case = path, False
    else:
        return False
    return any(wildcard(v, ignore_case=ignore_case).fullmatch(value) for v in condition_values(condition))


def host_name(host_header: str) -> str:
    """``Host: app.example.test:8443`` names the host app.example.test."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def choose(rules: Sequence[Any], host: str, path: str) -> list[dict[str, Any]]:
    """The actions of the first rule (by priority, the default rule last) whose conditions all match."""
    ordered = sorted(rules, key=lambda r: (r.priority is None, r.priority or 0))
    for rule in ordered:
        if all(condition_matches(c, host, path) for c in rule.conditions):
            return list(rule.actions)
    return []


def final_action(actions: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The action that answers: rules may lead with authenticate actions, which the sandbox does not run."""
    for action in sorted(actions, key=lambda a: int(a.get("Order") or 0)):
        if action.get("Type") in ("forward", "redirect", "fixed-response"):
            return action
    return None


def forward_groups(action: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(target group ARN, weight) of a forward action; a group of weight 0 gets no traffic."""
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
    if groups:
        return [(str(g["TargetGroupArn"]), int(g.get("Weight", 1))) for g in groups]
    arn = action.get("TargetGroupArn")
    return [(str(arn), 1)] if arn else []


def pick_group(groups: Sequence[tuple[str, int]], rng: random.Random) -> str | None:
    weighted = [(arn, w) for arn, w in groups if w > 0]
    if not weighted:
        return None
    return rng.choices([a for a, _ in weighted], weights=[w for _, w in weighted])[0]


def redirect_location(config: Mapping[str, Any], *, protocol: str, host: str, port: int, path: str, query: str) -> str:
    """The Location of a redirect action: components not set keep their values; the reserved keywords
    #{protocol} #{host} #{port} #{path} (without its leading "/") #{query} are the request's."""
    values = {
        "#{protocol}": protocol.upper(),
        "#{host}": host,
        "#{port}": str(port),
        "#{path}": path.lstrip("/"),
        "#{query}": query,
    }

    def fill(key: str, default: str) -> str:
        text = str(config.get(key) or default)
        for keyword, value in values.items():
            text = text.replace(keyword, value)
        return text

    scheme = fill("Protocol", "#{protocol}").lower()
    new_port = fill("Port", "#{port}")
    new_host = fill("Host", "#{host}")
    new_path = fill("Path", "/#{path}")
    new_query = fill("Query", "#{query}")
    default_port = {"http": "80", "https": "443"}.get(scheme)
    netloc = new_host if new_port == default_port else f"{new_host}:{new_port}"
    return f"{scheme}://{netloc}{new_path}" + (f"?{new_query}" if new_query else "")


def redirect_status(config: Mapping[str, Any]) -> int:
    return 302 if config.get("StatusCode") == "HTTP_302" else 301


def named_hosts(rules: Sequence[Any]) -> list[str]:
    """The host names a listener's host-header rules name outright (no wildcards): the names users point at
    the load balancer in their DNS."""
    out = []
    for rule in rules:
        for condition in rule.conditions:
            if condition.get("Field") == "host-header":
                out += [v.lower() for v in condition_values(condition) if not any(c in v for c in "*?")]
    return out
