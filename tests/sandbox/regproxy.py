"""A loopback proxy in front of the registry that breaks it on request.

Everyone (docker, the simulator, ecs-ship) is given the proxy's address as the registry's, so a fault set
here is what every client meets. 127.0.0.0/8 is an insecure registry for dockerd by default, so any loopback
port works without daemon configuration. Faults:

* ``refuse_auth()``: every request carries a wrong password to the registry, which answers 401 with its own
  ``WWW-Authenticate`` challenge, exactly as for a user with a wrong password;
* ``cut_upload(n)``: the n-th blob upload request from now (PATCH or PUT under ``/v2/<name>/blobs/uploads/``)
  has its connection closed halfway through its body, with no answer;
* ``manifest_500(n)``: the next n manifest requests (GET, HEAD or PUT ``/v2/<name>/manifests/<ref>``) answer
  500 with the registry's JSON error body;
* ``suspend()``/``resume()``: nothing listens (connections refused), used while the registry is paused.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .loopback import CuttableServer, Restartable, reply

_UPLOAD = re.compile(r"^/v2/.+/blobs/uploads/")
_MANIFEST = re.compile(r"^/v2/.+/manifests/[^/]+$")
# Hop-by-hop headers; Transfer-Encoding is kept on requests because their chunked framing is relayed as is.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers", "upgrade"}
_PIECE = 64 * 1024


@dataclass(frozen=True)
class Applied:
    """A fault that hit a request (what the self-tests and the fault suite assert on)."""

    fault: str  # refuse_auth | cut_upload | manifest_500
    method: str
    path: str


class RegistryFaults:
    """The proxy and its fault switches; thread-safe, settable and clearable while requests flow."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream  # host:port of the real registry
        self._lock = threading.Lock()
        self._refuse_auth = False
        self._cut_in = 0  # cut the upload request this many upload requests from now; 0 = off
        self._cut_all = False  # cut every upload request (the engine retries a cut upload on its own)
        self._manifest_500 = 0
        self._manifest_methods: frozenset[str] = frozenset(("GET", "HEAD", "PUT"))
        self._upload_delay = 0.0  # seconds each upload request waits before it is forwarded
        self.applied: list[Applied] = []
        self._listener: Restartable[_Server] = Restartable(lambda port: _Server(port, self), "registry-proxy")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._listener.port}"

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._listener.up()

    def suspend(self) -> None:
        self._listener.down()

    def resume(self) -> None:
        self._listener.up()

    stop = suspend

    # --- faults ---------------------------------------------------------------------------------
    def refuse_auth(self, on: bool = True) -> None:
        with self._lock:
            self._refuse_auth = on

    def cut_upload(self, n: int = 1) -> None:
        """Close the connection of the n-th blob upload request from now, halfway through its body."""
        if n < 1:
            raise ValueError("n counts upload requests from 1")
        with self._lock:
            self._cut_in = n

    def cut_uploads(self, on: bool = True) -> None:
        """Cut every blob upload request until cleared: a link that keeps dropping, which the engine's own
        retries of a failed layer push cannot get through."""
        with self._lock:
            self._cut_all = on

    def slow_uploads(self, seconds: float) -> None:
        """Hold each blob upload request `seconds` before forwarding it: a push that takes a while (a slow
        link), so a test can act while it runs."""
        with self._lock:
            self._upload_delay = seconds

    def manifest_500(self, n: int = 1, methods: tuple[str, ...] = ("GET", "HEAD", "PUT")) -> None:
        """Answer the next n manifest requests of `methods` with 500: ("PUT",) fails only a push's manifest,
        after its layers went up; reads of a tag (ecs-ship's check, the digest read back) pass."""
        with self._lock:
            self._manifest_500 += n
            self._manifest_methods = frozenset(methods)

    def clear(self) -> None:
        with self._lock:
            self._refuse_auth = False
            self._cut_in = 0
            self._cut_all = False
            self._manifest_500 = 0
            self._manifest_methods = frozenset(("GET", "HEAD", "PUT"))
            self._upload_delay = 0.0

    def applied_since(self, mark: int = 0) -> list[Applied]:
        with self._lock:
            return list(self.applied[mark:])

    def upload_delay(self, method: str, path: str) -> float:
        with self._lock:
            uploading = method in ("POST", "PATCH", "PUT") and _UPLOAD.match(path.split("?", 1)[0])
            return self._upload_delay if uploading else 0.0

    def _decide(self, method: str, path: str) -> str | None:
        """Which fault, if any, takes this request; consumes counted faults."""
        bare = path.split("?", 1)[0]
        fault = None
        with self._lock:
            if self._refuse_auth:
                fault = "refuse_auth"
            elif method in self._manifest_methods and _MANIFEST.match(bare) and self._manifest_500 > 0:
                self._manifest_500 -= 1
                fault = "manifest_500"
            elif method in ("PATCH", "PUT") and _UPLOAD.match(bare) and self._cut_all:
                fault = "cut_upload"
            elif method in ("PATCH", "PUT") and _UPLOAD.match(bare) and self._cut_in > 0:
                self._cut_in -= 1
                fault = "cut_upload" if self._cut_in == 0 else None
            if fault is not None:
                self.applied.append(Applied(fault, method, path))
        return fault


