"""Pre-flight checks: every reason a deploy would fail that can be known before its first write, found with
read-only calls. `ecs-ship verify` prints them, `plan` shows them, and `deploy` runs them before it writes
anything (``--no-verify`` skips them).

Each check is a function of what the deploy would write (a ``Subject``) and the account's clients; the checks run
in parallel, since each waits on a different API. A check the credentials may not run is a warning naming the
permission (permissions.py), never a failure: the deploy itself may still have what it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..aws import Clients
from . import iam, images, logs, secrets, service
from .fargate import fargate_size
from .model import FAILURE, OK, WARNING, Finding, PreflightFailed, Subject, failed

__all__ = ["FAILURE", "OK", "WARNING", "Finding", "PreflightFailed", "Subject", "failed", "run"]

Check = Callable[[], list[Finding]]


def run(
    subject: Subject,
    clients: Clients,
    groups: Mapping[str, Mapping[str, Any]],
    mask: Callable[[str], None] = lambda _: None,
) -> list[Finding]:
    """Every check's findings, in a fixed order (failures are not sorted first: the order is the reading order
    of a task definition). `groups`: the service's target groups as DescribeTargetGroups gave them."""
    size = fargate_size(subject.document)
    checks: list[Check] = [
        lambda: service.controller(subject, clients),
        lambda: [size] if size is not None else [],
        lambda: iam.check(subject, clients),
        lambda: images.check(subject, clients, mask),
        lambda: secrets.check(subject, clients),
        lambda: logs.check(subject, clients),
        lambda: service.network(subject, clients),
        lambda: service.target_groups(subject, clients, groups),
    ]
    with ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="ecs-ship-verify") as pool:
        futures = [pool.submit(check) for check in checks]
        return [finding for future in futures for finding in future.result()]
