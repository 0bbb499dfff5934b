"""The `ecs-ship` command: argument parsing, the stages in order, and the one error handler.

Exit codes: 0 ok, 1 deploy failed (rolled back or not), 2 bad input (spec, arguments, credentials; no AWS
write was made), 3 unexpected error, 130 interrupted. Library modules raise; only ``main`` decides what a
failure prints and returns.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.exceptions
import requests

from . import __version__, aws, deploy, image, local, plan, watch
from .errors import DeployError, DeploymentFailed, InputError, SpecError
from .gha import Reporter
from .spec import ServiceSpec, Spec, load_spec


class Interrupted(DeployError):
    exit_code = 130


# --------------------------------------------------------------------------------------------
# arguments
# --------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ecs-ship",
        description="Ship a Docker image to an ECS service behind an ALB and prove it healthy.",
    )
    p.add_argument("--version", action="version", version=f"ecs-ship {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--spec", default="ecs-ship.yml", help="deploy spec (default: ecs-ship.yml)")
        sp.add_argument("--env", default=None, help="environment overlay from the spec's `environments:`")
        sp.add_argument(
            "--service",
            action="append",
            default=None,
            metavar="NAME",
            help="only this service of a multi-service spec (repeatable)",
        )

    sp = sub.add_parser("validate", help="check the spec and print what it resolves to")
    common(sp)
    for name, text in (
        ("plan", "print the exact API calls a deploy would make; no writes"),
        ("render", "print the task definition a deploy would register"),
        ("deploy", "build, push, register, deploy and watch until healthy"),
    ):
        sp = sub.add_parser(name, help=text)
        common(sp)
        sp.add_argument("--image-tag", default=None, help="deploy this existing tag (no build)")
        sp.add_argument("--skip-build", action="store_true", help="use the tag for this commit; fail if missing")
        if name == "deploy":
            sp.add_argument("--dry-run", action="store_true", help="same as `ecs-ship plan`")
            sp.add_argument("--timeout", type=float, default=None, help="seconds to wait (overrides wait.timeout)")
            sp.add_argument("--no-rollback", action="store_true", help="on failure leave the service as it is")
    sp = sub.add_parser("rollback", help="point the service back at a previous revision and watch it")
    common(sp)
    sp.add_argument("--to-revision", type=int, default=None, help="revision number (default: the previous one)")
    sp.add_argument("--timeout", type=float, default=None)
    sp = sub.add_parser("status", help="deployments, tasks, target health and the URL")
    common(sp)
    sp = sub.add_parser("run-local", help="run the task definition a deploy would register on the local Docker engine")
    common(sp)
    sp.add_argument("--image-tag", default=None, help="run this existing tag, pulled from the registry (no build)")
    sp.add_argument(
        "--mount",
        action="append",
        default=[],
        metavar="SRC:DST[:ro]",
        help="bind-mount SRC (relative to the current folder) at DST in the containers the spec builds, "
        "for development only (repeatable)",
    )
    sp.add_argument(
        "--env-file",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="KEY=VALUE lines set in every container, e.g. values for secrets that are not fetched (repeatable)",
    )
    sp.add_argument("--port", type=int, default=None, help="serve the main container on this port of 127.0.0.1")
    return p


@dataclass
class Context:
    args: argparse.Namespace
    out: Reporter
    cancel: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.time
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Services of one spec often share an image: build and push each repository:tag once.
    shipped: dict[tuple[str, str], image.ShippedImage] = field(default_factory=dict)
    ship_lock: threading.Lock = field(default_factory=threading.Lock)

    def sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise Interrupted("interrupted")


# --------------------------------------------------------------------------------------------
# the stages of one service
# --------------------------------------------------------------------------------------------
def _rev(arn: str | None) -> str:
    """`family:revision` (or a task/deployment id) from an ARN, for messages."""
    return arn.rsplit("/", 1)[-1] if arn else "?"


def sayer(ctx: Context, label: str) -> Callable[[str], None]:
    """Every line of a service carries its label, so parallel deploys stay readable."""

    def say(line: str) -> None:
        ctx.out.line(line, label)

    return say


def resolve_images(
    ctx: Context, svc: ServiceSpec, spec: Spec, state: plan.CurrentState, clients: aws.Clients, *, dry_run: bool
) -> dict[str, str]:
    args = ctx.args
    label = svc.name
    if not svc.images:
        return {}
    values = image.tag_values(image.git_info(spec.path.parent), spec.env)
    refs: dict[str, str] = {}
    current_images = {
        c["name"]: c.get("image", "") for c in state.task_definition["taskDefinition"].get("containerDefinitions", [])
    }
    for img in svc.images:
        tag = args.image_tag or image.image_tag(img, values)
        host, path = image.split_repository(img.repository)
        creds = image.resolve_credentials(host, clients=clients, mask=ctx.out.mask)
        registry = image.RegistryAPI(host, creds)
        if dry_run:
            digest = registry.manifest_digest(path, tag)
            refs[img.container] = f"{img.repository}@{digest}" if digest else f"{img.repository}:{tag} (to be built)"
            continue
        previous = current_images.get(img.container, "")
        cache = [previous] if previous.startswith(img.repository) else []
        with ctx.ship_lock, ctx.out.group(f"image {img.repository}:{tag}"):
            shipped = ctx.shipped.get((img.repository, tag)) or image.ship(
                img,
                tag,
                docker_client=_docker,
                registry=registry,
                log=sayer(ctx, label),
                build_allowed=not (args.image_tag or args.skip_build),
                cache_from=cache,
                labels={"org.opencontainers.image.revision": values.get("git_sha", "")},
            )
            ctx.shipped[(img.repository, tag)] = shipped
        ctx.out.line(f"image for {img.container}: {shipped.ref}", label)
        ctx.results.setdefault(label, {}).setdefault("images", {})[img.container] = shipped.ref
        ctx.results[label].setdefault("image", shipped.ref)
        ctx.results[label].setdefault("image-digest", shipped.digest)
        refs[img.container] = shipped.ref
    return refs


def _docker() -> Any:
    """The engine, pinged; called only when something is built or run."""
    import docker
    import docker.errors

    try:
        client = docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise InputError(f"failed to reach a Docker engine: {exc}", fix="start Docker or set DOCKER_HOST") from exc
    return client


def watch_deployment(
    ctx: Context,
    svc: ServiceSpec,
    clients: aws.Clients,
    service: Mapping[str, Any],
    deployment_id: str,
    task_definition: Mapping[str, Any],
    timeout: float,
    since: float,
) -> watch.Outcome:
    """Follow one deployment; `service` is a describe_services entry already read (its target groups)."""
    goal = watch.Goal(deployment_id, svc.wait.until, watch.bindings_of(service))
    watcher = watch.Watcher(
        reader=watch.Reader(clients, svc.cluster, svc.service, ctx.clock),
        goal=goal,
        timeout=timeout,
        interval=svc.wait.poll_interval,
        say=sayer(ctx, svc.name),
        clock=ctx.clock,
        sleep=ctx.sleep,
        log_tail=watch.log_tail_reader(clients, task_definition),
        since=since,
        progress=ctx.out.progress if ctx.out.live else None,
    )
    return watcher.run()


def smoke_check(ctx: Context, svc: ServiceSpec, url: str | None) -> str | None:
    """None when the check passes (or is off); else why it failed."""
    if svc.smoke is None:
        return None
    if not url:
        return "smoke check: the service has no load balancer URL to check"
    target = url.rstrip("/") + svc.smoke.path
    try:
        resp = requests.get(target, timeout=svc.smoke.timeout)
    except requests.RequestException as exc:
        return f"smoke check: GET {target} failed: {exc}"
    if resp.status_code != svc.smoke.expect_status:
        return f"smoke check: GET {target} answered {resp.status_code}, expected {svc.smoke.expect_status}"
    if svc.smoke.contains and svc.smoke.contains not in resp.text:
        return f"smoke check: GET {target} did not contain {svc.smoke.contains!r}"
    ctx.out.line(f"smoke check: GET {target} -> {resp.status_code}", svc.name)
    return None


def deploy_service(ctx: Context, spec: Spec, svc: ServiceSpec) -> None:
    args = ctx.args
    label = svc.name
    say = sayer(ctx, label)
    clients = aws.make_clients(svc.region)
    state = deploy.read_state(clients, svc.cluster, svc.service)
    dry_run = args.command in ("plan", "render") or getattr(args, "dry_run", False)
    refs = resolve_images(ctx, svc, spec, state, clients, dry_run=dry_run)
    the_plan = plan.make_plan(svc, state, refs)
    for w in the_plan.warnings:
        ctx.out.warning(w, label)
    if args.command == "render":
        ctx.out.raw(json.dumps(the_plan.document, indent=2, default=str))
        return
    if dry_run:
        for line in the_plan.lines():
            ctx.out.raw(line)
        ctx.out.raw("dry run: nothing was changed")
        return

    started = ctx.clock()
    result = ctx.results.setdefault(label, {})
    result["previous-task-definition-arn"] = state.task_definition_arn
    if state.url:
        result["service-url"] = state.url
    if the_plan.register:
        with ctx.out.group("task definition changes"):
            for line in the_plan.diff.splitlines():
                say(line)
    applied = deploy.apply(the_plan, clients)
    result["task-definition-arn"] = applied.task_definition_arn
    result["deployment-id"] = applied.deployment_id
    verb = "registered" if applied.registered else "reusing"
    say(f"{verb} {_rev(applied.task_definition_arn)}; started deployment {applied.deployment_id}")
    timeout = args.timeout if args.timeout is not None else svc.wait.timeout
    try:
        outcome = watch_deployment(
            ctx, svc, clients, state.service, applied.deployment_id, the_plan.document, timeout, started
        )
    except (Interrupted, KeyboardInterrupt):
        ctx.cancel.set()
        raise Interrupted(
            f"interrupted while watching {svc.service}: deployment {applied.deployment_id} "
            f"({_rev(applied.task_definition_arn)}) continues in ECS",
            fix=f"`ecs-ship status` shows it; `ecs-ship rollback` returns to "
            f"{_rev(applied.previous_task_definition_arn)}",
        ) from None
    result["milestones"] = outcome.milestones
    failure = None if outcome.ok else outcome.verdict.reason
    diagnosis = outcome.diagnosis
    if failure is None:
        failure = smoke_check(ctx, svc, state.url)
        diagnosis = [failure] if failure else []
    if failure is None:
        say(
            f"deployed {_rev(applied.task_definition_arn)} in {ctx.clock() - started:.1f}s"
            + (f"; serving at {state.url}" if state.url else "")
        )
        result["outcome"] = "deployed"
        summarise(ctx, svc, result)
        return

    say("deployment failed; why:")
    for line in diagnosis:
        say(f"  {line}")
    rollback = svc.on_failure == "rollback" and not args.no_rollback
    if not rollback:
        result["outcome"] = "failed, left as is"
        result["diagnosis"] = diagnosis
        summarise(ctx, svc, result)
        raise DeploymentFailed(
            f"failed to deploy {svc.service}: {failure}",
            diagnosis=diagnosis,
            fix=f"the service was left on {_rev(applied.task_definition_arn)}; "
            "`ecs-ship rollback` returns to the previous revision",
        )
    rolled = roll_back(ctx, svc, clients, applied.previous_task_definition_arn, timeout)
    result["outcome"] = "failed, rolled back" if rolled else "failed, rollback unhealthy"
    result["diagnosis"] = diagnosis
    summarise(ctx, svc, result)
    raise DeploymentFailed(
        f"failed to deploy {svc.service}: {failure}",
        diagnosis=diagnosis,
        rolled_back=rolled,
        fix=None if rolled else "the rollback did not become healthy either; check `ecs-ship status`",
    )


def summarise(ctx: Context, svc: ServiceSpec, result: dict[str, Any]) -> None:
    """The closing lines (and, in GitHub Actions, the job summary) of one service's deploy."""
    say = sayer(ctx, svc.name)
    milestones = result.get("milestones") or {}
    say(f"summary: {result.get('outcome')}")
    for container, ref in (result.get("images") or {}).items():
        say(f"  image {container}: {ref}")
    say(f"  revision: {_rev(result.get('previous-task-definition-arn'))} -> {_rev(result.get('task-definition-arn'))}")
    say(f"  deployment: {result.get('deployment-id')}")
    if milestones:
        say("  milestones: " + ", ".join(f"{k} {v:.1f}s" for k, v in milestones.items()))
    if result.get("service-url"):
        say(f"  url: {result['service-url']}")
    rows = [
        f"### ecs-ship: {svc.service} ({svc.cluster}) — {result.get('outcome')}",
        "",
        "| | |",
        "|---|---|",
        *(f"| image `{c}` | `{r}` |" for c, r in (result.get("images") or {}).items()),
        f"| revision | `{_rev(result.get('previous-task-definition-arn'))}` → "
        f"`{_rev(result.get('task-definition-arn'))}` |",
        f"| deployment | `{result.get('deployment-id')}` |",
        *(f"| {k} | {v:.1f} s |" for k, v in milestones.items()),
    ]
    if result.get("service-url"):
        rows.append(f"| URL | {result['service-url']} |")
    if result.get("diagnosis"):
        rows += ["", "**Why it failed**", "", "```", *result["diagnosis"], "```"]
    ctx.out.summary("\n".join(rows) + "\n")


