"""Wake a task's watcher when the engine reports something about one of its containers.

Polling every container's state a few times a second costs the engine one inspect per container per poll:
with a session's hundred-odd live tasks that was hundreds of calls a second, enough to slow every test and, at
teardown, to wedge dockerd. One `/events` stream for the whole simulator replaces it: a `die` or
`health_status` event wakes the task that owns the container, which then reads its state once. Watchers still
read on a slow timer, so an event lost while the stream reconnects costs seconds, never correctness.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import docker
import docker.errors
import requests


class ContainerEvents:
    """One events stream filtered to the run's containers; container id -> the Event to set."""

    def __init__(self, client: docker.DockerClient, label: str) -> None:
        self._client = client
        self._label = label
        self._lock = threading.Lock()
        self._wakers: dict[str, threading.Event] = {}
        self._closed = threading.Event()
        self._stream: Any = None
        self._since: int | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="docker-events", daemon=True)
        self._thread.start()

    def watch(self, container_id: str, waker: threading.Event) -> None:
        """Set ``waker`` on every event of this container (register before starting it: none is missed)."""
        with self._lock:
            self._wakers[container_id] = waker

    def forget(self, container_id: str) -> None:
        with self._lock:
            self._wakers.pop(container_id, None)

    def close(self) -> None:
        self._closed.set()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                self._stream = self._client.events(
                    decode=True, since=self._since, filters={"type": "container", "label": self._label}
                )
                if self._closed.is_set():  # closed while connecting: close() saw no stream to cancel
                    self._stream.close()
                    return
                for event in self._stream:
                    self._dispatch(event)
            except (docker.errors.APIError, requests.exceptions.RequestException, OSError, ValueError):
                pass
            # The stream ended (engine restart, a cut connection): resume where it stopped, replaying what
            # the engine kept meanwhile.
            self._closed.wait(0.5)

    def _dispatch(self, event: dict[str, Any]) -> None:
        if isinstance(event.get("time"), int):
            self._since = event["time"]
        cid = event.get("id") or (event.get("Actor") or {}).get("ID")
        with self._lock:
            waker = self._wakers.get(cid) if isinstance(cid, str) else None
        if waker is not None:
            waker.set()
