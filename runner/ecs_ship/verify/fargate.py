"""Pure: the task sizes Fargate accepts and the platform a task asks for, against the images it runs.

Fargate takes only certain cpu/memory pairs (AWS's table: "Task CPU and memory" in the ECS developer guide);
RegisterTaskDefinition refuses the others, or worse, an EC2-compatible definition registers and its tasks are
never placed on Fargate. An image built for one architecture on a task of another exits at once with
`exec format error`, after the whole rollout has been paid for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..plan import ARCHITECTURES
from .model import FAILURE, OK, Finding

# cpu units -> (lowest MiB, highest MiB, step MiB); the first three are lists in AWS's table, steps of 1 GiB
# there except .25 vCPU's 512/1024/2048.
_LINUX = {
    256: (512, 2048, None),
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}
_QUARTER = (512, 1024, 2048)
_WINDOWS_CPU = (1024, 2048, 4096)


def _units(value: Any, unit: int) -> int | None:
    """'1 vCPU' -> 1024, '2GB' -> 2048, '512' -> 512, 0.5 vCPU -> 512: as RegisterTaskDefinition converts them."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(vcpu|gb)?\s*", str(value), re.IGNORECASE)
    if not m:
        return None
    number = float(m.group(1))
    return int(number * unit) if m.group(2) else int(number)


def fargate_size(document: Mapping[str, Any]) -> Finding | None:
    """None when the task is not for Fargate."""
    if "FARGATE" not in (document.get("requiresCompatibilities") or []):
        return None
    raw_cpu, raw_memory = document.get("cpu"), document.get("memory")
    cpu, memory = _units(raw_cpu, 1024), _units(raw_memory, 1024)
    name = "Fargate task size"
    if cpu is None or memory is None:
        missing = " and ".join(k for k, v in (("cpu", cpu), ("memory", memory)) if v is None)
        return Finding(
            name,
            FAILURE,
            f"task-level {missing} missing or unreadable (cpu {raw_cpu!r}, memory {raw_memory!r})",
            "set the task definition's `cpu` and `memory` to a pair Fargate offers, e.g. cpu 256 with memory 512",
        )
    windows = str((document.get("runtimePlatform") or {}).get("operatingSystemFamily", "LINUX")).startswith("WINDOWS")
    allowed = _allowed(cpu, windows)
    if memory in allowed:
        return Finding(name, OK, f"{cpu} cpu units with {memory} MiB")
    if not allowed:
        offered = ", ".join(str(c) for c in (_WINDOWS_CPU if windows else _LINUX))
        return Finding(
            name,
            FAILURE,
            f"Fargate offers no {cpu} cpu units{' for Windows' if windows else ''}",
            f"set `cpu` to one of {offered}",
        )
    return Finding(
        name,
        FAILURE,
        f"{memory} MiB is not offered with {cpu} cpu units",
        f"set `memory` to one of {_span(allowed)} for {cpu} cpu units (or change `cpu`)",
    )


def _allowed(cpu: int, windows: bool) -> list[int]:
    if windows and cpu not in _WINDOWS_CPU:
        return []
    if cpu == 256:
        return list(_QUARTER)
    if cpu not in _LINUX:
        return []
    low, high, step = _LINUX[cpu]
    return list(range(low, high + 1, step or 1024))


def _span(values: list[int]) -> str:
    if len(values) <= 4:
        return ", ".join(str(v) for v in values)
    return f"{values[0]} to {values[-1]} MiB in steps of {values[1] - values[0]}"


def platform_match(document: Mapping[str, Any], container: str, platforms: list[str]) -> Finding | None:
    """`platforms`: the "os/arch" an image in a registry offers (an image this run builds is checked by the plan).
    A task that names no architecture runs on ECS's default, X86_64. None when nothing is known."""
    wanted = str((document.get("runtimePlatform") or {}).get("cpuArchitecture") or "X86_64").upper()
    arch = ARCHITECTURES.get(wanted)
    if arch is None or not platforms:
        return None
    archs = sorted({p.split("/")[1] if "/" in p else p for p in platforms})
    name = f"image platform of {container}"
    if arch in archs:
        return Finding(name, OK, f"linux/{arch} for a {wanted} task")
    return Finding(
        name,
        FAILURE,
        f"the image is for {', '.join(archs)}, the task runs on {wanted} (`runtimePlatform.cpuArchitecture`): "
        "its container would exit at start with `exec format error`",
        f"build it for linux/{arch} (`platform:` of the image in the spec), or set `cpuArchitecture` to "
        + " or ".join(k for k, v in ARCHITECTURES.items() if v in archs),
    )
