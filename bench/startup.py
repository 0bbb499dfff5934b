"""How soon does a redeploy start working? Time from process start to the first AWS write.

An unchanged commit (`ecs-ship deploy --image-tag TAG`, the image already in the registry) builds nothing, so
everything before its first write (RegisterTaskDefinition, or a pre_deploy RunTask) is start-up: imports, spec
loading, clients, the read-only prepare. Each run gets a fresh sandbox world, starts the CLI as a new process
and reads the sandbox's call ledger for when the first read and the first write arrived; the process is left
to finish its deploy before the next run starts. Also reported: the `-X importtime` total of
`import ecs_ship.cli` in a fresh interpreter (no sandbox involved).

    .venv/bin/python -m bench.startup [--runs 7] [--import-runs 9] [--runner DIR] [--source]

By default the runner is measured as the action installs it: `pip install` compiles every module, so the
runner's bytecode is compiled (into its __pycache__ folders, which git ignores) before measuring. --source
measures a checkout run with PYTHONDONTWRITEBYTECODE=1 instead: the runner's __pycache__ folders are removed
and every ecs_ship module is compiled from source in every run (dependencies keep their installed bytecode).

--runner points at another checkout's runner/ folder (e.g. an exported older commit) to compare before and
after on the same sandbox and the same machine load; runs of the two alternate when both are given.
Medians and maxima; this machine is shared and noisy, so compare numbers from one invocation only.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.sandbox.bootstrap import CONTAINER, World, WorldSpec
from tests.sandbox.ledger import is_write
from tests.sandbox.sandbox import Sandbox
from tests.sandbox.services import free_port

ROOT = Path(__file__).resolve().parents[1]
IMPORT_TOTAL = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| ecs_ship\.cli$", re.MULTILINE)


@dataclass
class Run:
    first_call: float | None  # seconds from process start to the first AWS call of any kind
    first_write: float | None  # ... to the first write; None: it made none
    first_write_action: str
    code: int | None  # None: still running at the cap


def env_for(runner: Path, extra: dict[str, str]) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **extra,
        # The runner under test first, ahead of the editable install of this checkout.
        "PYTHONPATH": f"{runner}:{ROOT}",
        # Neither mode may change between runs: compiled stays as compiled, source is compiled in every run.
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def prepare_bytecode(runner: Path, source: bool) -> None:
    package = runner / "ecs_ship"
    if source:
        for cache in package.rglob("__pycache__"):
            shutil.rmtree(cache)
    else:
        compileall.compile_dir(package, quiet=1)


def import_seconds(runner: Path) -> float:
    """`import ecs_ship.cli` as -X importtime reports it (cumulative), in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import ecs_ship.cli"],
        env=env_for(runner, {}),
        capture_output=True,
        text=True,
        check=True,
    )
    found = IMPORT_TOTAL.search(done.stderr)
    assert found, "no ecs_ship.cli line in the -X importtime output"
    return int(found.group(1)) / 1e6


def spec_file(w: World, folder: Path) -> Path:
    doc = {
        "version": 1,
        "region": w.region,
        "cluster": w.cluster,
        "service": w.service,
        "images": [{"container": CONTAINER, "repository": "${REGISTRY}/startup"}],
        "load_balancer": {"health_check_path": "/health"},
        "wait": {"until": "serving", "timeout": 120, "poll_interval": 1},
        "on_failure": "stop",
    }
    path = folder / f"{w.service}.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def measure(sb: Sandbox, runner: Path, first_image: str, tag: str, folder: Path, cap: float) -> Run:
    w = sb.bootstrap(WorldSpec(name="s" + uuid.uuid4().hex[:7], image=first_image, listener_port=free_port()))
    cmd = [sys.executable, "-m", "ecs_ship", "deploy", "--spec", str(spec_file(w, folder)), "--image-tag", tag]
    env = env_for(runner, sb.env())
    mark = sb.ledger.mark()
    # Wall clock on both sides: the ledger stamps each call with time.time() in this process.
    started = time.time()
    try:
        code: int | None = subprocess.run(cmd, env=env, capture_output=True, timeout=cap).returncode
    except subprocess.TimeoutExpired:
        code = None
    calls = sb.ledger.calls_since(mark)
    writes = [c for c in calls if is_write(c.action)]
    return Run(
        first_call=calls[0].at - started if calls else None,
        first_write=writes[0].at - started if writes else None,
        first_write_action=writes[0].action if writes else "",
        code=code,
    )


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s | {max(values):.3f} s" if values else "none | none"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7, help="deploys per runner")
    ap.add_argument("--import-runs", type=int, default=9, help="-X importtime measurements per runner")
    ap.add_argument(
        "--runner",
        type=Path,
        action="append",
        default=None,
        help="a runner/ folder to measure (repeatable; default: this checkout's)",
    )
    ap.add_argument("--cap", type=float, default=120.0, help="seconds before a deploy is given up on")
    ap.add_argument("--source", action="store_true", help="no bytecode for ecs_ship: compiled from source each run")
    args = ap.parse_args(argv)
    runners: list[Path] = [p.resolve() for p in args.runner] if args.runner else [ROOT / "runner"]
    for r in runners:
        prepare_bytecode(r, args.source)
    mode = "ecs_ship compiled from source in each run" if args.source else "ecs_ship bytecode compiled, as installed"
    print(f"before: {load()}", file=sys.stderr)

    imports: dict[Path, list[float]] = {r: [] for r in runners}
    for _ in range(args.import_runs):
        for r in runners:  # alternated, so a burst of load from elsewhere hits both alike
            imports[r].append(import_seconds(r))

    runs: dict[Path, list[Run]] = {r: [] for r in runners}
    with Sandbox() as sb, tempfile.TemporaryDirectory() as tmp:
        first = sb.build_and_push("startup", "v1")
        sb.build_and_push("startup", "v2")
        for i in range(args.runs):
            for r in runners:
                run = measure(sb, r, first, "v2", Path(tmp), args.cap)
                runs[r].append(run)
                print(
                    f"{i + 1}/{args.runs} {r}: first call {run.first_call} first write {run.first_write} "
                    f"({run.first_write_action}) exit {run.code}",
                    file=sys.stderr,
                    flush=True,
                )
    print(f"after: {load()}", file=sys.stderr)

    print(
        f"\n`ecs-ship deploy --image-tag` (no build), {args.runs} runs; `import ecs_ship.cli`, "
        f"{args.import_runs} runs; {mode}"
        "\n\n| runner | import ecs_ship.cli median | max | first AWS call median | max "
        "| first write median | max | first write | exit codes |"
        "\n|---|---|---|---|---|---|---|---|---|"
    )
    for r in runners:
        rs = runs[r]
        calls = [x.first_call for x in rs if x.first_call is not None]
        writes = [x.first_write for x in rs if x.first_write is not None]
        actions = ", ".join(sorted({x.first_write_action or "none" for x in rs}))
        codes = ", ".join(sorted({str(x.code) if x.code is not None else "timeout" for x in rs}))
        print(f"| {r} | {fmt(imports[r])} | {fmt(calls)} | {fmt(writes)} | {actions} | {codes} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