def roll_back(ctx: Context, svc: ServiceSpec, clients: aws.Clients, target_arn: str, timeout: float) -> bool:
    say = sayer(ctx, svc.name)
    service = deploy.describe_service(clients, svc.cluster, svc.service)
    primary = next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None)
    started = ctx.clock()
    if primary is not None and primary.get("taskDefinition") == target_arn and primary.get("rolloutState") != "FAILED":
        # ECS's circuit breaker already rolled back: watch its deployment rather than start another.
        deployment_id = str(primary["id"])
        say(f"ECS is already rolling back to {_rev(target_arn)} (deployment {deployment_id})")
    else:
        deployment_id = deploy.start_deployment(clients, svc.cluster, svc.service, target_arn)
        say(f"rolling back to {_rev(target_arn)} (deployment {deployment_id})")
    td = clients.ecs.describe_task_definition(taskDefinition=target_arn)["taskDefinition"]
    outcome = watch_deployment(ctx, svc, clients, service, deployment_id, td, timeout, started)
    if outcome.ok:
        say(f"rolled back: {_rev(target_arn)} is serving again")
        ctx.results.setdefault(svc.name, {})["rolled-back-to"] = target_arn
        return True
    for line in outcome.diagnosis:
        say(f"rollback: {line}")
    return False


