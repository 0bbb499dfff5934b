"""The errors library code raises. Only cli.py turns them into exit codes and messages.

Messages read "failed to <verb> <noun>: <cause>"; ``fix`` says what the user can do about it, when known.
"""

from __future__ import annotations


class DeployError(Exception):
    """Something ecs-ship could not do. Exit code 1 unless a subclass says otherwise."""

    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return self.message


class InputError(DeployError):
    """Bad input (spec, arguments, credentials, missing files): exit 2, and no AWS write was made."""

    exit_code = 2


class SpecError(InputError):
    """A problem at one place in the spec file."""

    def __init__(
        self,
        message: str,
        *,
        key_path: str | None = None,
        file: str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        at = f"{key_path}: " if key_path else ""
        super().__init__(f"{where}{at}{message}", fix=fix)
        self.key_path = key_path
        self.file = file
        self.line = line
        self.detail = message


class DeploymentFailed(DeployError):
    """The deployment ran and did not become healthy (rolled back or not): exit 1."""

    def __init__(
        self, message: str, *, diagnosis: list[str] | None = None, rolled_back: bool = False, fix: str | None = None
    ) -> None:
        super().__init__(message, fix=fix)
        self.diagnosis = diagnosis or []
        self.rolled_back = rolled_back


class Interrupted(DeployError):
    """Ctrl-C, SIGTERM (a cancelled CI job) or a cancel from another service's interruption: exit 130."""

    exit_code = 130
