"""A private CA and the SuperLink's TLS certificate, and the sites' authentication keys,
made with ``cryptography``.

SuperNodes verify the SuperLink against ``ca.crt`` (``--root-certificates``); the server
certificate carries the SANs the sites dial (127.0.0.1 and localhost by default).

Each site also holds an EC key pair (NIST P-384, OpenSSH encoding, as Flower reads them):
the SuperNode signs its requests with the private key (``--auth-supernode-private-key``)
and the SuperLink, started with ``--enable-supernode-auth``, serves only SuperNodes whose
public key was registered with it. ``authorized_keys`` lists those public keys, one line
per site (``<type> <key> <site name>``); ``medgate fl superlink`` registers every line.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_SANS = ("127.0.0.1", "localhost")
AUTHORIZED_KEYS = "authorized_keys"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MedGate"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _san(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def make_certificates(out: Path, sans: tuple[str, ...] = DEFAULT_SANS, days: int = 365) -> dict[str, Path]:
    """Write ``ca.crt``, ``ca.key``, ``server.crt``, ``server.key`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("MedGate FL CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(sans[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_san(s) for s in sans]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {name: out / name for name in ("ca.crt", "ca.key", "server.crt", "server.key")}
    paths["ca.crt"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key, paths["ca.key"])
    paths["server.crt"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(key, paths["server.key"])
    return paths


def make_site_key(out: Path, name: str) -> tuple[Path, Path]:
    """Write ``<name>.key`` (private, 0600) and ``<name>.pub`` (one OpenSSH line) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    private, public = out / f"{name}.key", out / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )
    private.chmod(0o600)
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    public.write_bytes(line + f" {name}\n".encode())
    return private, public


def make_site_keys(out: Path, names: Iterable[str]) -> dict[str, Path]:
    """A key pair per site name, and their public keys appended to ``out/authorized_keys``."""
    paths: dict[str, Path] = {}
    authorized = out / AUTHORIZED_KEYS
    for name in names:
        private, public = make_site_key(out, name)
        paths[private.name], paths[public.name] = private, public
        with authorized.open("a", encoding="utf-8") as f:
            f.write(public.read_text(encoding="utf-8"))
    paths[AUTHORIZED_KEYS] = authorized
    return paths


def read_authorized_keys(path: Path) -> list[tuple[str, str]]:
    """``(name, OpenSSH public key line)`` per non-empty, non-comment line of ``path``.

    Every key must be an EC key on a NIST curve (what Flower accepts); a line that is not
    raises ``ValueError`` naming its line number."""
    keys: list[tuple[str, str]] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            key = serialization.load_ssh_public_key(" ".join(parts[:2]).encode())
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ValueError(f"{path}:{number}: not an OpenSSH public key") from exc
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError(f"{path}:{number}: not an EC key (Flower needs a NIST EC curve)")
        keys.append((parts[2] if len(parts) > 2 else f"line-{number}", " ".join(parts[:2])))
    return keys
