"""A container instance's published port: Docker's port mapping, played by a loopback TCP relay.

On an EC2 instance Docker maps ``instance:hostPort`` to the container's port (bridge mode), or the
container binds the instance's port itself (host mode). Here every task container listens on its own
127.0.0.1 port (told through ``PORT``), so the instance's side of the binding is a relay from the
instance's loopback address and host port to that port. A connection the container refuses is closed at
once, as a mapped port with nothing listening behind it would be.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from typing import Any

from .loopback import CuttableServer, stop_serving

_CHUNK = 65536


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(_CHUNK)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        # Pass the half-close on, so request/response protocols see EOF where the peer sent it.
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


class _Relay(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        try:
            upstream = socket.create_connection(self.server.target, timeout=5)
        except OSError:
            return
        upstream.settimeout(None)
        back = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
        back.start()
        _pump(self.request, upstream)
        back.join(timeout=60)
        upstream.close()


class _Server(CuttableServer, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        super().__init__(listen, _Relay)


class PortForward:
    """``listen`` (an instance address and host port) relayed to ``target``; binding fails with OSError."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self._server = _Server(listen, target)
        self.address: str = listen[0]
        self.port = int(self._server.server_address[1])
        # close() runs when a task stops and the port must be free at once: stop_serving wakes the loop, so
        # the default poll (no busy polling per published port) costs close() nothing.
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"publish-{self.address}:{self.port}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        stop_serving([self._server])
        self._server.cut_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> PortForward:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
