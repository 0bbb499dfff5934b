"""What a pre-flight check says (pure data), and what every check is given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import DeployError

OK, WARNING, FAILURE = "ok", "warning", "failure"


@dataclass(frozen=True)
class Finding:
    """One line of `ecs-ship verify`: what was checked, what was found and, for a failure, the fix."""

    check: str  # what was checked, e.g. "execution role ecsTaskExecutionRole"
    level: str  # ok | warning | failure
    detail: str
    fix: str | None = None

    def line(self) -> str:
        text = f"{self.level:7} {self.check}: {self.detail}"
        return text + (f" — {self.fix}" if self.fix and self.level != OK else "")


@dataclass(frozen=True)
class Subject:
    """What a deploy would write, as the checks see it."""

    region: str
    cluster: str
    service: Mapping[str, Any]  # the DescribeServices entry
    document: Mapping[str, Any]  # the task definition to register (RegisterTaskDefinition's input)
    # Containers whose image this run builds and pushes: not looked for in a registry. Their platform is the
    # one the spec builds for (container -> "linux/amd64"; several, comma-separated).
    built: Mapping[str, str] = field(default_factory=dict)


def failed(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == FAILURE]


class PreflightFailed(DeployError):
    """A pre-flight check found what would make the deploy fail: exit 1, and nothing was written."""

    def __init__(self, failures: list[Finding]) -> None:
        first = failures[0]
        more = f" (and {len(failures) - 1} more: see above)" if len(failures) > 1 else ""
        super().__init__(f"failed the pre-flight check of {first.check}: {first.detail}{more}", fix=first.fix)
        self.failures = failures
