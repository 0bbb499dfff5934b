"""The load balancer's data plane: one loopback reverse proxy per listener.

Like an ALB it forwards each request to the next routable target (round robin), never to draining ones,
answers 503 when the target group has nothing registered and 502 when the chosen target fails. Which
targets are routable is asked of the simulator per request, so a target leaves rotation the moment it
starts draining.
"""

from __future__ import annotations

import http.client
import itertools
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from .loopback import reply

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


class ListenerLike(Protocol):
    @property
    def port(self) -> int: ...

    @property
    def target_group_arns(self) -> list[str]: ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, route: Route) -> None:
        self.route = route
        self.target_group_arns: list[str] = []
        self._rr = itertools.count()
        super().__init__(("127.0.0.1", port), _Handler)

    def pick(self) -> tuple[str, int] | None:
        targets = self.route(self.target_group_arns)
        if not targets:
            return None
        return targets[next(self._rr) % len(targets)]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the proxy's effect, not its access log."""

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        target = self.server.pick()
        if target is None:
            reply(self, 503, b"503 Service Temporarily Unavailable\n")
            return
        host, port = target
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["X-Forwarded-For"] = self.client_address[0]
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

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _forward


class ProxyPool:
    def __init__(self, route: Route) -> None:
        self.route = route
        self._servers: dict[int, _Server] = {}
        self.failed_ports: set[int] = set()

    def sync(self, listeners: Sequence[ListenerLike]) -> None:
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
            if server is not None:
                server.target_group_arns = list(lst.target_group_arns)

    def close(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        self._servers.clear()