def rollback_command(ctx: Context, spec: Spec, svc: ServiceSpec) -> None:
    clients = aws.make_clients(svc.region)
    service = deploy.describe_service(clients, svc.cluster, svc.service)
    target = deploy.previous_revision(clients, service, ctx.args.to_revision)
    timeout = ctx.args.timeout if ctx.args.timeout is not None else svc.wait.timeout
    if not roll_back(ctx, svc, clients, target, timeout):
        raise DeploymentFailed(f"failed to roll back {svc.service} to {_rev(target)}")


def status_command(ctx: Context, spec: Spec, svc: ServiceSpec) -> None:
    clients = aws.make_clients(svc.region)
    state = deploy.read_state(clients, svc.cluster, svc.service)
    s = state.service
    out = ctx.out.raw
    out(
        f"service {svc.service} in cluster {svc.cluster} ({clients.region}): {s.get('status')}, "
        f"running {s.get('runningCount')}/{s.get('desiredCount')}, "
        f"revision {_rev(state.task_definition_arn)}"
    )
    for d in s.get("deployments", []):
        out(
            f"  deployment {d['id']} {d.get('status')}: {_rev(d.get('taskDefinition'))} "
            f"rollout {d.get('rolloutState')} running {d.get('runningCount')}/{d.get('desiredCount')} "
            f"failed {d.get('failedTasks', 0)}"
        )
    arns = clients.ecs.list_tasks(cluster=svc.cluster, serviceName=svc.service).get("taskArns", [])
    if arns:
        for t in clients.ecs.describe_tasks(cluster=svc.cluster, tasks=arns[:100]).get("tasks", []):
            out(
                f"  task {_rev(t['taskArn'])} {t.get('lastStatus')} "
                f"{_rev(t.get('taskDefinitionArn'))} (deployment {t.get('startedBy', '?')})"
            )
    for tg in state.target_groups:
        for d in clients.elbv2.describe_target_health(TargetGroupArn=tg.arn).get("TargetHealthDescriptions", []):
            th = d.get("TargetHealth", {})
            why = f" ({th.get('Reason')}: {th.get('Description')})" if th.get("Reason") else ""
            out(f"  target {d['Target']['Id']}:{d['Target'].get('Port')} in {tg.name}: {th.get('State')}{why}")
    out(f"  url: {state.url or '(no load balancer)'}")


