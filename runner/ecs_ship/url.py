"""The service's public URL, from its load balancer's listeners and rules (pure).

A production ALB seldom forwards its HTTPS listener's default action to the service: it redirects HTTP to
HTTPS, answers unknown hosts with a fixed response, and forwards by host-header / path-pattern rules with a
certificate for the user's own domain, never for the ALB's DNS name. So the URL is the route that reaches the
service's target group:

* every listener rule (the default action included) whose forward sends traffic to the group (a
  ``TargetGroupArn``, or a ``ForwardConfig`` entry with weight above 0) is a route;
* HTTPS routes come before HTTP ones; then routes naming a host outright (a ``host-header`` value without
  wildcards: that name, not the ALB's DNS name, is the one the certificate and the rule answer to); then the
  default action before path rules; then lower rule priority;
* the host is that rule host, else the ALB's DNS name; a ``path-pattern`` value becomes a path prefix: the part
  before its first wildcard, trimmed so the smoke check's path appended to it still matches the pattern;
* the port is left out when it is the scheme's default.

``load_balancer.url`` in the spec overrides all of this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_WILDCARDS = "*?"
_CONFIG_KEY = {"host-header": "HostHeaderConfig", "path-pattern": "PathPatternConfig"}


def forwards_to(actions: Sequence[Mapping[str, Any]], target_group_arn: str) -> bool:
    for action in actions:
        if action.get("Type", "forward") != "forward":
            continue
        if action.get("TargetGroupArn") == target_group_arn:
            return True
        for group in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            if group.get("TargetGroupArn") == target_group_arn and int(group.get("Weight", 1)) > 0:
                return True
    return False


def condition_values(conditions: Sequence[Mapping[str, Any]], field: str) -> list[str]:
    out: list[str] = []
    for condition in conditions:
        if condition.get("Field") == field:
            config = condition.get(_CONFIG_KEY[field]) or {}
            out += [str(v) for v in (config.get("Values") or condition.get("Values") or [])]
    return out


def path_prefix(pattern: str) -> str:
    """``/api/*`` -> ``/api``; ``/api*`` -> ``/api``; ``/v?/x`` -> ``""`` (a ``?`` stands for one character,
    which a prefix cannot supply: back to the last whole segment); no wildcard -> the path itself."""
    cut = min((pattern.find(c) for c in _WILDCARDS if c in pattern), default=-1)
    if cut < 0:
        return pattern.rstrip("/")
    prefix = pattern[:cut]
    if pattern[cut] == "?":
        prefix = prefix[: prefix.rfind("/") + 1] if "/" in prefix else ""
    return prefix.rstrip("/")


@dataclass(frozen=True)
class Route:
    protocol: str
    port: int
    host: str | None  # a rule host, or None for the load balancer's DNS name
    path: str
    priority: int | None  # None: the listener's default action
    wildcard_host: bool  # the rule matches host names only by wildcard: no URL can name one for sure

    def rank(self) -> tuple[bool, bool, bool, bool, int]:
        return (
            self.protocol != "HTTPS",
            self.wildcard_host,
            self.host is None,
            self.priority is not None,
            self.priority or 0,
        )

    def url(self, dns_name: str) -> str:
        scheme = "https" if self.protocol == "HTTPS" else "http"
        default = 443 if scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{scheme}://{self.host or dns_name}{port}{self.path}"


def routes(
    listeners: Sequence[Mapping[str, Any]],
    rules: Mapping[str, Sequence[Mapping[str, Any]]],
    target_group_arn: str,
) -> list[Route]:
    """Every route to the group, best first. ``rules`` maps a listener ARN to its DescribeRules answer; a
    listener missing from it is judged by its default actions alone."""
    found: list[Route] = []
    for listener in listeners:
        protocol = str(listener.get("Protocol", "HTTP")).upper()
        port = int(listener.get("Port", 443 if protocol == "HTTPS" else 80))
        listener_rules = rules.get(str(listener.get("ListenerArn")))
        if listener_rules is None:
            listener_rules = [{"IsDefault": True, "Conditions": [], "Actions": listener.get("DefaultActions", [])}]
        for rule in listener_rules:
            if not forwards_to(rule.get("Actions") or [], target_group_arn):
                continue
            default = bool(rule.get("IsDefault")) or rule.get("Priority") == "default"
            conditions = rule.get("Conditions") or []
            hosts = condition_values(conditions, "host-header")
            named = [h for h in hosts if not any(c in h for c in _WILDCARDS)]
            paths = condition_values(conditions, "path-pattern")
            found.append(
                Route(
                    protocol=protocol,
                    port=port,
                    host=named[0].lower() if named else None,
                    path=path_prefix(paths[0]) if paths else "",
                    priority=None if default else int(rule.get("Priority") or 0),
                    wildcard_host=bool(hosts) and not named,
                )
            )
    return sorted(found, key=Route.rank)


def service_url(
    dns_name: str,
    listeners: Sequence[Mapping[str, Any]],
    rules: Mapping[str, Sequence[Mapping[str, Any]]],
    target_group_arn: str,
) -> str | None:
    """The best route's URL; None when no listener reaches the group."""
    found = routes(listeners, rules, target_group_arn)
    return found[0].url(dns_name) if found else None
