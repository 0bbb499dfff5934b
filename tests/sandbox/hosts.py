"""Name resolution for simulated load balancers.

An ALB's DNS name is the stable address users curl. The simulator names each load balancer
``<name>-<id>.<region>.elb.localhost`` and maps it to 127.0.0.1 in /etc/hosts, so curl, requests and any
other client resolve it without DNS; each line carries a marker so ``clear()`` (and a later run, after a
crash) removes exactly what the sandbox added.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

MARKER = "# ecs-ship-sandbox"


class HostsFile:
    def __init__(self, path: Path = Path("/etc/hosts"), tag: str = "") -> None:
        self.path = path
        self.tag = tag or str(os.getpid())
        self._lock = threading.Lock()

    def _line(self, name: str) -> str:
        return f"127.0.0.1 {name} {MARKER} {self.tag}"

    def add(self, name: str) -> None:
        with self._lock:
            text = self.path.read_text() if self.path.exists() else ""
            line = self._line(name)
            if line in text.splitlines():
                return
            if text and not text.endswith("\n"):
                text += "\n"
            # Rewrite in place rather than rename: /etc/hosts may be a bind mount.
            self.path.write_text(text + line + "\n")

    def clear(self, *, every_run: bool = False) -> None:
        """Remove this run's lines (or every sandbox line, for cleaning up after a crash)."""
        with self._lock:
            if not self.path.exists():
                return
            keep = []
            for line in self.path.read_text().splitlines():
                ours = MARKER in line and (every_run or line.endswith(f"{MARKER} {self.tag}"))
                if not ours:
                    keep.append(line)
            self.path.write_text("\n".join(keep) + ("\n" if keep else ""))
