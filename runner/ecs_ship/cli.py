"""The `ecs-ship` command: arguments, the one error handler and the exit codes.

Exit codes: 0 ok, 1 deploy failed (rolled back or not), 2 bad input (spec, arguments, credentials; no AWS
write was made), 3 unexpected error, 130 interrupted. Library modules raise; only ``main`` decides what a
failure prints and returns. The commands themselves live in ``commands/``, one file each.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path

import botocore.exceptions

from . import __version__, aws, durations, ratelimit, signals
from .commands import command_for
from .context import Context
from .errors import DeployError, DeploymentFailed, InputError, SpecError
from .fanout import THREAD_PREFIX, InterruptedRun, run_services
from .gha import Reporter
from .spec import ServiceSpec, Spec, load_spec
from .spec.tags import DOCKER_TAG
from .summary import api_usage, summarise_interrupted, write_outputs, write_report


def image_tag(text: str) -> str:
    # Anyone who can dispatch the workflow chooses --image-tag: a newline in it would reach `::group::` lines
    # and inject workflow commands, so it must be a Docker tag and nothing else.
    if not DOCKER_TAG.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Docker tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')"
        )
    return text


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    # nan never compares as elapsed and inf never ends: both would poll forever.
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive, finite number of seconds")
    return value


def keep_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1 revision is kept (the one the service runs)")
    return value


# --------------------------------------------------------------------------------------------
# arguments
# --------------------------------------------------------------------------------------------
def report_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--json",
        default=None,
        metavar="FILE",
        help="also write each service's outcome, revisions, milestones and phase times as JSON to FILE",
    )


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
        sp.add_argument("--image-tag", type=image_tag, default=None, help="deploy this existing tag (no build)")
        sp.add_argument("--skip-build", action="store_true", help="use the tag for this commit; fail if missing")
        if name == "render":
            sp.add_argument(
                "--show-environment",
                action="store_true",
                help="print environment values (and other values that may be credentials) instead of ***",
            )
        if name in ("plan", "deploy"):
            sp.add_argument(
                "--no-verify",
                action="store_true",
                help="skip the pre-flight checks (roles, secrets, log groups, images, network, target groups)",
            )
        if name == "deploy":
            report_option(sp)
            sp.add_argument("--dry-run", action="store_true", help="same as `ecs-ship plan`")
            sp.add_argument("--timeout", type=seconds, default=None, help="seconds to wait (overrides wait.timeout)")
            sp.add_argument("--no-rollback", action="store_true", help="on failure leave the service as it is")
    sp = sub.add_parser("verify", help="check, read-only, what would make a deploy fail before it writes anything")
    common(sp)
    sp.add_argument("--image-tag", type=image_tag, default=None, help="check a deploy of this existing tag")
    sp = sub.add_parser("rollback", help="point the service back at a previous revision and watch it")
    common(sp)
    sp.add_argument("--to-revision", type=int, default=None, help="revision number (default: the previous one)")
    sp.add_argument("--timeout", type=seconds, default=None)
    report_option(sp)
    sp = sub.add_parser("status", help="deployments, tasks, target health and the URL")
    common(sp)
    sp = sub.add_parser(
        "doctor", help="what each setting of the service costs every deploy, and what would make deploys fast"
    )
    common(sp)
    sp.add_argument("--json", action="store_true", help="print one JSON document per service instead of the table")
    sp.add_argument(
        "--run-local",
        action="store_true",
        help="also run the task a deploy would register on the local Docker engine and ask it each health check",
    )
    sp = sub.add_parser("logs", help="the service's CloudWatch log lines, prefixed by task and container")
    common(sp)
    sp.add_argument(
        "--since",
        type=durations.since,
        default=durations.DEFAULT_SINCE,
        metavar="DURATION",
        help=f"lines written this long ago or later: 30s, 10m, 2h, 1d or seconds (default: {durations.DEFAULT_SINCE})",
    )
    sp.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new lines, of new tasks too, until Ctrl-C"
    )
    sp.add_argument("--task", default=None, metavar="ID", help="only this task: its id, ARN or a unique id prefix")
    sp.add_argument("--timestamps", action="store_true", help="begin each line with when it was written (UTC)")
    sp = sub.add_parser("continue", help="go on with a deployment held at a PAUSE lifecycle hook, and watch it")
    common(sp)
    sp.add_argument("--rollback", action="store_true", help="roll the held deployment back instead")
    sp.add_argument("--timeout", type=seconds, default=None, help="seconds to wait (overrides wait.timeout)")
    sp.add_argument("--no-rollback", action="store_true", help="if it fails after going on, leave it as it is")
    report_option(sp)
    sp = sub.add_parser("prune", help="deregister old task-definition revisions (never the ones in use)")
    common(sp)
    sp.add_argument("--keep", type=keep_count, default=None, help="revisions to keep (overrides keep_revisions)")
    sp.add_argument("--dry-run", action="store_true", help="say what would be deregistered; change nothing")
    sp = sub.add_parser("run-local", help="run the task definition a deploy would register on the local Docker engine")
    common(sp)
    sp.add_argument(
        "--image-tag", type=image_tag, default=None, help="run this existing tag, pulled from the registry (no build)"
    )
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
    command = command_for(ctx.args)
    if not command.parallel and len(services) != 1:
        raise InputError(
            f"failed to choose a service for {ctx.args.command}: the spec has several",
            fix="pick one with --service NAME: " + ", ".join(s.name for s in services),
        )
    spent = ratelimit.SHARED.usage()
    try:
        failures = run_services(ctx, spec, services, command)
    except InterruptedRun as exc:
        ctx.out.end_groups()
        summarise_interrupted(ctx, services)
        for f in exc.failures:
            report(ctx.out, f.error, label=f.service.name if len(services) > 1 else None)
        return 130
    finally:
        if command.watches:
            api_usage(ctx, spent)
    for f in failures:
        report(ctx.out, f.error, label=f.service.name if len(services) > 1 else None)
    # Each service's failure was reported; the worst exit code wins.
    return max((exit_code(f.error) for f in failures), default=0)


def exit_code(exc: BaseException) -> int:
    if isinstance(exc, DeployError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if aws.is_credential_error(exc):
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
    elif aws.is_credential_error(exc):
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
    try:
        # Ctrl-C and a cancelled CI job's SIGTERM both cancel: the services stop at their next check and the
        # run ends in the state its message names (see fanout; run-local stops its container and exits 0).
        with signals.routed(ctx.interrupt):
            try:
                return run(ctx)
            finally:
                write_outputs(ctx)
                if isinstance(getattr(args, "json", None), str):
                    write_report(ctx, args.json)
    except KeyboardInterrupt:
        ctx.cancel.set()
        reporter.error("interrupted; ECS continues whatever deployment was started — `ecs-ship status` shows it")
        return 130
    except BaseException as exc:
        report(reporter, exc)
        return exit_code(exc)


def entry() -> None:
    code = main()
    if any(t.name.startswith(THREAD_PREFIX) and t.is_alive() for t in threading.enumerate()):
        # A build or push that ignores the cancel must not hold the exit: everything is reported and written.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
