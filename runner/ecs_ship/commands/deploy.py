"""`ecs-ship deploy`: the pipeline. Prepare (read-only: everything that can be bad input) for every service
before any service makes its first write; then build and push, register, run the pre_deploy tasks, update the
service and watch. deploy_end.py takes it from there: checks and post_deploy tasks once it serves, and on
failure the explanation and the rollback.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import aws, cache, deploy, engine, image, oneoff_run, plan, registry, shape, verify
from ..context import Context, rev
from ..errors import DeploymentFailed, Interrupted, SpecError
from ..spec import ImageSpec, ServiceSpec, Spec, secret_like_build_args
from ..summary import end

if TYPE_CHECKING:
    # The builder is imported where a build is decided on: a redeploy of an image the registry has needs none.
    from ..builder import Builder

# A digest-shaped stand-in for images not built yet: lets the plan be made (and its input errors found)
# before anything is built, pushed or written.
UNBUILT_DIGEST = "sha256:" + "0" * 64


@dataclass(frozen=True)
class ImageJob:
    spec: ImageSpec
    tag: str
    registry: registry.RegistryAPI
    digest: str | None  # already in the registry under `tag`
    labels: dict[str, str]  # for a build only: empty when the registry has the tag
    cache: cache.CacheFlags = cache.NO_CACHE  # decided while preparing: an entry the builder lacks is bad input


@dataclass(frozen=True)
class Prepared:
    svc: ServiceSpec
    clients: aws.Clients
    state: plan.CurrentState
    jobs: tuple[ImageJob, ...]


def prepare(ctx: Context, spec: Spec, svc: ServiceSpec, verify_first: bool = True) -> Prepared:
    """Read-only: clients, the service's state, registry credentials and tags, a trial plan and (``verify_first``,
    unless --no-verify) the pre-flight checks. Everything a user can get wrong fails here, for every service,
    before the first write of any."""
    ctx.stage(svc.name, "preparing")
    clients = aws.make_clients(svc.region)
    for other in spec.services:
        if other.region in (svc.region, None):
            ctx.board.watch(clients.region, other.cluster, other.service)  # read ten at a time (board.py)
    # The URL is output, and the smoke check's target: without a smoke check it is read after the writes.
    state = deploy.read_state(
        clients, svc.cluster, svc.service, svc.load_balancer.url, ctx.board, find_url=svc.smoke is not None
    )
    build_allowed = not (ctx.args.image_tag or getattr(ctx.args, "skip_build", False))
    # git is asked (up to three processes) only for what this deploy uses: the tag's placeholders when no
    # --image-tag names the tag, the image labels when something is built.
    values = functools.cache(lambda: image.tag_values(image.git_info(spec.path.parent), spec.env))
    labels = functools.cache(lambda: image.labels_for(values().get("git_sha", ""), image.source_url(spec.path.parent)))
    jobs = []
    running = {
        c["name"]: str(c.get("image", ""))
        for c in state.task_definition["taskDefinition"].get("containerDefinitions", [])
    }
    for index, img in enumerate(svc.images):
        tag = ctx.args.image_tag or image.image_tag(img, values())
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
        for name in secret_like_build_args(img):
            ctx.out.warning(
                f"build arg {name} of {img.container} looks like a secret: build args land in the image's history "
                "(`docker history` shows them); pass it as a build secret (`secrets:` under the image) instead",
                svc.name,
            )
        flags = cache.NO_CACHE
        if digest is None:
            # A build is coming: what the builder cannot do (a platform list without buildx, a cache entry it
            # has no use for) is found out now, not after other services have been deployed.
            from ..builder import require_multi_platform

            with ctx.ship_lock:
                how = detect_once(ctx, svc.name)
            require_multi_platform(how, img, f"images[{index}].platform", str(spec.path))
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
        jobs.append(ImageJob(img, tag, api, digest, labels() if digest is None else {}, flags))
    trial = {j.spec.container: f"{j.spec.repository}@{j.digest or UNBUILT_DIGEST}" for j in jobs}
    check_register_input(clients, plan.make_plan(svc, state, trial).document, str(spec.path))
    prepared = Prepared(svc, clients, state, tuple(jobs))
    if verify_first and not getattr(ctx.args, "no_verify", False):
        ctx.stage(svc.name, "running the pre-flight checks")
        preflight(ctx, prepared, quiet=True)
    return prepared


def preflight_findings(ctx: Context, p: Prepared) -> list[verify.Finding]:
    """The pre-flight checks (verify/) of what a deploy of `p` would register and update."""
    refs = {j.spec.container: f"{j.spec.repository}@{j.digest or UNBUILT_DIGEST}" for j in p.jobs}
    subject = verify.Subject(
        region=p.clients.region,
        cluster=p.svc.cluster,
        service=p.state.service,
        document=plan.make_plan(p.svc, p.state, refs).document,
        built={j.spec.container: j.spec.platform_arg for j in p.jobs},
    )
    groups = {g.arn: {"TargetGroupName": g.name, "TargetType": g.target_type} for g in p.state.target_groups}
    return verify.run(subject, p.clients, groups, mask=ctx.out.mask)


def preflight(ctx: Context, p: Prepared, *, quiet: bool) -> list[verify.Finding]:
    """Run the checks and say them (``quiet``: only what is not ok, then a count); raise PreflightFailed when one
    failed, before any write of any service (the preparations of a run all end before the first write)."""
    found = preflight_findings(ctx, p)
    label = p.svc.name
    for f in found:
        if not quiet or f.level != verify.OK:
            ctx.out.line(f"pre-flight {f.line()}", label)
    if quiet:
        passed = sum(1 for f in found if f.level == verify.OK)
        ctx.out.line(f"pre-flight: {passed} of {len(found)} checks passed", label)
    failures = verify.failed(found)
    if failures:
        raise verify.PreflightFailed(failures)
    return found


def check_register_input(clients: aws.Clients, document: Mapping[str, Any], file: str) -> None:
    """The task definition fits RegisterTaskDefinition's input (botocore's model of it), so a wrong type in an
    inline or file task definition is bad input now, not a failure after the build."""
    model = clients.ecs.meta.service_model.operation_model("RegisterTaskDefinition").input_shape
    found = list(shape.problems(document, model, "task_definition"))
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise SpecError(
            f"the task definition would be refused by RegisterTaskDefinition: {found[0]}{more}",
            file=file,
            key_path=found[0].split(":", 1)[0],
            fix="write it as `aws ecs register-task-definition` takes it (numbers and true/false unquoted, task-level "
            'cpu and memory as strings such as "256", lists as lists); `ecs-ship render` shows what would be sent',
        )


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


def read_url_meanwhile(ctx: Context, p: Prepared) -> Future[str | None]:
    """The service URL (the load balancer's listeners and rules: a read per listener), read while ECS rolls out
    rather than before the first write. It is the closing line's and the outputs', so a read that fails is a
    warning, never the deploy's failure."""
    found: Future[str | None] = Future()

    def read() -> None:
        try:
            found.set_result(deploy.find_service_url(p.clients, p.state.target_groups))
        except Exception as exc:
            ctx.out.warning(f"failed to read the service URL from its load balancer: {exc}", p.svc.name)
            found.set_result(None)

    threading.Thread(target=read, name="ecs-ship-url", daemon=True).start()
    return found


def detect_once(ctx: Context, label: str) -> Builder:
    """The builder, asked for once per run (callers hold ctx.ship_lock) and said once."""
    from ..builder import detect_builder

    if ctx.builder is None:
        ctx.builder = detect_builder()
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

    runs = rev(state.task_definition_arn)
    try:
        applied = deploy.apply(the_plan, clients, before_write=ctx.check_cancel, one_off=one_off)
    except DeploymentFailed as exc:
        # A pre_deploy task failed: the task says what went wrong with it, this what it means for the service.
        say("pre_deploy failed; why:")
        for line in exc.diagnosis:
            say(f"  {line}")
        result["diagnosis"] = [str(exc), *exc.diagnosis]
        kept = f"the service was not updated: it still runs {runs}"
        end(
            ctx,
            svc,
            f"failed before the switch: the service still runs {runs}",
            DeploymentFailed(str(exc), diagnosis=exc.diagnosis, fix=f"{kept}; {exc.fix}" if exc.fix else kept),
        )
    except Interrupted:
        end(
            ctx,
            svc,
            f"interrupted before the service was updated: it still runs {runs}",
            Interrupted(f"interrupted before {svc.service} was updated: it still runs {runs}"),
        )
    result["task-definition-arn"] = applied.task_definition_arn
    result["deployment-id"] = applied.deployment_id
    verb = "registered" if applied.registered else "reusing"
    say(f"{verb} {rev(applied.task_definition_arn)}; started deployment {applied.deployment_id}")
    # The watch, the checks and the rollback are imported once the service is updated, not before: the first
    # write does not wait for them, and ECS is already rolling out while they load.
    from ..rollout import watch_deployment
    from . import deploy_end

    d = deploy_end.Deployed(
        svc,
        clients,
        the_plan,
        applied,
        state.url,
        {c: ref.split("@", 1)[1] for c, ref in refs.items() if "@" in ref},
        ctx.args.timeout if ctx.args.timeout is not None else svc.wait.timeout,
        started,
        None if state.url or svc.smoke is not None or not state.target_groups else read_url_meanwhile(ctx, p),
    )
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
            d.timeout,
            started,
            service_deployment_arn=applied.service_deployment_arn,
            seed=applied.service,
        )
    except (Interrupted, KeyboardInterrupt):
        ctx.cancel.set()
        deploy_end.interrupted(ctx, d)
    except Exception as exc:
        if not aws.is_credential_error(exc):
            raise
        deploy_end.lost_credentials(ctx, d, exc)
    deploy_end.finish(ctx, d, outcome)
