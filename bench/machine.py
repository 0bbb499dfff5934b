"""What the numbers were measured on: the machine, Python, the commit and the versions of every tool compared."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _first(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def describe(docker_client: Any | None) -> dict[str, Any]:
    ram = _first("/proc/meminfo", "MemTotal")
    engine = None
    if docker_client is not None:
        try:
            engine = docker_client.version().get("Version")
        except Exception:  # the version is nice to have; a benchmark is not lost over it
            engine = None
    return {
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": _first("/proc/cpuinfo", "model name") or platform.processor(),
            "ram_gib": round(int(ram.split()[0]) / 1024**2, 1) if ram else None,
            "os": platform.platform(),
            "load_average_at_start": list(os.getloadavg()),
        },
        "python": platform.python_version(),
        "ecs_ship_commit": _git("rev-parse", "HEAD"),
        "ecs_ship_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "versions": {
            "ecs-ship": _version("ecs-ship"),
            "awscli": _version("awscli"),
            "botocore": _version("botocore"),
            "ecs-deploy": _version("ecs-deploy"),
            "moto": _version("moto"),
            "docker engine": engine,
        },
    }


def one_line(info: dict[str, Any]) -> str:
    m = info["machine"]
    commit = info["ecs_ship_commit"][:10]
    return f"{m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {info['python']}, ecs-ship {commit}"
