"""Loopback servers that can go down and come back on the same port, as a restarted process would.

Going down closes the listening socket (new connections are refused) and cuts every open connection,
including idle keep-alive ones a client pool would otherwise reuse; coming back binds the same port again.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any, Generic, TypeVar


class CuttableServer(socketserver.BaseServer):
    """Mixin (list it before the server class): remembers open connections so an outage can cut them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._cutting = False
        super().__init__(*args, **kwargs)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        with self._open_lock:
            self._open.add(sock)
        return sock, addr

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self._cutting:  # a connection cut on purpose is not worth a traceback
            super().handle_error(request, client_address)

    def cut_connections(self) -> None:
        self._cutting = True
        with self._open_lock:
            conns = list(self._open)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def stop_serving(servers: Iterable[socketserver.BaseServer], timeout: float = 5.0) -> None:
    """End every server's ``serve_forever`` at once and close its listening socket.

    ``shutdown()`` alone returns only when ``serve_forever`` next wakes from its poll (0.5 s by default), and
    one server after another that is paid per server: a session with hundreds of ALB listeners spent most of
    its teardown there. Shutting the listening socket down wakes the poll at once (and refuses new
    connections), so all of them stop in milliseconds. Each server must be serving, or about to: ``shutdown()``
    of one that never serves waits for ever (hence daemon stoppers and a bounded join).
    """
    servers = list(servers)
    stoppers = [threading.Thread(target=s.shutdown, name="stop-serving", daemon=True) for s in servers]
    for th in stoppers:
        th.start()
    for s in servers:
        listening = getattr(s, "socket", None)  # every TCPServer's; a BaseServer may have none
        if isinstance(listening, socket.socket):
            with contextlib.suppress(OSError):
                listening.shutdown(socket.SHUT_RDWR)
    deadline = time.monotonic() + timeout
    for th in stoppers:
        th.join(timeout=max(0.0, deadline - time.monotonic()))
    for s in servers:
        s.server_close()


S = TypeVar("S", bound=CuttableServer)


class Restartable(Generic[S]):
    """Runs a server made by ``make(port)`` in a thread; ``down()``/``up()`` keep the port."""

    def __init__(self, make: Callable[[int], S], name: str, port: int = 0) -> None:
        self._make = make
        self.name = name
        self.port = port
        self.server: S | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.server is not None

    def up(self, timeout: float = 10.0) -> None:
        if self.server is not None:
            return
        # The port was ours a moment ago; TIME_WAIT leftovers clear with SO_REUSEADDR, a stranger
        # grabbing it in between does not, so retry briefly before giving up.
        deadline = time.monotonic() + timeout
        while True:
            try:
                server = self._make(self.port)
                break
            except OSError as exc:
                if self.port == 0 or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: cannot listen on 127.0.0.1:{self.port} again: {exc}") from exc
                time.sleep(0.1)
        self.port = int(server.server_address[1])  # type: ignore[index]
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, name=f"{self.name}-{self.port}", daemon=True)
        self._thread.start()

    def down(self) -> None:
        server, thread = self.server, self._thread
        self.server, self._thread = None, None
        if server is None:
            return
        stop_serving([server])
        server.cut_connections()
        if thread is not None:
            thread.join(timeout=10)

    def outage(self, seconds: float) -> None:
        """Refuse connections for `seconds`, then serve again on the same port."""
        self.down()
        time.sleep(seconds)
        self.up()


def reply(
    handler: BaseHTTPRequestHandler,
    code: int,
    body: bytes,
    content_type: str = "text/plain",
    headers: Sequence[tuple[str, str]] = (),
) -> None:
    """A complete answer from a sandbox proxy itself (not relayed): status, headers, and the body unless HEAD."""
    handler.send_response(code)
    handler.send_header("Content-Type", content_type)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)
