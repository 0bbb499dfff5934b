"""`ecs-ship deploy`: the pipeline. Prepare (read-only: everything that can be bad input) for every service
before any service makes its first write; then build and push, register, update the service, watch, and on
failure explain and roll back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, NoReturn

from .. import aws, build, builder, cache, consistency, deploy, engine, image, oneoff_run, plan, registry, smoke, watch
from ..context import Context, rev
from ..errors import DeploymentFailed, Interrupted
from ..rollout import decide_rollback, roll_back, start_rollback, watch_deployment
from ..spec import ImageSpec, ServiceSpec, Spec
from ..summary import end, summarise
from . import prune

# A digest-shaped stand-in for images not built yet: lets the plan be made (and its input errors found)
# before anything is built, pushed or written.
UNBUILT_DIGEST = "sha256:" + "0" * 64


@dataclass(frozen=True)
class ImageJob:
    spec: ImageSpec
    tag: str
    registry: registry.RegistryAPI
    digest: str | None  # already in the registry under `tag`
    labels: dict[str, str]
    cache: cache.CacheFlags = cache.NO_CACHE  # decided while preparing: an entry the builder lacks is bad input


@dataclass(frozen=True)
class Prepared:
    svc: ServiceSpec
    clients: aws.Clients
    state: plan.CurrentState
    jobs: tuple[ImageJob, ...]


def prepare(ctx: Context, spec: Spec, svc: ServiceSpec) -> Prepared:
    """Read-only: clients, the service's state, registry credentials and tags, and a trial plan. Everything a
    user can get wrong fails here, for every service, before the first write of any."""
    ctx.stage(svc.name, "preparing")
    clients = aws.make_clients(svc.region)
    state = deploy.read_state(clients, svc.cluster, svc.service, svc.load_balancer.url)
    build_allowed = not (ctx.args.image_tag or getattr(ctx.args, "skip_build", False))
    values = image.tag_values(image.git_info(spec.path.parent), spec.env) if svc.images else {}
    labels = image.labels_for(values.get("git_sha", ""), image.source_url(spec.path.parent)) if svc.images else {}
    jobs = []
    running = {
        c["name"]: str(c.get("image", ""))
        for c in state.task_definition["taskDefinition"].get("containerDefinitions", [])
    }
    for index, img in enumerate(svc.images):
        tag = ctx.args.image_tag or image.image_tag(img, values)
        host, path = registry.split_repository(img.repository)
        creds = registry.resolve_credentials(host, clients=clients, mask=ctx.out.mask)
        api = registry.RegistryAPI(host, creds)
        digest = api.manifest_digest(path, tag)
        if digest is None and not build_allowed:
            raise image.missing_image(img.repository, tag)
        for secret in img.secrets:
            # Build output is the user's code: if it prints the secret, the log shows *** instead.
            if secret.env and os.environ.get(secret.env):
                ctx.out.mask(os.environ[secret.env])
        for name in build.secret_like_build_args(img):
            ctx.out.warning(
                f"build arg {name} of {img.container} looks like a secret: build args land in the image's history "
                "(`docker history` shows them); pass it as a build secret (`secrets:` under the image) instead",
                svc.name,
            )
        flags = cache.NO_CACHE
        if digest is None:
            # A build is coming: what the builder cannot do (a platform list without buildx, a cache entry it
            # has no use for) is found out now, not after other services have been deployed.
            with ctx.ship_lock:
                how = detect_once(ctx, svc.name)
            builder.require_multi_platform(how, img, f"images[{index}].platform", str(spec.path))
            previous = running.get(img.container, "")
            flags = cache.cache_flags(
                how.kind,
                img.cache_from,
                img.cache_to,
                previous=previous if previous.startswith(img.repository) else None,
                environ=os.environ,
            )
            for warning in flags.warnings:
                ctx.out.warning(warning, svc.name)
        jobs.append(ImageJob(img, tag, api, digest, labels, flags))
    trial = {j.spec.container: f"{j.spec.repository}@{j.digest or UNBUILT_DIGEST}" for j in jobs}
    plan.make_plan(svc, state, trial)
    return Prepared(svc, clients, state, tuple(jobs))


def ship_images(ctx: Context, p: Prepared) -> dict[str, str]:
    """Build (when the registry lacks the tag) and push each image; container -> repository@digest."""
    label = p.svc.name
    result = ctx.result(label)
    refs: dict[str, str] = {}
    for job in p.jobs:
        img, tag = job.spec, job.tag
        ctx.stage(label, f"building {img.repository}:{tag}")
        with ctx.ship_lock, ctx.out.group(f"image {img.repository}:{tag}"):
            shipped = ctx.shipped.get((img.repository, tag)) or image.ship(
                img,
                tag,
                builder=lambda: detect_once(ctx, label),
                docker_client=engine.connect,
                registry=job.registry,
                log=ctx.sayer(label),
                build_allowed=not (ctx.args.image_tag or ctx.args.skip_build),
                cache=job.cache,
                labels=job.labels,
                cancel=ctx.cancel,
                known_digest=job.digest,
            )
            ctx.shipped[(img.repository, tag)] = shipped
        ctx.out.line(f"image for {img.container}: {shipped.ref}", label)
        result.setdefault("images", {})[img.container] = shipped.ref
        result.setdefault("image", shipped.ref)
        result.setdefault("image-digest", shipped.digest)
        refs[img.container] = shipped.ref
    return refs


def detect_once(ctx: Context, label: str) -> builder.Builder:
    """The builder, asked for once per run (callers hold ctx.ship_lock) and said once."""
    if ctx.builder is None:
        ctx.builder = builder.detect_builder()
        ctx.out.line(ctx.builder.describe(), label)
    return ctx.builder


def execute(ctx: Context, p: Prepared) -> None:
    svc, clients, state = p.svc, p.clients, p.state
    label = svc.name
    say = ctx.sayer(label)
    result = ctx.result(label)
    started = ctx.clock()
    result["previous-task-definition-arn"] = state.task_definition_arn
    if state.url:
        result["service-url"] = state.url
    refs = ship_images(ctx, p)
    the_plan = plan.make_plan(svc, state, refs)
    for w in the_plan.warnings:
        ctx.out.warning(w, label)
    if the_plan.register:
        with ctx.out.group("task definition changes"):
            for line in the_plan.diff.splitlines():
                say(line)
    ctx.stage(label, "registering and updating the service")
    env = oneoff_run.Env(clients, say, ctx.check_cancel, ctx.clock, ctx.sleep, svc.wait.poll_interval)

    def one_off(call: plan.ApiCall, arn: str) -> None:
        job = oneoff_run.job_of(call, svc.pre_deploy, the_plan.document)
        ctx.stage(label, f"running pre_deploy task {job.name}")
        oneoff_run.run(env, job, arn)

    try:
        applied = deploy.apply(the_plan, clients, before_write=ctx.check_cancel, one_off=one_off)
    except DeploymentFailed as exc:
        end(ctx, svc, f"failed before the switch: the service still runs {rev(state.task_definition_arn)}", exc)
    except Interrupted:
        end(
            ctx,
            svc,
            f"interrupted before the service was updated: it still runs {rev(state.task_definition_arn)}",
            Interrupted(
                f"interrupted before {svc.service} was updated: it still runs {rev(state.task_definition_arn)}"
            ),
        )
    result["task-definition-arn"] = applied.task_definition_arn
    result["deployment-id"] = applied.deployment_id
    verb = "registered" if applied.registered else "reusing"
    say(f"{verb} {rev(applied.task_definition_arn)}; started deployment {applied.deployment_id}")
    timeout = ctx.args.timeout if ctx.args.timeout is not None else svc.wait.timeout
    try:
        # Inside the try: a cancel that lands just after update_service is handled like one during the watch.
        ctx.stage(label, "watching the deployment")
        outcome = watch_deployment(
            ctx,
            svc,
            clients,
            # Watched as the strategy it rolls out with, which the spec's `deployment:` may have just set.
            {**state.service, "deploymentConfiguration": the_plan.deployment},
            applied.deployment_id,
            the_plan.document,
            timeout,
            started,
            service_deployment_arn=applied.service_deployment_arn,
        )
    except (Interrupted, KeyboardInterrupt):
        ctx.cancel.set()
        interrupted(ctx, p, applied)
    except Exception as exc:
        if not aws.is_credential_error(exc):
            raise
        lost_credentials(ctx, p, applied, exc)
    result["milestones"] = outcome.milestones
    if outcome.verdict.kind == "paused":
        paused(ctx, svc, result, outcome.verdict)
        return
    failure = None if outcome.ok else outcome.verdict.reason
    diagnosis = outcome.diagnosis
    if failure is None:
        pushed = {c: ref.split("@", 1)[1] for c, ref in refs.items() if "@" in ref}
        sd = outcome.last.service_deployment if outcome.last is not None else None
        revision = sd.target_revision if sd is not None else None
        failure = consistency.check(clients, revision, pushed, say) or smoke.check(svc, state.url, say)
        diagnosis = [failure] if failure else []
    if failure is None:
        say(
            f"deployed {rev(applied.task_definition_arn)} in {ctx.clock() - started:.1f}s"
            + (f"; serving at {state.url}" if state.url else "")
        )
        result["outcome"] = "deployed"
        if svc.keep_revisions is not None:
            kept = {applied.previous_task_definition_arn: "what ran before this deploy"}
            if applied.rollback_target:
                kept[applied.rollback_target] = "what served before this deploy (its rollback target)"
            prune.after_deploy(ctx, svc, clients, svc.keep_revisions, kept)
        summarise(ctx, svc, result)
        return

    say("deployment failed; why:")
    for line in diagnosis:
        say(f"  {line}")
    result["diagnosis"] = diagnosis
    decision = decide_rollback(
        on_failure=svc.on_failure,
        no_rollback=ctx.args.no_rollback,
        verdict=None if outcome.ok else outcome.verdict,
        previous_arn=applied.rollback_target,
    )
    if not decision.roll_back:
        end(
            ctx,
            svc,
            f"failed, left as is ({decision.why})",
            DeploymentFailed(
                f"failed to deploy {svc.service}: {failure}",
                diagnosis=diagnosis,
                fix=f"the service was left on {rev(applied.task_definition_arn)} ({decision.why}); {back_to(applied)}",
            ),
        )
    target = applied.rollback_target
    assert target is not None  # decide_rollback never rolls back without one
    ctx.stage(label, "rolling back")
    try:
        rolled = roll_back(
            ctx, svc, clients, target, timeout, applied.undo, applied.service_deployment_arn, applied.deployment_id
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
    end(
        ctx,
        svc,
        "failed, rolled back" if rolled else "failed, rollback unhealthy",
        DeploymentFailed(
            f"failed to deploy {svc.service}: {failure}",
            diagnosis=diagnosis,
            rolled_back=rolled,
            fix=None if rolled else "the rollback did not become healthy either; check `ecs-ship status`",
        ),
    )


def paused(ctx: Context, svc: ServiceSpec, result: dict[str, Any], verdict: watch.Verdict) -> None:
    """Held at a PAUSE lifecycle hook: the deploy has done its part, and a person decides the rest. Neither a
    failure nor a rollback; exit 0 with outcome `paused`, so a workflow can ask for the decision."""
    say = ctx.sayer(svc.name)
    say(f"{verdict.reason}; it waits for you there")
    say("  `ecs-ship continue` goes on with it, `ecs-ship continue --rollback` rolls it back")
    result["outcome"] = "paused"
    summarise(ctx, svc, result)


def interrupted(ctx: Context, p: Prepared, applied: deploy.Applied) -> NoReturn:
    """Interrupted while watching (Ctrl-C, or a cancelled CI job's SIGINT then SIGTERM 7.5 s later).

    The new revision has not proven healthy. With `on_failure: rollback` the rollback is started — one call,
    well inside the 7.5 s before SIGTERM — and not watched; with `stop` or --no-rollback the deployment is
    left to ECS. Either way the message says which, and how to follow it.
    """
    svc = p.svc
    decision = decide_rollback(
        on_failure=svc.on_failure,
        no_rollback=ctx.args.no_rollback,
        verdict=None,
        previous_arn=applied.rollback_target,
    )
    if decision.roll_back:
        target = applied.rollback_target
        assert target is not None  # decide_rollback never rolls back without one
        back = start_rollback(
            ctx,
            svc,
            p.clients,
            target,
            applied.undo,
            applied.service_deployment_arn,
            applied.deployment_id,
            follow=False,
        )
        which = f"deployment {back.deployment_id}"
        if back.service_deployment_arn:
            which = f"ECS rolls back service deployment {back.service_deployment_arn.rsplit('/', 1)[-1]}"
        end(
            ctx,
            svc,
            f"interrupted, rolling back to {rev(target)}",
            Interrupted(
                f"interrupted while watching {svc.service}: started rolling back to "
                f"{rev(target)} ({which}); ECS completes it",
                fix="`ecs-ship status` shows it",
            ),
        )
    end(
        ctx,
        svc,
        f"interrupted, deployment {applied.deployment_id} continues ({decision.why})",
        Interrupted(
            f"interrupted while watching {svc.service}: deployment {applied.deployment_id} "
            f"({rev(applied.task_definition_arn)}) continues in ECS",
            fix=f"`ecs-ship status` shows it; {back_to(applied)}",
        ),
    )


def lost_credentials(ctx: Context, p: Prepared, applied: deploy.Applied, exc: BaseException) -> NoReturn:
    """AWS refused the credentials after the writes (a session token that expired mid-watch: the SDK refreshes
    what it can, so this is one it could not). Nothing more can be read or written: report the state, exit 1
    — not 2, which promises no write was made."""
    svc = p.svc
    end(
        ctx,
        svc,
        f"unknown: AWS credentials stopped working while deployment {applied.deployment_id} ran",
        DeploymentFailed(
            f"failed to watch {svc.service}: AWS refused the credentials "
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