class _Server(CuttableServer, ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, faults: RegistryFaults) -> None:
        self.faults = faults
        super().__init__(("127.0.0.1", port), _Handler)


class _Cut(Exception):
    """The request's connection was closed on purpose."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the registry's behaviour is asserted on, not its access log."""

    def _handle(self) -> None:
        delay = self.server.faults.upload_delay(self.command, self.path)
        if delay:
            time.sleep(delay)
        fault = self.server.faults._decide(self.command, self.path)
        if fault == "manifest_500":
            for _ in self._body():
                pass
            self._manifest_error()
            return
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
        if fault == "refuse_auth":
            wrong = base64.b64encode(f"sandbox:{secrets.token_hex(8)}".encode()).decode()
            headers = [(k, v) for k, v in headers if k.lower() != "authorization"] + [
                ("Authorization", f"Basic {wrong}")
            ]
        host, port = self.server.faults.upstream.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            try:
                conn.connect()
            except OSError:
                reply(self, 502, b"registry unreachable behind the sandbox proxy\n")
                return
            # Host is relayed untouched: the registry builds upload Location URLs from it, which must point
            # back at the proxy.
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v)
            conn.endheaders()
            self._relay_body(conn, cut=fault == "cut_upload")
            resp = conn.getresponse()
            self._relay_response(resp)
        except _Cut:
            self.close_connection = True
            assert conn.sock is not None
            conn.sock.shutdown(socket.SHUT_RDWR)
            self.connection.shutdown(socket.SHUT_RDWR)
        finally:
            conn.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    # --- request body ------------------------------------------------------------------------------
    def _body(self) -> Iterator[bytes]:
        """The request body as raw pieces off the wire, chunked framing included, as they arrive."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    trailer = [line]
                    while True:
                        t = self.rfile.readline()
                        trailer.append(t)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    yield b"".join(trailer)
                    return
                yield line + self.rfile.read(size) + self.rfile.readline()
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            piece = self.rfile.read(min(_PIECE, left))
            if not piece:
                return
            left -= len(piece)
            yield piece

    def _relay_body(self, conn: http.client.HTTPConnection, *, cut: bool) -> None:
        if not cut:
            for piece in self._body():
                conn.send(piece)
            return
        # Forward about half of the body, then drop both connections: the client sees its upload die
        # mid-body and the registry a truncated upload, as when a network path breaks.
        length = int(self.headers.get("Content-Length") or 0)
        sent = 0
        for piece in self._body():
            if length:
                piece = piece[: max(0, length // 2 - sent)]
            if piece:
                conn.send(piece)
                sent += len(piece)
            if not length or sent >= length // 2:
                break
        raise _Cut()

    # --- answers -------------------------------------------------------------------------------------
    def _relay_response(self, resp: http.client.HTTPResponse) -> None:
        self.send_response(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        for k, v in resp.getheaders():
            if k.lower() not in _HOP_BY_HOP and k.lower() not in ("transfer-encoding", "content-length"):
                self.send_header(k, v)
        if self.command == "HEAD" or length is not None:
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            while self.command != "HEAD":
                piece = resp.read(_PIECE)
                if not piece:
                    break
                self.wfile.write(piece)
            return
        data = resp.read()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _manifest_error(self) -> None:
        body = json.dumps(
            {"errors": [{"code": "UNKNOWN", "message": "unknown error", "detail": "injected by the sandbox"}]}
        ).encode()
        reply(self, 500, body, "application/json; charset=utf-8", [("Docker-Distribution-Api-Version", "registry/2.0")])
