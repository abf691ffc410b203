"""Command lines and environment for the Flower processes: offline, TLS, one Flower app.

Every process runs with telemetry and the update check off and ``FLWR_HOME`` set, and the
SuperLink never installs app dependencies at run time (it would otherwise ``uv sync``
the app's requirements from the internet).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

BIN = Path(sys.executable).parent
APP_PYPROJECT = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "medgate-fl-app"
version = "0.1.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "medgate"

[tool.flwr.app.components]
serverapp = "medgate_fl.server_app:app"
clientapp = "medgate_fl.client_app:app"

[tool.flwr.app.config]
{config}
"""


def flower_env(flwr_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1", "FLWR_HOME": str(flwr_home)})
    # The SuperLink and SuperNodes start ``flower-superexec`` by name.
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def superlink_command(
    host: str, port: int, certs: Path | None, database: Path | None = None, *, node_auth: bool = False
) -> list[str]:
    """``node_auth``: serve only SuperNodes whose public key was registered (needs TLS)."""
    if node_auth and certs is None:
        raise ValueError("SuperNode authentication needs TLS certificates")
    cmd = [
        str(BIN / "flower-superlink"),
        "--host",
        host,
        "--port",
        str(port),
        "--disable-runtime-dependency-installation",
    ]
    if certs is None:
        cmd.append("--insecure")
    else:
        cmd += [
            "--ssl-ca-certfile", str(certs / "ca.crt"),
            "--ssl-certfile", str(certs / "server.crt"),
            "--ssl-keyfile", str(certs / "server.key"),
        ]  # fmt: skip
    if node_auth:
        cmd.append("--enable-supernode-auth")
    if database is not None:
        cmd += ["--database", str(database)]
    return cmd


def supernode_command(
    superlink: str,
    port: int,
    site_id: int,
    num_sites: int,
    ca: Path | None,
    cache_dir: Path | None,
    key: Path | None = None,
) -> list[str]:
    """A site's SuperNode: dials out to ``superlink`` only; ``port`` is its local ClientAppIo
    port; ``key`` its private authentication key (OpenSSH, from :mod:`medgate_fl.certs`)."""
    config = f"site-id={site_id} num-sites={num_sites}"
    if cache_dir is not None:
        config += f' cache-dir="{cache_dir}"'
    cmd = [str(BIN / "flower-supernode"), "--superlink", superlink, "--port", str(port), "--node-config", config]
    cmd += ["--insecure"] if ca is None else ["--root-certificates", str(ca)]
    if key is not None:
        cmd += ["--auth-supernode-private-key", str(key)]
    return cmd


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_app(folder: Path, config: Mapping[str, object]) -> Path:
    """The Flower app folder ``flwr run`` submits: a pyproject naming our Server/ClientApp."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = "\n".join(f"{key} = {_toml_value(value)}" for key, value in config.items())
    (folder / "pyproject.toml").write_text(APP_PYPROJECT.format(config=lines), encoding="utf-8")
    return folder


def write_cli_config(flwr_home: Path, address: str, ca: Path | None, name: str = "medgate") -> None:
    """``$FLWR_HOME/config.toml`` with one SuperLink connection for ``flwr run``."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    tls = "insecure = true" if ca is None else f'root-certificates = "{ca}"'
    text = f'[superlink]\ndefault = "{name}"\n\n[superlink.{name}]\naddress = "{address}"\n{tls}\n'
    (flwr_home / "config.toml").write_text(text, encoding="utf-8")


def run_command(app: Path, name: str = "medgate", *, stream: bool = True) -> list[str]:
    """``flwr run``: with ``stream`` it follows the run's log to the end; without, it prints
    ``{"success": ..., "run-id": ...}`` as JSON and returns once the run is submitted."""
    cmd = [str(BIN / "flwr"), "run", str(app), name]
    return [*cmd, "--stream"] if stream else [*cmd, "--format", "json"]


def register_command(public_key: Path, name: str = "medgate") -> list[str]:
    """``flwr supernode register``: add one site's public key to the SuperLink (Control API)."""
    return [str(BIN / "flwr"), "supernode", "register", str(public_key), name, "--format", "json"]
