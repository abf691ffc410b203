"""``medgate fl`` commands: certificates, the coordinator (SuperLink) and a site (SuperNode)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from medgate_fl.experiment import Settings

app = typer.Typer(help="Federated learning across sites (FedGSCA on Flower).", no_args_is_help=True)
HOME = Path.home() / ".medgate" / "fl"


@app.command("certs")
def certs_command(
    out: Path = typer.Option(HOME / "certs", help="Folder for ca.crt, ca.key, server.crt, server.key"),
    san: list[str] = typer.Option(["127.0.0.1", "localhost"], help="Names the sites dial (repeatable)"),
    days: int = typer.Option(365),
    sites: int = typer.Option(0, help="Also make key pairs site-0..N-1 and authorized_keys (for a demo or a test)"),
) -> None:
    """Make a private CA and the SuperLink's TLS certificate (and, with --sites, site keys)."""
    from medgate_fl.certs import make_certificates, make_site_keys

    paths = make_certificates(out, tuple(san), days)
    if sites:
        paths.update(make_site_keys(out, [f"site-{k}" for k in range(sites)]))
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


@app.command("keys")
def keys_command(
    name: str = typer.Option(..., help="The site's name (the public key's comment)"),
    out: Path = typer.Option(HOME / "keys", help="Folder for <name>.key and <name>.pub"),
) -> None:
    """Make one site's authentication key pair; add the printed public line to the
    coordinator's authorized_keys. The private key never leaves the site."""
    from medgate_fl.certs import make_site_key

    private, public = make_site_key(out, name)
    typer.echo(f"private key: {private}")
    typer.echo(public.read_text(encoding="utf-8").strip())


@app.command("superlink")
def superlink_command(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(9093, help="The one HTTPS port for the Fleet, Control and Runtime APIs"),
    certs: Path = typer.Option(HOME / "certs", help="Folder made by `medgate fl certs`"),
    database: Path | None = typer.Option(None, help="SQLite state file (default: in memory)"),
    flwr_home: Path = typer.Option(HOME / "flwr-home"),
    authorized_keys: Path | None = typer.Option(
        None, help="Sites' public keys, one per line (default: <certs>/authorized_keys; required unless --no-node-auth)"
    ),
    no_node_auth: bool = typer.Option(False, "--no-node-auth", help="Accept any SuperNode (TLS only)"),
    control_port: int = typer.Option(0, help="Serve the control API on this port (0: off)"),
    control_host: str = typer.Option("127.0.0.1"),
    metrics_db: str | None = typer.Option(None, help="Runs and rounds database (default: MEDGATE_FL_DATABASE_URL)"),
    runs_dir: Path | None = typer.Option(None, help="Folder of submitted runs (default: MEDGATE_FL_RUNS_DIR)"),
) -> None:
    """Run the coordinator's SuperLink: TLS, SuperNode authentication, offline, no runtime
    dependency installation; optionally the control API beside it."""
    from medgate_fl.coordinator import run_coordinator
    from medgate_fl.settings import FlSettings

    keys: Path | None = None
    if not no_node_auth:
        keys = authorized_keys or (certs / "authorized_keys")
        if not keys.exists():
            raise typer.BadParameter(f"{keys} does not exist (make keys with `medgate fl certs --sites N`)")
    control = None
    if control_port:
        overrides: dict[str, Any] = {"flwr_home": flwr_home, "database_url": metrics_db, "runs_dir": runs_dir}
        control = FlSettings(**{k: v for k, v in overrides.items() if v is not None})
    code = run_coordinator(host=host, port=port, certs=certs, database=database, flwr_home=flwr_home,
                           authorized_keys=keys, control=control, control_host=control_host,
                           control_port=control_port)  # fmt: skip
    raise typer.Exit(code)


