"""Stopping the sandbox's loopback servers (loopback.stop_serving): no server's poll interval is waited out."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

from tests.sandbox.loopback import stop_serving


class _Quiet(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        pass


def test_many_servers_stop_together_without_waiting_for_their_poll() -> None:
    servers = [socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Quiet) for _ in range(20)]
    # A poll far longer than the bound below: only a wake-up, not the poll, can end serve_forever in time.
    threads = [threading.Thread(target=s.serve_forever, args=(60,), daemon=True) for s in servers]
    for th in threads:
        th.start()
    ports = [int(s.server_address[1]) for s in servers]
    with socket.create_connection(("127.0.0.1", ports[0]), timeout=5):
        pass  # serving

    started = time.monotonic()
    stop_serving(servers)
    took = time.monotonic() - started

    assert took < 5, f"took {took:.1f}s"
    for th in threads:
        th.join(timeout=1)
    assert not any(th.is_alive() for th in threads)
    for port in ports:
        probe = socket.socket()
        try:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still accepts connections"
        finally:
            probe.close()