def validate_command(ctx: Context, spec: Spec, svc: ServiceSpec) -> None:
    out = ctx.out.raw
    out(f"{svc.name}: service {svc.service} in cluster {svc.cluster}" + (f" ({svc.region})" if svc.region else ""))
    for img in svc.images:
        out(f"  builds {img.container}: {img.repository}:{img.tag} from {img.context} ({img.platform})")
    out(
        f"  task definition: {svc.task_definition.kind}"
        + (f" {svc.task_definition.path}" if svc.task_definition.path else "")
    )
    out(f"  waits until {svc.wait.until} (timeout {svc.wait.timeout:.0f}s); on failure: {svc.on_failure}")


class LocalTaskStopped(DeployError):
    """run-local ended because the task did. Exit 1 like a failed deploy: the container's own code (which may
    be 2 or 3) is in the message, so it is never mistaken for ecs-ship's bad-input or unexpected-error codes."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the local task stopped (exit code {code})", fix="its log lines above say why")
        self.container_exit_code = code


@contextmanager
def _cancel_on_signals(ctx: Context) -> Iterator[None]:
    """Ctrl-C and SIGTERM end run-local the normal way (stop, remove, exit 0), not as an interruption."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def cancel(signum: int, frame: object) -> None:
        ctx.cancel.set()

    previous = {s: signal.signal(s, cancel) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_local_command(ctx: Context, spec: Spec, svc: ServiceSpec) -> None:
    args = ctx.args
    try:
        clients: aws.Clients | None = aws.make_clients(svc.region)
    except InputError:
        clients = None  # only a `current` task definition needs AWS, and run_local says so then
    options = local.LocalOptions(
        image_tag=args.image_tag, mounts=tuple(args.mount), env_files=tuple(args.env_file), port=args.port
    )
    with _cancel_on_signals(ctx):
        code = local.run_local(
            svc,
            spec,
            options,
            docker_client=_docker(),
            say=sayer(ctx, svc.name),
            cancel=ctx.cancel,
            clients=clients,
            mask=ctx.out.mask,
        )
    if code:
        raise LocalTaskStopped(code)


COMMANDS: dict[str, Callable[[Context, Spec, ServiceSpec], None]] = {
    "run-local": run_local_command,
    "validate": validate_command,
    "plan": deploy_service,
    "render": deploy_service,
    "deploy": deploy_service,
    "rollback": rollback_command,
    "status": status_command,
}


# --------------------------------------------------------------------------------------------
# running every service, and the one error handler
# --------------------------------------------------------------------------------------------
def selected(spec: Spec, names: Sequence[str] | None) -> list[ServiceSpec]:
    if not names:
        return list(spec.services)
    known = {s.name: s for s in spec.services}
    missing = [n for n in names if n not in known]
    if missing:
        raise InputError(
            f"failed to select services: {', '.join(missing)} not in the spec", fix=f"choose from: {', '.join(known)}"
        )
    return [known[n] for n in names]


def run(ctx: Context) -> int:
    spec = load_spec(ctx.args.spec, env=ctx.args.env)
    services = selected(spec, ctx.args.service)
    if ctx.args.command == "run-local" and len(services) != 1:
        raise InputError(
            "failed to choose a service to run locally: the spec has several",
            fix="pick one with --service NAME: " + ", ".join(s.name for s in services),
        )
    command = COMMANDS[ctx.args.command]
    if len(services) == 1:
        command(ctx, spec, services[0])
        return 0
    # Several services deploy in parallel; each one's failure is reported, the worst exit code wins.
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=len(services)) as pool:
        futures = {pool.submit(command, ctx, spec, s): s for s in services}
        try:
            for fut in as_completed(futures):
                s = futures[fut]
                exc = fut.exception()
                if exc is not None:
                    errors.append(exc)
                    report(ctx.out, exc, label=s.name)
        except KeyboardInterrupt:
            ctx.cancel.set()
            raise
    if not errors:
        return 0
    return max(exit_code(e) for e in errors)


