"""DescribeServices for the watches of one run: one call answers for up to ten services of a cluster.

A spec that deploys twenty services in parallel would otherwise read the same cluster twenty times a poll. The
board remembers each answer with its time; a watch that asks for a service read less than ``max_age`` seconds
ago gets that answer, and one that needs a fresh one reads its own service together with the other services
watched in its cluster (the API takes ten at a time), so their next polls are free. The deploy's preparation
reads through it too, with every service of the spec registered first: twenty services are two calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

BATCH = 10  # DescribeServices takes at most ten services per call


def _matches(name: str, service: Mapping[str, Any]) -> bool:
    return name in (service.get("serviceName"), service.get("serviceArn"))


class ServiceBoard:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._watching: dict[tuple[str, str], list[str]] = {}
        self._cluster_locks: dict[tuple[str, str], threading.Lock] = {}
        self._answers: dict[tuple[str, str, str], tuple[float, Mapping[str, Any] | None]] = {}

    def watch(self, region: str, cluster: str, service: str) -> None:
        with self._lock:
            names = self._watching.setdefault((region, cluster), [])
            if service not in names:
                names.append(service)
            self._cluster_locks.setdefault((region, cluster), threading.Lock())

    def unwatch(self, region: str, cluster: str, service: str) -> None:
        with self._lock:
            names = self._watching.get((region, cluster), [])
            if service in names:
                names.remove(service)
            self._answers.pop((region, cluster, service), None)

    def now(self) -> float:
        return self._clock()

    def answers(self, region: str) -> list[Mapping[str, Any]]:
        """Every service of the Region as last read (the deploy's preparation reads what they share at once)."""
        with self._lock:
            return [a for (r, _, _), (_, a) in self._answers.items() if r == region and a is not None]

    def describe(
        self, ecs: Any, region: str, cluster: str, service: str, max_age: float, not_before: float | None = None
    ) -> Mapping[str, Any] | None:
        """The service as DescribeServices last said, read again when that was more than `max_age` ago or before
        `not_before` (a time of this board's clock: a watch never takes an answer from before its own
        deployment began); None when the API does not know it (deleted)."""
        key = (region, cluster)
        with self._lock:
            lock = self._cluster_locks.setdefault(key, threading.Lock())
        # One reader per cluster at a time: a watch that waited here usually finds its answer fresh.
        with lock:
            hit = self._answers.get((region, cluster, service))
            fresh = hit is not None and self._clock() - hit[0] <= max_age
            if hit is not None and fresh and (not_before is None or hit[0] >= not_before):
                return hit[1]
            with self._lock:
                others = [s for s in self._watching.get(key, []) if s != service]
            # The services read longest ago ride along first.
            others.sort(key=lambda s: self._answers.get((region, cluster, s), (float("-inf"), None))[0])
            names = [service, *others][:BATCH]
            resp = ecs.describe_services(cluster=cluster, services=names)
            now = self._clock()
            found = resp.get("services") or []
            for name in names:
                answer = next((s for s in found if _matches(name, s)), None)
                self._answers[(region, cluster, name)] = (now, answer)
            return self._answers[(region, cluster, service)][1]
