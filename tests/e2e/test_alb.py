"""The sandbox ALB's data plane on its own: listener rules, redirects, fixed responses, weighted forwards and
HTTPS by SNI, against a loopback backend (no Docker, no moto)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.sandbox import alb_rules
from tests.sandbox.loopback import reply
from tests.sandbox.motoworld import CertificateView, RuleView
from tests.sandbox.proxy import ProxyPool
from tests.sandbox.services import free_port
from tests.sandbox.tls import SandboxCA

TG_A, TG_B = "arn:tg/a", "arn:tg/b"


@dataclass(frozen=True)
class Listener:
    port: int
    protocol: str
    rules: list[RuleView]
    certificates: list[CertificateView] = field(default_factory=list)


class _Echo(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        name = self.server.name  # type: ignore[attr-defined]
        proto = self.headers.get("X-Forwarded-Proto")
        reply(self, 200, f"{name} {self.headers.get('Host')} {self.path} {proto}".encode())


def _backend(name: str) -> tuple[ThreadingHTTPServer, int]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Echo)
    server.name = name  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


@pytest.fixture
def backends() -> Iterator[dict[str, list[tuple[str, int]]]]:
    a, pa = _backend("A")
    b, pb = _backend("B")
    yield {TG_A: [("127.0.0.1", pa)], TG_B: [("127.0.0.1", pb)]}
    for s in (a, b):
        s.shutdown()
        s.server_close()


@pytest.fixture
def pool(backends: dict[str, list[tuple[str, int]]]) -> Iterator[ProxyPool]:
    p = ProxyPool(lambda arns: [t for arn in arns for t in backends.get(arn, [])])
    yield p
    p.close()


def host_rule(priority: int, host: str, tg: str) -> RuleView:
    cond = {"Field": "host-header", "HostHeaderConfig": {"Values": [host]}}
    return RuleView(priority, [cond], [{"Type": "forward", "TargetGroupArn": tg}])


NOT_FOUND = RuleView(
    None, [], [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404", "MessageBody": "no route"}}]
)


def test_rules_in_priority_order_then_the_default(pool: ProxyPool) -> None:
    port = free_port()
    rules = [
        RuleView(20, [{"Field": "path-pattern", "Values": ["/api/*"]}], [{"Type": "forward", "TargetGroupArn": TG_B}]),
        host_rule(10, "*.example.test", TG_A),
        RuleView(
            5,
            [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/v?/x"]}}],
            [{"Type": "forward", "TargetGroupArn": TG_B}],
        ),
        NOT_FOUND,
    ]
    pool.sync([Listener(port, "HTTP", rules)])
    base = f"http://127.0.0.1:{port}"
    assert requests.get(f"{base}/api/1", headers={"Host": "APP.example.test:99"}, timeout=5).text.startswith("A ")
    assert requests.get(f"{base}/api/1", headers={"Host": "other.test"}, timeout=5).text.startswith("B ")
    assert requests.get(f"{base}/v2/x", headers={"Host": "app.example.test"}, timeout=5).text.startswith("B ")
    # path-pattern is case-sensitive and ignores the query string
    assert requests.get(f"{base}/API/1?a=b", headers={"Host": "x.test"}, timeout=5).status_code == 404
    assert requests.get(f"{base}/api/1?a=b", headers={"Host": "x.test"}, timeout=5).status_code == 200
    lost = requests.get(f"{base}/", headers={"Host": "example.test"}, timeout=5)
    assert (lost.status_code, lost.text) == (404, "no route")


def test_redirect_fills_the_reserved_keywords(pool: ProxyPool) -> None:
    port = free_port()
    config = {
        "Protocol": "HTTPS",
        "Port": "8443",
        "Path": "/new/#{path}",
        "Query": "#{query}&z=1",
        "StatusCode": "HTTP_302",
    }
    pool.sync([Listener(port, "HTTP", [RuleView(None, [], [{"Type": "redirect", "RedirectConfig": config}])])])
    resp = requests.get(
        f"http://127.0.0.1:{port}/a/b?q=1", headers={"Host": "app.test"}, allow_redirects=False, timeout=5
    )
    assert resp.status_code == 302
    assert resp.headers["Location"] == "https://app.test:8443/new/a/b?q=1&z=1"
    assert (
        alb_rules.redirect_location(
            {"Protocol": "HTTPS", "Port": "443"}, protocol="HTTP", host="h", port=80, path="/p", query=""
        )
        == "https://h/p"
    )


def test_weighted_forward_skips_weight_zero(pool: ProxyPool) -> None:
    port = free_port()
    forward = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": TG_A, "Weight": 0}, {"TargetGroupArn": TG_B, "Weight": 3}]
        },
    }
    pool.sync([Listener(port, "HTTP", [RuleView(None, [], [forward])])])
    answers = {requests.get(f"http://127.0.0.1:{port}/", timeout=5).text[0] for _ in range(10)}
    assert answers == {"B"}
    groups = alb_rules.forward_groups(
        {
            "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": TG_A, "Weight": 1}, {"TargetGroupArn": TG_B, "Weight": 1}]
            }
        }
    )
    picked = {alb_rules.pick_group(groups, random.Random(seed)) for seed in range(40)}
    assert picked == {TG_A, TG_B}


def test_https_serves_the_certificate_sni_names(pool: ProxyPool, tmp_path: Path) -> None:
    ca = SandboxCA(tmp_path / "ca")
    default = ca.issue(["*.elb.localhost"])
    app = ca.issue(["app.example.test"])
    port = free_port()
    certs = [
        CertificateView("arn:cert/default", default.certificate, default.private_key, default.chain),
        CertificateView("arn:cert/app", app.certificate, app.private_key, app.chain),
    ]
    pool.sync([Listener(port, "HTTPS", [host_rule(1, "app.example.test", TG_A), NOT_FOUND], certs)])
    session = requests.Session()
    # The client connects to the loopback port but names the host, as a browser resolving it would.
    session.mount("https://", _PinnedAdapter("127.0.0.1"))
    resp = session.get(f"https://app.example.test:{port}/x", verify=str(ca.bundle), timeout=5)
    assert resp.text == f"A app.example.test:{port} /x https"
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"https://other.example.test:{port}/x", verify=str(ca.bundle), timeout=5)
    assert session.get(f"https://lb.elb.localhost:{port}/", verify=str(ca.bundle), timeout=5).status_code == 404


class _PinnedAdapter(requests.adapters.HTTPAdapter):
    """Connect every host name to one address, keeping the name for SNI, Host and certificate checks."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:  # type: ignore[override]
        import socket
        from unittest import mock

        real = socket.getaddrinfo
        with mock.patch("socket.getaddrinfo", lambda host, *a, **k: real(self.address, *a, **k)):
            return super().send(request, **kw)
