"""`medgate fl certs|keys`: a CA and a server certificate the sites can verify on loopback, and the
sites' authentication keys in the form Flower reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from typer.testing import CliRunner

from medgate_fl import deploy
from medgate_fl.certs import read_authorized_keys
from medgate_fl.cli import app


def test_certs_command_writes_a_ca_signed_server_certificate(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["certs", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((tmp_path / "server.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert oct((tmp_path / "server.key").stat().st_mode & 0o777) == "0o600"


def test_site_keys_are_openssh_ec_pairs_listed_in_authorized_keys(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["certs", "--out", str(tmp_path), "--sites", "2"])
    assert result.exit_code == 0, result.output
    listed = read_authorized_keys(tmp_path / "authorized_keys")
    assert [name for name, _ in listed] == ["site-0", "site-1"]
    for k, (name, line) in enumerate(listed):
        private = serialization.load_ssh_private_key((tmp_path / f"{name}.key").read_bytes(), None)
        assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
        mine = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        assert mine.decode() == line == (tmp_path / f"site-{k}.pub").read_text().split(" site-")[0]
        assert oct((tmp_path / f"{name}.key").stat().st_mode & 0o777) == "0o600"
    assert listed[0][1] != listed[1][1]


def test_keys_command_prints_the_line_for_the_coordinator(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "--name", "hospital-a", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    (tmp_path / "authorized_keys").write_text(f"# sites\n\n{line}\n")
    assert read_authorized_keys(tmp_path / "authorized_keys") == [("hospital-a", " ".join(line.split()[:2]))]


def test_authorized_keys_refuses_what_flower_cannot_use(tmp_path: Path) -> None:
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    line = ed.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    path = tmp_path / "authorized_keys"
    path.write_text(f"{line} site-x\n")
    with pytest.raises(ValueError, match=r"authorized_keys:1: not an EC key"):
        read_authorized_keys(path)
    path.write_text("# ok\nnot-a-key at all\n")
    with pytest.raises(ValueError, match=r"authorized_keys:2: not an OpenSSH public key"):
        read_authorized_keys(path)


def test_node_auth_flags_of_the_flower_commands(tmp_path: Path) -> None:
    link = deploy.superlink_command("127.0.0.1", 9093, tmp_path, node_auth=True)
    assert "--enable-supernode-auth" in link and "--insecure" not in link
    assert "--enable-supernode-auth" not in deploy.superlink_command("127.0.0.1", 9093, tmp_path)
    with pytest.raises(ValueError, match="needs TLS"):
        deploy.superlink_command("127.0.0.1", 9093, None, node_auth=True)
    node = deploy.supernode_command("127.0.0.1:9093", 9094, 0, 3, tmp_path / "ca.crt", None, tmp_path / "site-0.key")
    assert node[node.index("--auth-supernode-private-key") + 1] == str(tmp_path / "site-0.key")
