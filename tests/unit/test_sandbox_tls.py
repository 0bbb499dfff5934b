"""The sandbox CA's trust store: the system's CAs plus the sandbox's, so a shell that sources env.sh trusts ACM's
sandbox certificates without losing the public ones."""

from __future__ import annotations

import ssl
from pathlib import Path

from tests.sandbox.tls import SandboxCA


def test_the_trust_store_adds_the_sandbox_ca_to_the_system_store(tmp_path: Path) -> None:
    ca = SandboxCA(tmp_path / "ca")
    system = tmp_path / "system.pem"
    other = SandboxCA(tmp_path / "other")  # stands in for a public CA of the system store
    system.write_text(other.pem)
    store = ca.trust_store(system)
    text = store.read_text()
    assert text.startswith(other.pem) and text.endswith(ca.pem)
    context = ssl.create_default_context(cafile=str(store))
    assert len(context.get_ca_certs()) == 2  # both load as trust anchors
