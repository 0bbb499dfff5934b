"""Run one command over the selected services: prepare them all, then execute them all, in parallel.

Every service is prepared (reads only) before any executes, so one service's bad input ends the run with exit
2 and no write for any service. Work runs in worker threads; the main thread only waits. Ctrl-C and SIGTERM
set the shared cancel flag (``Context.interrupt``) and the services get a few seconds to stop at their next
check (a watch starts its rollback then); whatever is still running after that — a build or push that cannot
be cancelled — is left behind, so that outputs and the summary are written before GitHub's SIGTERM (7.5 s
after its SIGINT) and SIGKILL (2.5 s after that).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from . import ratelimit
from .commands import Command
from .context import Context
from .errors import Interrupted
from .spec import ServiceSpec, Spec

THREAD_PREFIX = "ecs-ship-service"
GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Failure:
    service: ServiceSpec
    error: BaseException


def run_services(ctx: Context, spec: Spec, services: list[ServiceSpec], command: Command) -> list[Failure]:
    """Every service's failure (empty when all succeeded). Raises Interrupted only after the services had
    their grace period; their own reports (a rollback started, say) are in the failures it carries."""
    if not command.parallel:
        (svc,) = services
        command.execute(ctx, command.prepare(ctx, spec, svc))
        return []
    pool = ThreadPoolExecutor(max_workers=len(services), thread_name_prefix=THREAD_PREFIX)
    if command.watches:
        ratelimit.SHARED.starting(s.name for s in services)
    try:
        prepared, failures = _phase(ctx, pool, services, lambda s: command.prepare(ctx, spec, s))
        if failures:
            return failures
        _, failures = _phase(ctx, pool, services, lambda s: command.execute(ctx, prepared[s.name]))
        return failures
    finally:
        # Never wait here for threads that ignore the cancel; the process exit does not wait for them either.
        pool.shutdown(wait=False, cancel_futures=True)
        for svc in services:
            ratelimit.SHARED.started(svc.name)


class InterruptedRun(Interrupted):
    """The run was interrupted; `failures` holds what each service reported as it stopped."""

    def __init__(self, failures: list[Failure]) -> None:
        super().__init__("interrupted")
        self.failures = failures


def _phase(
    ctx: Context, pool: ThreadPoolExecutor, services: list[ServiceSpec], work: Callable[[ServiceSpec], Any]
) -> tuple[dict[str, Any], list[Failure]]:
    # Each service records its own outcome, so what is reported never depends on where in the main thread a
    # Ctrl-C landed (between two submits, say).
    outcomes: dict[str, tuple[bool, Any]] = {}
    lock = threading.Lock()
    all_done = threading.Event()

    def run(svc: ServiceSpec) -> None:
        try:
            outcome: tuple[bool, Any] = (True, work(svc))
        except BaseException as exc:
            outcome = (False, exc)
            ratelimit.SHARED.started(svc.name)  # failed before its deployment began: the others need not wait for it
        with lock:
            outcomes[svc.name] = outcome
            if len(outcomes) == len(services):
                all_done.set()

    for svc in services:
        pool.submit(run, svc)
    # Short waits: the main thread notices a signal's cancel within a quarter second.
    while not all_done.wait(0.25):
        if ctx.cancel.is_set():
            break
    if ctx.cancel.is_set():
        # Services stop at their next check (a watch starts its rollback then); a second signal (GitHub's
        # SIGTERM after its SIGINT) or the grace period ends the wait.
        deadline = time.monotonic() + GRACE_SECONDS
        while not all_done.wait(0.1) and time.monotonic() < deadline and ctx.interrupts < 2:
            pass
        with lock:
            seen = dict(outcomes)
        raise InterruptedRun(_collect(ctx, services, seen)[1])
    return _collect(ctx, services, outcomes)


def _collect(
    ctx: Context, services: list[ServiceSpec], outcomes: dict[str, tuple[bool, Any]]
) -> tuple[dict[str, Any], list[Failure]]:
    done: dict[str, Any] = {}
    failures: list[Failure] = []
    for svc in services:
        if svc.name not in outcomes:
            stage = ctx.result(svc.name).get("stage", "starting")
            failures.append(
                Failure(
                    svc,
                    Interrupted(
                        f"interrupted while {stage}; it was not waited for",
                        fix="`ecs-ship status` shows which revision the service runs",
                    ),
                )
            )
            continue
        ok, value = outcomes[svc.name]
        if ok:
            done[svc.name] = value
        else:
            failures.append(Failure(svc, value))
    return done, failures
