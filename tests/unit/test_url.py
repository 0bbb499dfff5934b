"""The service URL from listeners and rules: which route reaches the target group, and what URL names it."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_ship.url import path_prefix, service_url

TG = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/1"
OTHER = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/other/2"
DNS = "web-1.us-east-1.elb.amazonaws.com"
FORWARD = {"Type": "forward", "TargetGroupArn": TG}
NOT_FOUND = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}
TO_HTTPS = {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}


def listener(arn: str, protocol: str, port: int, *default: dict[str, Any]) -> dict[str, Any]:
    return {"ListenerArn": arn, "Protocol": protocol, "Port": port, "DefaultActions": list(default)}


def rule(priority: int, actions: list[dict[str, Any]], **conditions: list[str]) -> dict[str, Any]:
    conds = []
    for field, values in conditions.items():
        name = field.replace("_", "-")
        key = "HostHeaderConfig" if name == "host-header" else "PathPatternConfig"
        conds.append({"Field": name, key: {"Values": values}})
    return {"Priority": str(priority), "Conditions": conds, "Actions": actions, "IsDefault": False}


def default(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"Priority": "default", "Conditions": [], "Actions": list(actions), "IsDefault": True}


def test_default_action_forwarding_on_http() -> None:
    assert service_url(DNS, [listener("l1", "HTTP", 80, FORWARD)], {}, TG) == f"http://{DNS}"
    assert service_url(DNS, [listener("l1", "HTTP", 8080, FORWARD)], {}, TG) == f"http://{DNS}:8080"


def test_https_host_rule_behind_a_redirect_and_a_fixed_404() -> None:
    listeners = [listener("l80", "HTTP", 80, TO_HTTPS), listener("l443", "HTTPS", 443, NOT_FOUND)]
    rules = {
        "l80": [default(TO_HTTPS)],
        "l443": [rule(10, [FORWARD], host_header=["App.Example.com"]), default(NOT_FOUND)],
    }
    assert service_url(DNS, listeners, rules, TG) == "https://app.example.com"


def test_https_preferred_over_http_and_ports_kept() -> None:
    listeners = [listener("l1", "HTTP", 8080, FORWARD), listener("l2", "HTTPS", 8443, NOT_FOUND)]
    rules = {"l1": [default(FORWARD)], "l2": [rule(3, [FORWARD], host_header=["a.test"]), default(NOT_FOUND)]}
    assert service_url(DNS, listeners, rules, TG) == "https://a.test:8443"


def test_path_rule_gives_a_prefix_and_the_named_host_wins_over_a_wildcard_one() -> None:
    listeners = [listener("l", "HTTPS", 443, NOT_FOUND)]
    rules = {
        "l": [
            rule(1, [FORWARD], host_header=["*.example.com"]),
            rule(2, [FORWARD], path_pattern=["/api/*"]),
            rule(3, [FORWARD], host_header=["api.example.com"], path_pattern=["/v1/*"]),
            default(NOT_FOUND),
        ]
    }
    assert service_url(DNS, listeners, rules, TG) == "https://api.example.com/v1"
    assert service_url(DNS, listeners, {"l": [*rules["l"][:2], default(NOT_FOUND)]}, TG) == f"https://{DNS}/api"


def test_weight_zero_and_other_groups_are_no_route() -> None:
    weighted = {
        "Type": "forward",
        "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": TG, "Weight": 0}, {"TargetGroupArn": OTHER}]},
    }
    listeners = [listener("l", "HTTP", 80, weighted)]
    assert service_url(DNS, listeners, {"l": [default(weighted)]}, TG) is None
    live = {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": TG, "Weight": 5}]}}
    assert service_url(DNS, listeners, {"l": [rule(4, [live], host_header=["w.test"]), default(weighted)]}, TG) == (
        "http://w.test"
    )
    assert service_url(DNS, [listener("l", "HTTP", 80, TO_HTTPS)], {}, TG) is None


def test_lowest_priority_rule_first() -> None:
    listeners = [listener("l", "HTTPS", 443, NOT_FOUND)]
    rules = {"l": [rule(20, [FORWARD], host_header=["b.test"]), rule(5, [FORWARD], host_header=["a.test"])]}
    assert service_url(DNS, listeners, rules, TG) == "https://a.test"


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [("/api/*", "/api"), ("/api*", "/api"), ("/v?/x", ""), ("/a/b?/*", "/a"), ("/health", "/health"), ("*", "")],
)
def test_path_prefix(pattern: str, prefix: str) -> None:
    assert path_prefix(pattern) == prefix
