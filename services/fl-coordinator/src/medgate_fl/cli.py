"""``medgate fl`` commands: certificates, the coordinator (SuperLink) and a site (SuperNode)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

app = typer.Typer(help="Federated learning across sites (FedGSCA on Flower).", no_args_is_help=True)
HOME = Path.home() / ".medgate" / "fl"


@app.command("certs")
def certs_command(
    out: Path = typer.Option(HOME / "certs", help="Folder for ca.crt, ca.key, server.crt, server.key"),
    san: list[str] = typer.Option(["127.0.0.1", "localhost"], help="Names the sites dial (repeatable)"),
    days: int = typer.Option(365),
) -> None:
    """Make a private CA and the SuperLink's TLS certificate."""
    from medgate_fl.certs import make_certificates

    for name, path in make_certificates(out, tuple(san), days).items():
        typer.echo(f"{name}: {path}")


@app.command("superlink")
def superlink_command(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(9093, help="The one HTTPS port for the Fleet, Control and Runtime APIs"),
    certs: Path = typer.Option(HOME / "certs", help="Folder made by `medgate fl certs`"),
    database: Path | None = typer.Option(None, help="SQLite state file (default: in memory)"),
    flwr_home: Path = typer.Option(HOME / "flwr-home"),
) -> None:
    """Run the coordinator's SuperLink: TLS, offline, no runtime dependency installation."""
    from medgate_fl import deploy

    cmd = deploy.superlink_command(host, port, certs, database)
    os.execve(cmd[0], cmd, deploy.flower_env(flwr_home))  # noqa: S606 - the process becomes the Flower binary


@app.command("site")
def site_command(
    site_id: int = typer.Option(..., help="This site's index in the federation"),
    num_sites: int = typer.Option(..., help="How many sites the federation has"),
    superlink: str = typer.Option("127.0.0.1:9093", help="host:port of the SuperLink (dialled out)"),
    port: int = typer.Option(9094, help="Local ClientAppIo port"),
    ca: Path = typer.Option(HOME / "certs" / "ca.crt", help="CA that signed the SuperLink's certificate"),
    cache_dir: Path | None = typer.Option(None, help="Where the site's generated slices are cached"),
    flwr_home: Path = typer.Option(HOME / "flwr-home"),
) -> None:
    """Run one site's SuperNode with its local data; it only dials out to the SuperLink."""
    from medgate_fl import deploy

    cmd = deploy.supernode_command(superlink, port, site_id, num_sites, ca, cache_dir)
    os.execve(cmd[0], cmd, deploy.flower_env(flwr_home))  # noqa: S606 - the process becomes the Flower binary


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="fl")
