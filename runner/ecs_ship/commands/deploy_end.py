"""How `ecs-ship deploy` ends once its UpdateService was made (deploy.py gets it that far): held at a PAUSE hook;
serving, then checked (version consistency, the smoke check) and its `post_deploy` tasks run, then deployed;
failed, explained and rolled back or left as is; interrupted; or cut off from AWS by expired credentials.

A `post_deploy` task that fails is a failure of the deploy like a failed smoke check: the new revision serves
but did not do what the deploy promised, so the same rollback decision applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NoReturn

from .. import aws, consistency, deploy, oneoff_run, plan, smoke, watch
from ..context import Context, rev
from ..errors import DeployError, DeploymentFailed, Interrupted
from ..prune import deploy_keeps
from ..rollout import NewerDeployment, decide_rollback, roll_back, start_rollback
from ..spec import ServiceSpec
from ..summary import end, summarise
from . import prune


@dataclass(frozen=True)
class Deployed:
    """A deploy whose deployment was started: what its ending needs."""

    svc: ServiceSpec
    clients: aws.Clients
    plan: plan.Plan
    applied: deploy.Applied
    found_url: str | None  # the service URL as the preparation found it, for the smoke check and the closing line
    pushed: Mapping[str, str]  # container -> the digest pushed for it
    timeout: float  # how long a rollback is watched
    started: float  # ctx.clock() when the deploy began
    # The URL being read meanwhile, when the preparation left it for after the writes (see deploy.py).
    later_url: Future[str | None] | None = None

    @property
    def url(self) -> str | None:
        return self.later_url.result() if self.later_url is not None else self.found_url


@dataclass(frozen=True)
class Failure:
    reason: str  # one line, for the error message
    diagnosis: list[str]
    advice: str | None = None  # what to change about the failed step itself (e.g. a task's timeout)


def finish(ctx: Context, d: Deployed, outcome: watch.Outcome) -> None:
    """After the watch: success only once the checks passed and every post_deploy task exited 0; else the
    failure path. Raises (DeploymentFailed, Interrupted) for any other ending than deployed or paused."""
    svc = d.svc
    result = ctx.result(svc.name)
    result["milestones"] = outcome.milestones
    if d.url:
        result["service-url"] = d.url
    if outcome.verdict.kind == "paused":
        # Not serving yet: the checks and post_deploy tasks wait for it, and `continue` does not run them.
        paused(ctx, svc, result, outcome.verdict)
        return
    if not outcome.ok:
        failed(ctx, d, Failure(outcome.verdict.reason, outcome.diagnosis), outcome.verdict)
    sd = outcome.last.service_deployment if outcome.last is not None else None
    try:
        failure = serving(
            ctx, d, sd.target_revision if sd is not None else None, outcome.last.tasks if outcome.last else ()
        )
    except Exception as exc:
        # Writes were made: credentials that stopped working now are exit 1 with the state said, never 2.
        if not aws.is_credential_error(exc):
            raise
        lost_credentials(ctx, d, exc, f"check {svc.service} once it served")
    if failure is not None:
        failed(ctx, d, failure, None)
    ctx.sayer(svc.name)(
        f"deployed {rev(d.applied.task_definition_arn)} in {ctx.clock() - d.started:.1f}s"
        + (f"; serving at {d.url}" if d.url else "")
    )
    result["outcome"] = "deployed"
    result["serving-task-definition-arn"] = d.applied.task_definition_arn
    if svc.keep_revisions is not None:
        kept = deploy_keeps(d.applied.previous_task_definition_arn, d.applied.rollback_target)
        prune.after_deploy(ctx, svc, d.clients, svc.keep_revisions, kept)
    summarise(ctx, svc, result)


def serving(ctx: Context, d: Deployed, revision: str | None, tasks: Iterable[watch.TaskState] = ()) -> Failure | None:
    """The new revision serves: check it (the digests its running ``tasks`` report, else those ECS resolved for
    service revision ``revision``; the smoke check), then run the post_deploy tasks in order; the first failure,
    or None."""
    say = ctx.sayer(d.svc.name)
    found = consistency.check(d.clients, revision, d.pushed, say, tasks) or smoke.check(d.svc, d.url, say)
    if found:
        return Failure(found, [found])
    return post_deploy(ctx, d)


def post_deploy(ctx: Context, d: Deployed) -> Failure | None:
    """Run the plan's post_deploy tasks with the new revision; the first that fails (it is the last run)."""
    svc, label = d.svc, d.svc.name
    env = oneoff_run.Env(d.clients, ctx.sayer(label), ctx.check_cancel, ctx.clock, ctx.sleep, svc.wait.poll_interval)
    for call in d.plan.after:
        if call.operation != "run_task":
            # Only post_deploy tasks are made here; another kind of call needs its own runner, not a silent skip.
            raise DeployError(f"failed to make {call.summary()}: the deploy has no runner for it")
        job = oneoff_run.job_of(call, svc.post_deploy, d.plan.document)
        doing = f"during post_deploy task {job.name} of {svc.service}"
        try:
            ctx.stage(label, f"running post_deploy task {job.name}")
            oneoff_run.run(env, job, d.applied.task_definition_arn)
        except DeploymentFailed as exc:
            return Failure(str(exc), [str(exc), *exc.diagnosis], exc.fix)
        except (Interrupted, KeyboardInterrupt):
            ctx.cancel.set()
            interrupted(ctx, d, doing)
        except Exception as exc:
            if not aws.is_credential_error(exc):
                raise
            lost_credentials(ctx, d, exc, f"run post_deploy task {job.name} of {svc.service}")
    return None


