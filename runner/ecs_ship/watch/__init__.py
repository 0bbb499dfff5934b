"""Follow one ECS deployment until its tasks serve behind the ALB, or say exactly why they do not.

Two halves: ``assess`` is pure (a snapshot of the world in, a verdict out) so every decision is unit-tested
on scripted sequences; ``Watcher`` polls the APIs, prints what changed, and on failure gathers the
diagnosis (stopped reasons, exit codes, log tails, target reason codes, events).

What counts is *this* deployment: its tasks are found by ``startedBy == deployment id`` (ECS sets it), and
their targets are matched by address and port in every target group of the service. A deployment is judged
by its own tasks' health, never by the service's aggregate counts, which include the old tasks.
"""

from ..strategy import strategy_of
from .logs import log_tail_reader
from .model import (
    ContainerCheck,
    ContainerState,
    DeploymentState,
    Event,
    Goal,
    HookState,
    LoadBalancerBinding,
    ServiceDeploymentState,
    Snapshot,
    TargetState,
    TaskState,
    Verdict,
)
from .poller import Outcome, Watcher
from .reader import (
    Reader,
    bindings_of,
    checks_of,
    digests_of,
    parse_deployment,
    parse_service_deployment,
    parse_task,
)
from .rolling import (
    assess,
    benign_stop,
    describe_target,
    describe_task_failure,
    is_failure,
    own_tasks,
    serves,
    targets_of,
)

__all__ = [
    "ContainerCheck",
    "ContainerState",
    "DeploymentState",
    "Event",
    "Goal",
    "HookState",
    "LoadBalancerBinding",
    "Outcome",
    "Reader",
    "ServiceDeploymentState",
    "Snapshot",
    "TargetState",
    "TaskState",
    "Verdict",
    "Watcher",
    "assess",
    "benign_stop",
    "bindings_of",
    "checks_of",
    "describe_target",
    "describe_task_failure",
    "digests_of",
    "is_failure",
    "log_tail_reader",
    "own_tasks",
    "parse_deployment",
    "parse_service_deployment",
    "parse_task",
    "serves",
    "strategy_of",
    "targets_of",
]
