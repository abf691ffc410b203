"""``medgate fl superlink`` as one process: the SuperLink as a child, the sites' public keys
registered with it, and optionally the control API served beside it.

With node authentication the SuperLink refuses every SuperNode whose key was not
registered through its Control API (``flwr supernode register``); registrations live in
the SuperLink's state, so they are made again at every start (a key already known to a
persistent ``--database`` is reported, not an error).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from medgate_common.errors import ConfigError
from medgate_fl import deploy
from medgate_fl.certs import read_authorized_keys
from medgate_fl.settings import FlSettings

REGISTER_TIMEOUT = 60.0


@dataclass(frozen=True)
class Registration:
    site: str
    node_id: int | None
    note: str


def wait_port(host: str, port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    """Until ``host:port`` accepts a connection; fails early when ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ConfigError(f"the SuperLink exited with {process.returncode} before listening on {port}")
        try:
            socket.create_connection((host, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise ConfigError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def register_sites(authorized_keys: Path, env: dict[str, str], name: str = "medgate") -> list[Registration]:
    """Register every key of ``authorized_keys`` with the SuperLink of connection ``name``
    (one ``flwr supernode register`` per key, all at once)."""
    done: list[Registration] = []
    keys = read_authorized_keys(authorized_keys)
    with tempfile.TemporaryDirectory() as tmp:
        running = []
        for index, (site, key) in enumerate(keys):
            path = Path(tmp) / f"key-{index}.pub"
            path.write_text(f"{key} {site}\n", encoding="utf-8")
            cmd = deploy.register_command(path, name)
            running.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # noqa: S603
        try:
            for (site, _), process in zip(keys, running, strict=True):
                try:
                    stdout, stderr = process.communicate(timeout=REGISTER_TIMEOUT)
                    reply = json.loads(stdout)
                except (subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                    process.kill()
                    raise ConfigError(f"registering {site}: flwr answered no JSON", error=type(exc).__name__) from exc
                message = str(reply.get("error-message", ""))
                if reply.get("success"):
                    done.append(Registration(site, int(reply["node-id"]), "registered"))
                elif "already in use" in message:
                    done.append(Registration(site, None, "already registered"))
                else:
                    raise ConfigError(f"registering {site} failed", reason=message[-500:], stderr=stderr[-500:])
        finally:
            for process in running:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    return done


def run_coordinator(
    *,
    host: str,
    port: int,
    certs: Path,
    database: Path | None,
    flwr_home: Path,
    authorized_keys: Path | None,
    control: FlSettings | None = None,
    control_host: str = "127.0.0.1",
    control_port: int = 0,
) -> int:
    """Run until the SuperLink exits or a signal ends the control API; the exit status."""
    env = deploy.flower_env(flwr_home)
    dial = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104 - comparing, not binding
    deploy.write_cli_config(flwr_home, f"{dial}:{port}", certs / "ca.crt")
    cmd = deploy.superlink_command(host, port, certs, database, node_auth=authorized_keys is not None)
    # SIGTERM ends this process through ``finally``, which stops the SuperLink with it.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    link: subprocess.Popen[bytes] = subprocess.Popen(cmd, env=env)  # noqa: S603 - the Flower binary
    try:
        wait_port(dial, port, link)
        if authorized_keys is not None:
            for reg in register_sites(authorized_keys, env):
                print(f"{reg.site}: node {reg.node_id or '-'} ({reg.note})", flush=True)
        if control is not None and control_port:
            import uvicorn

            from medgate_fl.control import create_app

            uvicorn.run(create_app(control), host=control_host, port=control_port, log_level="warning")
            return 0
        return link.wait()
    finally:
        if link.poll() is None:
            link.terminate()
            try:
                link.wait(timeout=15)
            except subprocess.TimeoutExpired:
                link.kill()
                link.wait()