def exit_code(exc: BaseException) -> int:
    if isinstance(exc, DeployError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, aws.CREDENTIAL_ERRORS) or aws.error_code(exc) in aws.CREDENTIAL_CODES:
        return 2
    return 3


def report(out: Reporter, exc: BaseException, label: str | None = None) -> None:
    prefix = f"[{label}] " if label else ""
    if isinstance(exc, SpecError):
        out.error(
            prefix + str(exc) + (f"\n  fix: {exc.fix}" if exc.fix else ""),
            file=exc.file,
            line=exc.line,
            title="ecs-ship spec",
        )
    elif isinstance(exc, DeploymentFailed):
        text = prefix + str(exc)
        text += "\n  the service was rolled back to its previous revision" if exc.rolled_back else ""
        text += f"\n  fix: {exc.fix}" if exc.fix else ""
        out.error(text, title="ecs-ship deploy failed")
    elif isinstance(exc, DeployError):
        out.error(prefix + str(exc) + (f"\n  fix: {exc.fix}" if exc.fix else ""))
    elif isinstance(exc, aws.CREDENTIAL_ERRORS) or aws.error_code(exc) in aws.CREDENTIAL_CODES:
        out.error(
            prefix + f"failed to authenticate to AWS: {exc}\n  fix: configure credentials (AWS_PROFILE, "
            "aws-actions/configure-aws-credentials with OIDC, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
        )
    elif isinstance(exc, botocore.exceptions.ClientError):
        out.error(prefix + f"AWS refused a call: {exc}")
    else:
        out.error(prefix + f"unexpected error: {exc!r}\n" + "".join(traceback.format_exception(exc)))


