"""The sandbox's certificate authority: stands in for the public CAs a user's certificates chain to.

A world gets a certificate for its HTTPS listener as a user's does: ``acm.request_certificate`` (ACM issues it;
in the sandbox this CA does, see motoworld.py), or, like a certificate from the user's own CA, issued here
(``SandboxCA.issue``) and imported with ``import_certificate``. The ALB proxy serves whatever certificate ACM
holds for the listener's ARN; clients trust it through the CA bundle at ``SandboxCA.bundle``
(``REQUESTS_CA_BUNDLE`` for requests, ``--cacert`` for curl), so certificate verification stays on everywhere.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_DAY = datetime.timedelta(days=1)
# Where Debian (and derivatives) and Fedora keep the system's trusted CAs.
SYSTEM_STORES = (Path("/etc/ssl/certs/ca-certificates.crt"), Path("/etc/pki/tls/certs/ca-bundle.crt"))
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def new_key(algorithm: str) -> PrivateKey:
    """A key pair by ACM's name of its algorithm (RequestCertificate's KeyAlgorithm)."""
    if algorithm == "RSA_2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    curves: dict[str, ec.EllipticCurve] = {"EC_prime256v1": ec.SECP256R1(), "EC_secp384r1": ec.SECP384R1()}
    if algorithm not in curves:
        raise ValueError(f"unsupported key algorithm {algorithm!r}")
    return ec.generate_private_key(curves[algorithm])


@dataclass(frozen=True)
class Issued:
    """PEM text, in the three parts ACM's import_certificate takes."""

    certificate: str
    private_key: str
    chain: str


def _key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class SandboxCA:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.bundle = directory / "ca.pem"
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ecs-ship sandbox CA")])
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.bundle.write_text(self.pem)

    def trust_store(self, system: Path | None = None) -> Path:
        """The system's trusted CAs plus this one, written beside ``bundle``: what a shell that works with the
        sandbox trusts, as a machine trusts the public CAs behind ACM's certificates. Added to, never instead
        of, the system's store, so that other HTTPS (a package index, say) still verifies."""
        store = self.directory / "trust.pem"
        found = system if system is not None else next((p for p in SYSTEM_STORES if p.is_file()), None)
        store.write_text((found.read_text() if found is not None else "") + self.pem)
        return store

    @property
    def pem(self) -> str:
        return self._cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, names: list[str], key_algorithm: str = "EC_prime256v1") -> Issued:
        """A server certificate for DNS names (wildcards such as ``*.example.test`` allowed) or IP addresses,
        the first one its common name."""
        if not names:
            raise ValueError("a certificate needs at least one name")
        key = new_key(key_algorithm)
        now = datetime.datetime.now(datetime.UTC)
        alt: list[x509.GeneralName] = []
        for n in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 30 * _DAY)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return Issued(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key), self.pem)
