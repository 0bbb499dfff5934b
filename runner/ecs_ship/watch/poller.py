"""The watcher: polls until a verdict, prints what changed, and gathers the diagnosis of a failure."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .eta import schedule_of, serving_in, stable_in
from .model import Goal, Snapshot, TargetState, TaskState, Verdict
from .reader import Reader
from .rolling import (
    assess,
    benign_stop,
    describe_target,
    describe_task_failure,
    describe_unhealthy_task,
    is_failure,
    own_tasks,
    serves,
    serving_means,
    targets_of,
)


@dataclass
class Outcome:
    ok: bool
    verdict: Verdict
    milestones: dict[str, float]  # name -> seconds since the watch began
    diagnosis: list[str]
    last: Snapshot | None


@dataclass
class Watcher:
    reader: Reader
    goal: Goal
    timeout: float
    interval: float
    say: Callable[[str], None]
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    log_tail: Callable[[TaskState], list[str]] | None = None
    jitter: Callable[[], float] = field(default_factory=lambda: random.Random().random)
    since: float | None = None  # only events after this time are news
    progress: Callable[[str], None] | None = None  # a live one-line status, for terminals
    # Unhealthy targets seen while watching: ECS may stop the task (and drain its target) before the next
    # poll, and the diagnosis must still name the reason code.
    unhealthy_seen: dict[tuple[str, str, int], TargetState] = field(default_factory=dict, init=False, repr=False)
    # When each target of ours was first seen `initial`: its healthy verdict is due a schedule's time later.
    initial_since: dict[tuple[str, str, int], float] = field(default_factory=dict, init=False, repr=False)
    # When each target was first seen `draining` (the old tasks' as ours serve): gone a delay later.
    draining_since: dict[tuple[str, str, int], float] = field(default_factory=dict, init=False, repr=False)

    def run(self) -> Outcome:
        try:
            return self._run()
        finally:
            self.reader.close()
            if self.progress is not None:
                self.progress("")  # the status line must not outlive the watch

    def _run(self) -> Outcome:
        start = self.clock()
        since = self.since if self.since is not None else start
        seen_events: set[str] = set()
        tasks_seen: dict[str, str] = {}
        health_seen: dict[str, str] = {}
        stops_told: set[str] = set()
        targets_seen: dict[tuple[str, str, int], str] = {}
        deployment_line = ""
        service_deployment_line = ""
        milestones: dict[str, float] = {}
        last: Snapshot | None = None
        if not self.goal.target_groups and not self.goal.essential_checks:
            self.say(
                "the service has no load balancer and its task definition no container health check: "
                "a RUNNING task counts as serving"
            )
        while True:
            snap = self.reader.snapshot(self.goal)
            last = snap
            for e in reversed(snap.events):
                if e.id not in seen_events:
                    seen_events.add(e.id)
                    if e.at >= since - 1:
                        self.say(f"event: {e.message}")
            ours = next((d for d in snap.deployments if d.id == self.goal.deployment_id), None)
            if ours is not None and (ours.pending or ours.running or ours.failed):
                # Where the minutes went (the job summary's phases): ECS placed a task of ours.
                milestones.setdefault("first task placed", snap.at - start)
            if ours is not None:
                line = (
                    f"deployment {ours.id}: {ours.rollout_state or ours.status}, running {ours.running}/"
                    f"{ours.desired}, pending {ours.pending}, failed {ours.failed}"
                )
                if line != deployment_line:
                    deployment_line = line
                    self.say(line)
            sd = snap.service_deployment
            if sd is not None:
                line = f"service deployment {sd.id}: {sd.status}" + (
                    f" ({sd.lifecycle_stage})" if sd.lifecycle_stage else ""
                )
                if sd.breaker_failures:
                    line += f", circuit breaker {sd.breaker_failures}/{sd.breaker_threshold or '?'} failed tasks"
                if line != service_deployment_line:
                    service_deployment_line = line
                    self.say(line)
            for t in snap.tasks:
                if tasks_seen.get(t.arn) != t.last_status:
                    before = tasks_seen.get(t.arn)
                    tasks_seen[t.arn] = t.last_status
                    arrow = f"{before} -> {t.last_status}" if before else t.last_status
                    self.say(f"task {t.id}: {arrow}")
                    if t.last_status == "RUNNING":
                        milestones.setdefault("first task running", snap.at - start)
                benign = benign_stop(t) if t.desired_status == "STOPPED" else None
                if benign and t.arn not in stops_told:
                    stops_told.add(t.arn)
                    self.say(f"task {t.id} stopped, {benign}: not a failure of the new revision; ECS replaces it")
                if self.goal.essential_checks and health_seen.get(t.arn, "UNKNOWN") != t.health_status:
                    health_seen[t.arn] = t.health_status
                    self.say(f"task {t.id}: container health {t.health_status}")
                for tg in targets_of(t, self.goal, snap.targets):
                    key = (tg.target_group, tg.id, tg.port)
                    if tg.state == "unhealthy":
                        self.unhealthy_seen[key] = tg
                    if tg.state == "initial":
                        self.initial_since.setdefault(key, snap.at)
                    elif tg.state != "unused":
                        milestones.setdefault("first health check", snap.at - start)
                    desc = tg.state + (f" ({tg.reason})" if tg.reason else "")
                    if targets_seen.get(key) != desc:
                        targets_seen[key] = desc
                        self.say(f"target {tg.id}:{tg.port} in {tg.tg_name}: {desc}{self._expected(tg, snap.at)}")

            self._note_draining(snap)
            verdict = assess(snap, self.goal)
            if self.progress is not None:
                self.progress(self.status_line(snap, verdict, snap.at - start))
            if verdict.kind in ("serving", "stable"):
                if "serving" not in milestones:
                    milestones["serving"] = snap.at - start
                    means = serving_means(self.goal)
                    if self.goal.shifts_traffic:
                        means += ", and production traffic has moved to them"
                    self.say(f"serving: every new task is {means} ({milestones['serving']:.1f}s)")
                if verdict.kind == "stable" and "stable" not in milestones:
                    milestones["stable"] = snap.at - start
                    self.say(f"stable: the old deployment is drained ({milestones['stable']:.1f}s)")
                if self.goal.until == "serving" or verdict.kind == "stable":
                    return Outcome(True, verdict, milestones, [], last)
            if verdict.kind == "failed":
                return Outcome(False, verdict, milestones, self.diagnose(snap, verdict, since), last)
            if verdict.kind == "paused":
                # Held for a person (ContinueServiceDeployment): waiting on would only run into our timeout.
                return Outcome(True, verdict, milestones, [], last)
            elapsed = self.clock() - start
            if elapsed >= self.timeout:
                want = "stable" if self.goal.until == "stable" and "serving" in milestones else "serving"
                timed_out = Verdict(
                    "failed", f"timed out after {self.timeout:.0f}s waiting for the deployment to be {want}"
                )
                return Outcome(False, timed_out, milestones, self.diagnose(snap, timed_out, since), last)
            # Jitter spreads the polls of parallel deploys; the interval bounds the API rate.
            delay = self.interval * (0.8 + 0.4 * self.jitter())
            self.sleep(min(delay, max(0.0, self.timeout - elapsed)))

    def _note_draining(self, snap: Snapshot) -> None:
        """Old targets that began draining: said once, with when the last is expected gone (`stable`)."""
        fresh = [
            t
            for t in snap.targets
            if t.state == "draining" and (t.target_group, t.id, t.port) not in self.draining_since
        ]
        for t in fresh:
            self.draining_since[(t.target_group, t.id, t.port)] = snap.at
        due = stable_in(self.goal, self.draining_since, fresh, snap.at) if self.goal.until == "stable" else None
        if due is not None:
            delays = ", ".join(sorted({f"{d}s" for arn, d in self.goal.drain_delays}))
            self.say(
                f"{len(fresh)} old target(s) draining; stable expected in ~{due:.0f}s (deregistration delay {delays})"
            )

    def _expected(self, tg: TargetState, at: float) -> str:
        """For a target of ours first seen `initial`: when it is expected healthy, and by what schedule."""
        schedule = schedule_of(self.goal, tg.target_group)
        if tg.state != "initial" or schedule is None:
            return ""
        due = serving_in(self.goal, self.initial_since, [tg], at)
        return f"; healthy expected in ~{due:.0f}s ({schedule[1]} checks {schedule[0]}s apart)" if due else ""

    def status_line(self, snap: Snapshot, verdict: Verdict, elapsed: float) -> str:
        ours = next((d for d in snap.deployments if d.id == self.goal.deployment_id), None)
        mine = [t for t in own_tasks(snap, self.goal) if t.desired_status == "RUNNING"]
        targets = [tg for t in mine for tg in targets_of(t, self.goal, snap.targets)]
        healthy = sum(1 for tg in targets if tg.state == "healthy")
        running = f"{ours.running}/{ours.desired}" if ours else "?"
        due = serving_in(self.goal, self.initial_since, targets, snap.at) if verdict.kind == "waiting" else None
        drained = (
            stable_in(self.goal, self.draining_since, snap.targets, snap.at) if verdict.kind == "serving" else None
        )
        return (
            f"… {elapsed:5.1f}s  {verdict.kind:8} tasks running {running}  targets healthy {healthy}/"
            f"{max(len(targets), ours.desired if ours else 0)}  deployments {len(snap.deployments)}"
            + (f"  serving in ~{due:.0f}s" if due is not None else "")
            + (f"  stable in ~{drained:.0f}s" if drained is not None else "")
        )

    def diagnose(self, snap: Snapshot, verdict: Verdict, since: float) -> list[str]:
        lines: list[str] = [verdict.reason]
        mine = own_tasks(snap, self.goal)
        failed = [t for t in mine if is_failure(t)]
        # Running but not serving: an app's own last lines usually say why its checks fail.
        ailing = [t for t in mine if t.running and not serves(t, self.goal, snap.targets)]
        for t in (failed + ailing)[:3]:
            text = None  # a task only unhealthy in a target group: the target lines below say why
            if t in failed:
                text = describe_task_failure(t, self.goal)
            elif t.health_status == "UNHEALTHY":
                text = describe_unhealthy_task(t, self.goal)
            if text is not None and text != verdict.reason:
                lines.append(text)
            if self.log_tail is not None:
                tail = self.log_tail(t)
                if tail:
                    lines.append(f"last log lines of task {t.id}:")
                    lines += [f"  {line}" for line in tail]
        for t in mine:
            for tg in targets_of(t, self.goal, snap.targets):
                if tg.state != "healthy":
                    text = describe_target(tg)
                    if text not in lines:
                        lines.append(text)
        for tg in self.unhealthy_seen.values():
            text = describe_target(tg)
            if text not in lines:
                lines.append(text)
        ours = next((d for d in snap.deployments if d.id == self.goal.deployment_id), None)
        if ours is not None:
            lines.append(
                f"deployment {ours.id}: rollout {ours.rollout_state}, running {ours.running}/{ours.desired}, "
                f"failed tasks {ours.failed}"
            )
        recent = [e.message for e in snap.events if e.at >= since - 1][:5]
        if recent:
            lines.append("recent service events:")
            lines += [f"  {m}" for m in recent]
        return lines