def failed(ctx: Context, d: Deployed, failure: Failure, verdict: watch.Verdict | None) -> NoReturn:
    """Explain, then roll back unless told not to (or unsafe: see decide_rollback), and raise. ``verdict`` is the
    watch's when the deployment itself failed, None when it served and a check or post_deploy task failed."""
    svc, applied = d.svc, d.applied
    say = ctx.sayer(svc.name)
    result = ctx.result(svc.name)
    say("deployment failed; why:")
    for line in failure.diagnosis:
        say(f"  {line}")
    result["diagnosis"] = failure.diagnosis
    decision = decide_rollback(
        on_failure=svc.on_failure,
        no_rollback=ctx.args.no_rollback,
        verdict=verdict,
        previous_arn=applied.rollback_target,
    )
    if not decision.roll_back:
        end(
            ctx,
            svc,
            f"failed, left as is ({decision.why})",
            DeploymentFailed(
                f"failed to deploy {svc.service}: {failure.reason}",
                diagnosis=failure.diagnosis,
                fix=_advice(
                    failure,
                    f"the service was left on {rev(applied.task_definition_arn)} ({decision.why}); {back_to(applied)}",
                ),
            ),
        )
    target = applied.rollback_target
    assert target is not None  # decide_rollback never rolls back without one
    ctx.stage(svc.name, "rolling back")
    try:
        rolled = roll_back(
            ctx,
            svc,
            d.clients,
            target,
            d.timeout,
            applied.undo,
            applied.service_deployment_arn,
            applied.deployment_id,
        )
    except NewerDeployment as exc:
        end(
            ctx,
            svc,
            "failed, not rolled back: a newer deployment replaced it",
            DeploymentFailed(f"failed to deploy {svc.service}: {failure.reason}; {exc}", diagnosis=failure.diagnosis),
        )
    except (Interrupted, KeyboardInterrupt):
        ctx.cancel.set()
        deployment = result.get("rollback-deployment-id", "?")
        end(
            ctx,
            svc,
            f"failed, interrupted while rolling back (deployment {deployment} continues in ECS)",
            Interrupted(
                f"interrupted while rolling {svc.service} back to {rev(target)}: "
                f"deployment {deployment} continues in ECS",
                fix="`ecs-ship status` shows it",
            ),
        )
    if rolled:
        result["serving-task-definition-arn"] = target
    end(
        ctx,
        svc,
        "failed, rolled back" if rolled else "failed, rollback unhealthy",
        DeploymentFailed(
            f"failed to deploy {svc.service}: {failure.reason}",
            diagnosis=failure.diagnosis,
            rolled_back=rolled,
            fix=_advice(
                failure, None if rolled else "the rollback did not become healthy either; check `ecs-ship status`"
            ),
        ),
    )


def _advice(failure: Failure, fix: str | None) -> str | None:
    return "; ".join(f for f in (failure.advice, fix) if f) or None


