"""The load balancer's data plane: one loopback reverse proxy per listener.

Like an ALB, each request goes through the listener's rules (``alb_rules``: host-header and path-pattern
conditions, priority order, the default rule last) to one action: ``forward`` sends it to the next routable
target of a target group (round robin; a weighted forward first picks the group by weight), never to draining
ones, answering 503 when the group has nothing registered and 502 when the chosen target fails; ``redirect``
answers 301/302 with the Location the redirect config builds; ``fixed-response`` answers what it says. Which
targets are routable is asked of the simulator per request, so a target leaves rotation the moment it starts
draining. An HTTPS listener serves TLS with its ACM certificates, chosen by SNI as an ALB does (the default
certificate when no other names the host).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import itertools
import random
import ssl
import tempfile
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography import x509

from . import alb_rules
from .loopback import reply, stop_serving

Route = Callable[[list[str]], list[tuple[str, int]]]

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}


class CertificateLike(Protocol):
    @property
    def arn(self) -> str: ...

    @property
    def certificate(self) -> str: ...

    @property
    def private_key(self) -> str: ...

    @property
    def chain(self) -> str: ...


class RuleLike(Protocol):
    @property
    def priority(self) -> int | None: ...

    @property
    def conditions(self) -> list[dict[str, Any]]: ...

    @property
    def actions(self) -> list[dict[str, Any]]: ...


class ListenerLike(Protocol):
    @property
    def port(self) -> int: ...

    @property
    def protocol(self) -> str: ...

    @property
    def rules(self) -> Sequence[RuleLike]: ...

    @property
    def certificates(self) -> Sequence[CertificateLike]: ...


class _Tls:
    """The TLS side of an HTTPS listener: one context per certificate, picked by SNI."""

    def __init__(self, certificates: Sequence[CertificateLike], directory: Path) -> None:
        self.contexts: list[tuple[list[str], ssl.SSLContext]] = []
        for cert in certificates:
            digest = hashlib.sha256(cert.certificate.encode()).hexdigest()[:16]
            chain_file = directory / f"{digest}.pem"
            key_file = directory / f"{digest}.key"
            chain_file.write_text(cert.certificate.rstrip() + "\n" + cert.chain)
            key_file.write_text(cert.private_key)
            key_file.chmod(0o600)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(chain_file, key_file)
            self.contexts.append((_names(cert.certificate), ctx))
        if self.contexts:
            self.contexts[0][1].sni_callback = self._pick

    @property
    def default(self) -> ssl.SSLContext | None:
        return self.contexts[0][1] if self.contexts else None

    def _pick(self, sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext) -> None:
        if not server_name:
            return
        for names, ctx in self.contexts:
            if any(_covers(n, server_name) for n in names):
                sock.context = ctx
                return


def _covers(name: str, host: str) -> bool:
    """TLS name matching (RFC 6125): a leading ``*`` stands for exactly one label."""
    name, host = name.lower(), host.lower()
    if name.startswith("*."):
        return "." in host and host.split(".", 1)[1] == name[2:]
    return name == host


def _names(pem: str) -> list[str]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n) for n in san.get_values_for_type(x509.DNSName)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, route: Route) -> None:
        self.route = route
        self.listener: ListenerLike | None = None
        self.tls: _Tls | None = None
        self.tls_key: tuple[str, ...] | None = None
        self._rr = itertools.count()
        self.rng = random.Random()
        super().__init__(("127.0.0.1", port), _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        tls = self.tls
        if tls is not None and tls.default is not None:
            # The handshake happens in the request's thread (see _Handler.setup): a slow client must not
            # hold up the accept loop.
            sock = tls.default.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def pick(self, target_group_arn: str) -> tuple[str, int] | None:
        targets = self.route([target_group_arn])
        if not targets:
            return None
        return targets[next(self._rr) % len(targets)]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (OSError, ssl.SSLError):
                with contextlib.suppress(OSError):
                    self.request.close()
                raise
            self.request.settimeout(None)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the proxy's effect, not its access log."""

    def _handle(self) -> None:
        listener = self.server.listener
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if listener is None:
            reply(self, 503, b"503 Service Temporarily Unavailable\n")
            return
        host = alb_rules.host_name(self.headers.get("Host") or "")
        parts = urlsplit(self.path)
        action = alb_rules.final_action(alb_rules.choose(listener.rules, host, parts.path or "/"))
        kind = action.get("Type") if action else None
        if action is not None and kind == "redirect":
            config = action.get("RedirectConfig") or {}
            location = alb_rules.redirect_location(
                config, protocol=listener.protocol, host=host, port=listener.port, path=parts.path, query=parts.query
            )
            reply(self, alb_rules.redirect_status(config), b"", headers=[("Location", location)])
        elif action is not None and kind == "fixed-response":
            config = action.get("FixedResponseConfig") or {}
            reply(
                self,
                int(config.get("StatusCode") or 200),
                str(config.get("MessageBody") or "").encode(),
                content_type=str(config.get("ContentType") or "text/plain"),
            )
        elif action is not None and kind == "forward":
            group = alb_rules.pick_group(alb_rules.forward_groups(action), self.server.rng)
            self._forward(group, body, listener)
        else:
            reply(self, 503, b"503 Service Temporarily Unavailable\n")

    def _forward(self, target_group_arn: str | None, body: bytes | None, listener: ListenerLike) -> None:
        target = self.server.pick(target_group_arn) if target_group_arn else None
        if target is None:
            reply(self, 503, b"503 Service Temporarily Unavailable\n")
            return
        host, port = target
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["X-Forwarded-For"] = self.client_address[0]
            headers["X-Forwarded-Proto"] = listener.protocol.lower()
            headers["X-Forwarded-Port"] = str(listener.port)
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            reply(self, 502, b"502 Bad Gateway\n")
            return
        finally:
            conn.close()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


class ProxyPool:
    def __init__(self, route: Route) -> None:
        self.route = route
        self._servers: dict[int, _Server] = {}
        self.failed_ports: set[int] = set()
        self._keys = tempfile.TemporaryDirectory(prefix="ecs-ship-alb-")

    def sync(self, listeners: Sequence[ListenerLike]) -> None:
        # A listener gone (its load balancer deleted) stops serving its port, as ELBv2's would.
        ports = {lst.port for lst in listeners}
        stop_serving([self._servers.pop(p) for p in list(self._servers) if p not in ports])
        for lst in listeners:
            server = self._servers.get(lst.port)
            if server is None and lst.port not in self.failed_ports:
                try:
                    server = _Server(lst.port, self.route)
                except OSError:
                    # Port taken: the listener stays unserved rather than stealing someone's port.
                    self.failed_ports.add(lst.port)
                    continue
                threading.Thread(target=server.serve_forever, name=f"alb-{lst.port}", daemon=True).start()
                self._servers[lst.port] = server
            if server is None:
                continue
            server.listener = lst
            https = lst.protocol.upper() == "HTTPS"
            key = tuple(c.certificate for c in lst.certificates) if https else None
            if key != server.tls_key:
                server.tls = _Tls(lst.certificates, Path(self._keys.name)) if https else None
                server.tls_key = key

    def close(self) -> None:
        stop_serving(self._servers.values())
        self._servers.clear()
        with contextlib.suppress(OSError):
            self._keys.cleanup()
