"""``medgate fl`` commands: certificates, the coordinator (SuperLink) and a site (SuperNode)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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


@app.command("experiment")
def experiment_command(
    out: Path = typer.Option(HOME / "experiments", help="Results: runs/<key>.json per run, and results.md"),
    cache_dir: Path | None = typer.Option(None, help="Where generated key slices are cached (default: <out>/cache)"),
    quick: bool = typer.Option(False, "--quick", help="3 sites, 24 studies each, 4 rounds: a smoke run"),
    method: list[str] = typer.Option([], help="Methods to run (repeatable; default: all)"),
    noise: list[str] = typer.Option([], help="kind:rate[,rate] (repeatable; default: every type at two rates)"),
    seeds: int = typer.Option(3, help="Seeds 0..N-1"),
    sites: int | None = typer.Option(None, help="Override the number of sites"),
    rounds: int | None = typer.Option(None, help="Override the number of rounds"),
    per_site: int | None = typer.Option(None, help="Override the studies per site"),
) -> None:
    """Methods x noise type x rate x seeds, in process; resumable (each run cached by its key)."""
    from dataclasses import replace

    from medgate_fl import experiment

    settings = experiment.QUICK if quick else experiment.Settings()
    overrides: dict[str, Any] = {"sites": sites, "rounds": rounds, "per_site": per_site}
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    methods = method or list(experiment.METHODS)
    unknown = set(methods) - set(experiment.METHODS)
    if unknown:
        raise typer.BadParameter(f"unknown methods {sorted(unknown)}; one of {list(experiment.METHODS)}")
    plan: dict[str, tuple[float, ...]] = dict(experiment.DEFAULT_NOISE)
    if noise:
        plan = {}
        for item in noise:
            kind, _, rates = item.partition(":")
            plan[kind] = tuple(float(r) for r in rates.split(",")) if rates else experiment.DEFAULT_NOISE[kind]
    specs = experiment.grid(methods, plan, range(seeds), settings)
    results = []
    for i, spec in enumerate(specs, 1):
        result = experiment.run_one(spec, out, cache_dir or out / "cache")
        summary = result["summary"]
        typer.echo(f"[{i}/{len(specs)}] {spec.method} {spec.noise}@{spec.rate:g} seed {spec.seed}: "
                   f"accuracy {summary['accuracy']:.3f} ({result['seconds']:.1f} s)")  # fmt: skip
        results.append(result)
    table = out / "results.md"
    table.write_text(experiment.report(results), encoding="utf-8")
    typer.echo(f"tables: {table}")


@app.command("cost")
def cost_command(
    quick: bool = typer.Option(False, "--quick", help="The quick configuration"),
    rounds: int | None = typer.Option(None, help="Override the number of rounds"),
    cache_dir: Path | None = typer.Option(None, help="Where generated key slices are cached"),
) -> None:
    """FedGSCA vs FedAvg: seconds and bytes per round (in process, after the warm-up)."""
    from dataclasses import replace

    from medgate_fl import experiment

    settings = experiment.QUICK if quick else experiment.Settings()
    if rounds is not None:
        settings = replace(settings, rounds=rounds)
    for key, value in experiment.compare_cost(settings, cache_dir=cache_dir).items():
        typer.echo(f"{key}: {value:.4g}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="fl")
