"""Task placement on container instances (EC2 launch type), as the ECS developer guide describes it.

ECS places a service's task on a container instance registered in the cluster (``register_container_instance``)
that has the CPU units, memory and host ports the task needs: the task-level ``cpu``/``memory`` when the task
definition has them, otherwise the sum over its containers (``memoryReservation`` where given, else
``memory``); static host ports are those of ``host`` mode (host port = container port) and of ``bridge``
mappings with a non-zero ``hostPort``. Dynamic host ports (``hostPort`` 0 or absent in bridge mode) come from
the instance's ephemeral range and, like on ECS, do not count against the instance's PORTS resource. Among the
instances that fit, the default strategy of a service spreads tasks over ``attribute:ecs.availability-zone``
(then over instances, for a stable choice). What a placement takes shows in the instance's
``remainingResources`` and ``runningTasksCount`` until the task stops.

When no instance fits, no task is created and the service gets the event ECS writes, naming the closest
matching instance and what it lacks. ECS omits a duplicate of that message until the cause is resolved, so it
is written once per cause, again only after a placement succeeded.

Each container instance stands on this machine as its own loopback address, 127.64.0.0/10 chosen from a hash
of its EC2 instance id (stable for the instance, probed further on a clash), so equal host ports on two
instances do not collide. The instance's side of each port binding is a relay (forward.py) from that address
to the container's own 127.0.0.1 port; health checks and the ALB proxy reach ``instance`` targets there.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .forward import PortForward
from .motoworld import ContainerInstanceView, MotoWorld, ServiceKey, TaskDefView

TROUBLESHOOTING = "For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
# Docker's default when the kernel does not say (the ECS PortMapping reference).
DEFAULT_EPHEMERAL = (49153, 65535)


def ephemeral_range(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in path.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL
    return lo, hi


def loopback_for(instance_id: str, taken: set[str]) -> str:
    """A stable loopback address for an instance: a hash of its id, probed further while another has it."""
    for attempt in range(1000):
        d = hashlib.sha256(f"{instance_id}/{attempt}".encode()).digest()
        address = f"127.{64 + d[0] % 64}.{d[1]}.{1 + d[2] % 254}"
        if address not in taken:
            return address
    raise RuntimeError(f"no free loopback address for container instance {instance_id}")


@dataclass(frozen=True)
class Requirements:
    cpu: int
    memory: int
    ports: frozenset[int]  # static host ports


@dataclass(frozen=True)
class PortMapping:
    container: str
    container_port: int
    host_port: int  # 0: dynamic


def port_mappings(td: TaskDefView) -> list[PortMapping]:
    """The host side of each mapping by network mode; awsvpc tasks publish nothing on the instance."""
    out: list[PortMapping] = []
    if td.network_mode not in ("bridge", "host"):
        return out
    for c in td.container_definitions:
        for m in c.get("portMappings") or []:
            container_port = int(m.get("containerPort") or 0)
            host_port = container_port if td.network_mode == "host" else int(m.get("hostPort") or 0)
            out.append(PortMapping(str(c["name"]), container_port, host_port))
    return out


def requirements(td: TaskDefView) -> Requirements:
    defs = td.container_definitions
    cpu = int(td.cpu) if td.cpu else sum(int(c.get("cpu") or 0) for c in defs)
    memory = int(td.memory) if td.memory else sum(int(c.get("memoryReservation") or c.get("memory") or 0) for c in defs)
    ports = frozenset(m.host_port for m in port_mappings(td) if m.host_port)
    return Requirements(cpu, memory, ports)


@dataclass
class Binding:
    mapping: PortMapping
    host_port: int
    forward: PortForward

    def api(self) -> dict[str, Any]:
        return {
            "bindIP": "0.0.0.0",
            "containerPort": self.mapping.container_port,
            "hostPort": self.host_port,
            "protocol": "tcp",
        }


@dataclass
class Placement:
    key: ServiceKey
    instance: ContainerInstanceView
    address: str
    need: Requirements
    bindings: list[Binding] = field(default_factory=list)

    def host_port(self, container: str, container_port: int) -> int | None:
        mine = [b for b in self.bindings if b.mapping.container == container]
        exact = [b for b in mine if b.mapping.container_port == container_port]
        return (exact or mine)[0].host_port if (exact or mine) else None

    def network_bindings(self, container: str) -> list[dict[str, Any]]:
        return [b.api() for b in self.bindings if b.mapping.container == container]


@dataclass(frozen=True)
class Unplaced:
    message: str
    new: bool  # False: ECS would omit it as a duplicate of the last one


class Placer:
    """Which container instance each EC2 task runs on, what it reserves there, and its published ports.

    Called by the simulator with the world lock held.
    """

    def __init__(
        self,
        world: MotoWorld,
        ports: tuple[int, int] | None = None,
        rng: random.Random | None = None,
        publish: Callable[[tuple[str, int], tuple[str, int]], PortForward] = PortForward,
    ) -> None:
        self.world = world
        self.ports = ports or ephemeral_range()
        self.rng = rng or random.Random()
        self.publish = publish
        self.addresses: dict[str, str] = {}  # EC2 instance id -> loopback address
        self.placements: dict[str, Placement] = {}  # task ARN -> its placement
        self._last_failure: dict[ServiceKey, str] = {}

    def address_of(self, instance_id: str) -> str:
        if instance_id not in self.addresses:
            self.addresses[instance_id] = loopback_for(instance_id, set(self.addresses.values()))
        return self.addresses[instance_id]

    def instance_address(self, instance_id: str) -> str | None:
        return self.addresses.get(instance_id)

    def _on(self, instance: ContainerInstanceView) -> list[Placement]:
        return [p for p in self.placements.values() if p.instance.arn == instance.arn]

    def _shortfall(self, instance: ContainerInstanceView, need: Requirements) -> list[str]:
        there = self._on(instance)
        missing = []
        if instance.cpu - sum(p.need.cpu for p in there) < need.cpu:
            missing.append("has insufficient CPU units available.")
        if instance.memory - sum(p.need.memory for p in there) < need.memory:
            missing.append("has insufficient memory available.")
        used = set(instance.reserved_ports).union(*(p.need.ports for p in there))
        if need.ports & used:
            missing.append("is already using a port required by your task.")
        return missing

    def place(
        self,
        key: ServiceKey,
        td: TaskDefView,
        task_arn: str,
        real_ports: dict[str, int],
        only: set[str] | None = None,
    ) -> Placement | Unplaced:
        """Place on an ACTIVE container instance of the cluster; `only` (EC2 instance ids) narrows that to the
        instances of an Auto Scaling group capacity provider."""
        need = requirements(td)
        instances = [i for i in self.world.container_instances(key.region, key.cluster) if i.status == "ACTIVE"]
        if only is not None:
            instances = [i for i in instances if i.ec2_instance_id in only]
        head = (
            f"(service {key.name}) was unable to place a task because no container instance met all of its "
            "requirements."
        )
        if not instances:
            where = "your capacity provider" if only is not None else "your cluster"
            return self._fail(key, f"{head} Reason: No Container Instances were found in {where}.")
        shortfalls = {i.arn: self._shortfall(i, need) for i in instances}
        fits = [i for i in instances if not shortfalls[i.arn]]
        if not fits:
            closest = min(instances, key=lambda i: (len(shortfalls[i.arn]), -i.memory, i.arn))
            return self._fail(
                key,
                f"{head} The closest matching (container-instance {closest.id}) {shortfalls[closest.arn][0]} "
                f"{TROUBLESHOOTING}",
            )
        chosen = self._spread(key, fits)
        placement = Placement(key, chosen, self.address_of(chosen.ec2_instance_id), need)
        try:
            placement.bindings = self._publish(placement, td, real_ports)
        except OSError:
            # Something outside ECS's books holds the port on this machine: to ECS the port is in use.
            return self._fail(
                key,
                f"{head} The closest matching (container-instance {chosen.id}) is already using a port required "
                f"by your task. {TROUBLESHOOTING}",
            )
        self.placements[task_arn] = placement
        self._last_failure.pop(key, None)
        self._account(chosen, key)
        return placement

    def release(self, task_arn: str) -> None:
        """The task stopped: its resources and host ports are the instance's again."""
        placement = self.placements.pop(task_arn, None)
        if placement is None:
            return
        for b in placement.bindings:
            b.forward.close()
        self._account(placement.instance, placement.key)

    def close(self) -> None:
        for arn in list(self.placements):
            self.release(arn)

    def _fail(self, key: ServiceKey, message: str) -> Unplaced:
        new = self._last_failure.get(key) != message
        self._last_failure[key] = message
        return Unplaced(message, new)

    def _spread(self, key: ServiceKey, fits: list[ContainerInstanceView]) -> ContainerInstanceView:
        mine = [p for p in self.placements.values() if p.key == key]
        per_az = {
            i.availability_zone: sum(1 for p in mine if p.instance.availability_zone == i.availability_zone)
            for i in fits
        }
        per_instance = {i.arn: sum(1 for p in mine if p.instance.arn == i.arn) for i in fits}
        return min(fits, key=lambda i: (per_az[i.availability_zone], per_instance[i.arn], i.arn))

    def _publish(self, placement: Placement, td: TaskDefView, real_ports: dict[str, int]) -> list[Binding]:
        out: list[Binding] = []
        try:
            for m in port_mappings(td):
                target = ("127.0.0.1", real_ports[m.container])
                if m.host_port:
                    out.append(Binding(m, m.host_port, self.publish((placement.address, m.host_port), target)))
                else:
                    port, fwd = self._dynamic(placement, target)
                    out.append(Binding(m, port, fwd))
        except OSError:
            for b in out:
                b.forward.close()
            raise
        return out

    def _dynamic(self, placement: Placement, target: tuple[str, int]) -> tuple[int, PortForward]:
        lo, hi = self.ports
        taken = {b.host_port for p in self._on(placement.instance) for b in p.bindings}
        taken |= placement.instance.reserved_ports
        last: OSError | None = None
        for _ in range(100):
            port = self.rng.randint(lo, hi)
            if port in taken:
                continue
            try:
                return port, self.publish((placement.address, port), target)
            except OSError as exc:  # another process has it on this machine; the agent would pick again
                last = exc
        raise last or OSError(f"no free port in {lo}-{hi} on {placement.address}")

    def _account(self, instance: ContainerInstanceView, key: ServiceKey) -> None:
        there = self._on(instance)
        self.world.set_instance_usage(
            key.region,
            key.cluster,
            instance.arn,
            cpu=sum(p.need.cpu for p in there),
            memory=sum(p.need.memory for p in there),
            ports=set().union(*(p.need.ports for p in there)),
            tasks=len(there),
        )
