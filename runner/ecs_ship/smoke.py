"""The smoke check: one HTTP request to the service URL after the deployment serves, as a user would make it."""

from __future__ import annotations

from collections.abc import Callable

import requests

from .spec import ServiceSpec


def check(svc: ServiceSpec, url: str | None, say: Callable[[str], None]) -> str | None:
    """None when the check passes (or is off); else why it failed."""
    if svc.smoke is None:
        return None
    if not url:
        return "smoke check: the service has no load balancer URL to check"
    target = url.rstrip("/") + svc.smoke.path
    try:
        # Certificates are always verified: against the default trust store, or the CA bundle that
        # REQUESTS_CA_BUNDLE names (requests reads it) for a private CA.
        resp = requests.get(target, timeout=svc.smoke.timeout, verify=True)
    except requests.exceptions.SSLError as exc:
        return (
            f"smoke check: GET {target} failed: the certificate was not accepted ({exc}); the URL's host must be "
            "a name the listener's certificate covers (set load_balancer.url), and a private CA must be named "
            "by REQUESTS_CA_BUNDLE"
        )
    except requests.RequestException as exc:
        return f"smoke check: GET {target} failed: {exc}"
    if resp.status_code != svc.smoke.expect_status:
        return f"smoke check: GET {target} answered {resp.status_code}, expected {svc.smoke.expect_status}"
    if svc.smoke.contains and svc.smoke.contains not in resp.text:
        return f"smoke check: GET {target} did not contain {svc.smoke.contains!r}"
    say(f"smoke check: GET {target} -> {resp.status_code}")
    return None