@app.command("site")
def site_command(
    site_id: int = typer.Option(..., help="This site's index in the federation"),
    num_sites: int = typer.Option(..., help="How many sites the federation has"),
    superlink: str = typer.Option("127.0.0.1:9093", help="host:port of the SuperLink (dialled out)"),
    port: int = typer.Option(9094, help="Local ClientAppIo port"),
    ca: Path = typer.Option(HOME / "certs" / "ca.crt", help="CA that signed the SuperLink's certificate"),
    key: Path | None = typer.Option(None, help="This site's private key (`medgate fl keys`); needed with node auth"),
    cache_dir: Path | None = typer.Option(None, help="Where the site's generated slices are cached"),
    flwr_home: Path = typer.Option(HOME / "flwr-home"),
) -> None:
    """Run one site's SuperNode with its local data; it only dials out to the SuperLink."""
    from medgate_fl import deploy

    cmd = deploy.supernode_command(superlink, port, site_id, num_sites, ca, cache_dir, key)
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
    task: str | None = typer.Option(None, help="Override the task: multiclass or binary"),
    local_epochs: int | None = typer.Option(None, help="Override the local epochs per round"),
    lr: float | None = typer.Option(None, help="Override the sites' learning rate"),
    batch_size: int | None = typer.Option(None, min=2, help="Override the sites' minibatch size"),
    warmup_rounds: int | None = typer.Option(
        None, min=0, help="Override the FedAvg warm-up rounds of the selecting methods (FedGSCA, local GMM)"
    ),
    per_class_norm: bool | None = typer.Option(
        None,
        "--per-class-norm/--site-norm",
        help="Selecting methods normalise losses within each given label or site-wide (default: the grid's)",
    ),
    loss_scale: str | None = typer.Option(
        None,
        help="Selecting methods map losses to 1 - p(label) (probability) or min-max over the site "
        "(default: the grid's)",
    ),
    site_bn: bool | None = typer.Option(
        None,
        "--site-bn/--global-bn",
        help="Selecting methods score with BatchNorm statistics recomputed on the site's images, or with the "
        "federation's (default: the grid's)",
    ),
) -> None:
    """Methods x noise type x rate x seeds, in process; resumable (each run cached by its key)."""

    from medgate_fl import experiment

    settings = experiment.QUICK if quick else experiment.Settings()
    overrides: dict[str, Any] = {"sites": sites, "rounds": rounds, "per_site": per_site, "task": task,
                                 "local_epochs": local_epochs, "lr": lr, "batch_size": batch_size,
                                 "warmup_rounds": warmup_rounds, "per_class_norm": per_class_norm,
                                 "loss_scale": loss_scale, "site_bn": site_bn}  # fmt: skip
    settings = _override(settings, overrides)
    methods = method or list(experiment.METHODS)
    unknown = set(methods) - set(experiment.METHODS)
    if unknown:
        raise typer.BadParameter(f"unknown methods {sorted(unknown)}; one of {list(experiment.METHODS)}")
    defaults = experiment.default_noise(settings.task)
    plan = dict(defaults)
    if noise:
        plan = {}
        for item in noise:
            kind, _, rates = item.partition(":")
            plan[kind] = tuple(float(r) for r in rates.split(",")) if rates else defaults[kind]
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


@app.command("train-model")
def train_model_command(
    out: Path = typer.Option(HOME / "model", help="Folder for global.pt, global.onnx, model_card.json"),
    method: str = typer.Option(
        "fedgsca", help="A method of `medgate fl experiment`, or `central` (pooled clean data, one place)"
    ),
    epochs: int = typer.Option(30, help="Epochs of the central training"),
    noise: str = typer.Option("heterogeneous:0.4", help="kind:rate of the sites' label noise"),
    seed: int = typer.Option(0),
    task: str = typer.Option("binary", help="binary or multiclass"),
    rounds: int | None = typer.Option(None, help="Override the number of rounds"),
    lr: float | None = typer.Option(None, help="Override the learning rate (default: the experiment's)"),
    batch_size: int | None = typer.Option(None, min=2, help="Override the minibatch size (default: the experiment's)"),
    cache_dir: Path | None = typer.Option(None, help="Where generated key slices are cached (default: <out>/cache)"),
    release: Path | None = typer.Option(
        None, help="Also copy the model into this serving folder as triage.onnx + triage.json (the reasoning service's)"
    ),
) -> None:
    """Train the triage classifier by federation (in process, the experiment's settings)
    and export it for the reasoning service's triage step."""
    import shutil

    from medgate_fl import experiment
    from medgate_fl.global_model import CARD, ONNX

    if method != "central" and method not in experiment.METHODS:
        raise typer.BadParameter(f"unknown method {method!r}; one of {list(experiment.METHODS)}")
    kind, _, rate = noise.partition(":")
    settings = experiment.Settings(task=task)
    overrides: dict[str, Any] = {"rounds": rounds, "lr": lr, "batch_size": batch_size}
    settings = _override(settings, overrides)
    cache = cache_dir or out / "cache"
    if method == "central":
        card = experiment.train_central(settings, seed, epochs, out, cache)
    else:
        card = experiment.train_model(experiment.RunSpec(method, kind, float(rate or 0.0), seed, settings), out, cache)
    typer.echo(f"held-out: {card['held_out_metrics']}  sha256 {str(card['sha256'])[:12]}")
    if release is not None:
        release.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / ONNX, release / "triage.onnx")
        shutil.copyfile(out / CARD, release / "triage.json")
        typer.echo(f"released to {release}")


@app.command("cost")
def cost_command(
    quick: bool = typer.Option(False, "--quick", help="The quick configuration"),
    rounds: int | None = typer.Option(None, help="Override the number of rounds"),
    warmup_rounds: int | None = typer.Option(None, min=0, help="Override the warm-up rounds (not counted)"),
    cache_dir: Path | None = typer.Option(None, help="Where generated key slices are cached"),
    repeats: int = typer.Option(1, min=1, help="Run the pair this many times, alternating order; medians"),
) -> None:
    """FedGSCA vs FedAvg: seconds and bytes per round (in process, after the warm-up)."""

    from medgate_fl import experiment

    settings = experiment.QUICK if quick else experiment.Settings()
    overrides: dict[str, Any] = {"rounds": rounds, "warmup_rounds": warmup_rounds}
    settings = _override(settings, overrides)
    for key, value in experiment.compare_cost(settings, cache_dir=cache_dir, repeats=repeats).items():
        typer.echo(f"{key}: {value:.4g}")


def _override(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """``settings`` with the options the caller gave; a combination it rejects is a usage
    error, not a traceback."""
    from dataclasses import replace

    try:
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="fl")