def paused(ctx: Context, svc: ServiceSpec, result: dict[str, Any], verdict: watch.Verdict) -> None:
    """Held at a PAUSE lifecycle hook: the deploy has done its part, and a person decides the rest. Neither a
    failure nor a rollback; exit 0 with outcome `paused`, so a workflow can ask for the decision."""
    say = ctx.sayer(svc.name)
    say(f"{verdict.reason}; it waits for you there")
    say("  `ecs-ship continue` goes on with it, `ecs-ship continue --rollback` rolls it back")
    result["outcome"] = "paused"
    summarise(ctx, svc, result)


def interrupted(ctx: Context, d: Deployed, doing: str | None = None) -> NoReturn:
    """Interrupted after UpdateService (Ctrl-C, or a cancelled CI job's SIGINT then SIGTERM 7.5 s later): while
    watching, or ``doing`` something once it served (a post_deploy task, which was stopped already).

    The new revision has not proven itself. With `on_failure: rollback` the rollback is started — one call,
    well inside the 7.5 s before SIGTERM — and not watched; with `stop` or --no-rollback the deployment is
    left to ECS. Either way the message says which, and how to follow it.
    """
    svc, applied = d.svc, d.applied
    doing = doing or f"while watching {svc.service}"
    decision = decide_rollback(
        on_failure=svc.on_failure,
        no_rollback=ctx.args.no_rollback,
        verdict=None,
        previous_arn=applied.rollback_target,
    )
    if decision.roll_back:
        target = applied.rollback_target
        assert target is not None  # decide_rollback never rolls back without one
        try:
            back = start_rollback(
                ctx,
                svc,
                d.clients,
                target,
                applied.undo,
                applied.service_deployment_arn,
                applied.deployment_id,
                follow=False,
            )
        except NewerDeployment as exc:
            end(
                ctx,
                svc,
                "interrupted; a newer deployment replaced this one",
                Interrupted(f"interrupted {doing}: {exc}", fix=exc.fix),
            )
        which = f"deployment {back.deployment_id}"
        if back.service_deployment_arn:
            which = f"ECS rolls back service deployment {back.service_deployment_arn.rsplit('/', 1)[-1]}"
        end(
            ctx,
            svc,
            f"interrupted, rolling back to {rev(target)}",
            Interrupted(
                f"interrupted {doing}: started rolling back to {rev(target)} ({which}); ECS completes it",
                fix="`ecs-ship status` shows it",
            ),
        )
    end(
        ctx,
        svc,
        f"interrupted, deployment {applied.deployment_id} continues ({decision.why})",
        Interrupted(
            f"interrupted {doing}: deployment {applied.deployment_id} "
            f"({rev(applied.task_definition_arn)}) continues in ECS",
            fix=f"`ecs-ship status` shows it; {back_to(applied)}",
        ),
    )


def lost_credentials(ctx: Context, d: Deployed, exc: BaseException, doing: str | None = None) -> NoReturn:
    """AWS refused the credentials after the writes (a session token that expired mid-watch: the SDK refreshes
    what it can, so this is one it could not). Nothing more can be read or written: report the state, exit 1
    — not 2, which promises no write was made."""
    svc, applied = d.svc, d.applied
    end(
        ctx,
        svc,
        f"unknown: AWS credentials stopped working while deployment {applied.deployment_id} ran",
        DeploymentFailed(
            f"failed to {doing or f'watch {svc.service}'}: AWS refused the credentials "
            f"({aws.error_code(exc) or type(exc).__name__}); deployment {applied.deployment_id} "
            f"({rev(applied.task_definition_arn)}) continues in ECS, not rolled back",
            fix="use credentials that outlive the deploy (configure-aws-credentials role-duration-seconds), then "
            f"`ecs-ship status`; {back_to(applied)}",
        ),
    )


def back_to(applied: deploy.Applied) -> str:
    """How a user returns the service to what served before, for the closing advice."""
    if applied.rollback_target is None:
        return "no deployment of the service had completed before; `ecs-ship rollback --to-revision N` picks one"
    number = applied.rollback_target.rsplit(":", 1)[-1]
    return f"`ecs-ship rollback --to-revision {number}` returns it to {rev(applied.rollback_target)}"
