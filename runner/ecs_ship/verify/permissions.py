"""A check the credentials may not run is a warning that names the permission, never a crash or a failure."""

from __future__ import annotations

from collections.abc import Callable

from ..aws import error_code
from .model import WARNING, Finding

DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "Forbidden", "403"}
)


def guarded(check: str, permission: str, run: Callable[[], list[Finding]]) -> list[Finding]:
    try:
        return run()
    except Exception as exc:
        if error_code(exc) not in DENIED:
            raise
        return [
            Finding(
                check,
                WARNING,
                f"not checked: the credentials may not call {permission}",
                f"allow {permission} to the deploying role (read-only) for this check",
            )
        ]