def main(argv: Sequence[str] | None = None, *, out: Reporter | None = None) -> int:
    reporter = out or Reporter()
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return 0 if exc.code == 0 else 2
    ctx = Context(args=args, out=reporter)
    if threading.current_thread() is threading.main_thread():
        # A cancelled CI job gets SIGTERM: end the same known way as Ctrl-C.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        try:
            return run(ctx)
        finally:
            write_outputs(ctx)
    except KeyboardInterrupt:
        ctx.cancel.set()  # parallel deploys stop watching too
        reporter.error("interrupted; ECS continues whatever deployment was started — `ecs-ship status` shows it")
        return 130
    except BaseException as exc:
        report(reporter, exc)
        return exit_code(exc)


OUTPUTS = (
    "image",
    "image-digest",
    "task-definition-arn",
    "previous-task-definition-arn",
    "deployment-id",
    "service-url",
)


def write_outputs(ctx: Context) -> None:
    """Step outputs: per key for a single service; a JSON map by service name when there are several."""
    if not ctx.results:
        return
    if len(ctx.results) == 1:
        (result,) = ctx.results.values()
        for key in OUTPUTS:
            if result.get(key):
                ctx.out.output(key, str(result[key]))
    ctx.out.output(
        "results", json.dumps({k: {o: v.get(o) for o in OUTPUTS if v.get(o)} for k, v in ctx.results.items()})
    )


def entry() -> None:
    sys.exit(main())
