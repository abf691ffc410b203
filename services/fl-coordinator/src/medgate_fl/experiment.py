"""``medgate fl experiment``: methods x noise type x rate x seeds, in process.

Each run is one :func:`medgate_fl.inprocess.federate` call (the real strategy and the real
ClientApp through a :class:`~medgate_fl.inprocess.LocalGrid`), evaluated centrally after
every round on a clean held-out set of every scanner profile (Flower's ``evaluate_fn``;
federated evaluation is off, every site would score the same held-out slices). A run's
result is one JSON file named by a key hashed from *every* parameter (method, noise, rate,
seed, all :class:`Settings`, the code's :data:`VERSION`), so an interrupted grid resumes
where it stopped and a changed parameter never reads a stale result.

Methods: the baselines (``fedavg``, ``fedprox``, ``local-gmm``, ``clean``), ``fedgsca``,
and its ablations ``fedgsca-fixed`` (fixed 0.95 pseudo-label threshold) and ``fedgsca-ce``
(plain CE instead of the credal loss); the "no global selector" ablation is ``local-gmm``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from logging import WARNING
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import ArrayRecord, MetricRecord
from flwr.common.logger import log

from medgate_fl import data
from medgate_fl.client_app import cached_site, site_config_from
from medgate_fl.global_model import held_out_evaluator
from medgate_fl.gmm import LOSS_SCALES
from medgate_fl.inprocess import federate, site_nodes
from medgate_fl.site import Scoring
from medgate_fl.task import build_model, checked_batch, evaluate, train_epochs

#: Bump when a change to the code changes results, so cached runs are not reused.
VERSION = 4
#: method -> (strategy, run-config overrides)
METHODS: dict[str, tuple[str, dict[str, str]]] = {
    "fedavg": ("fedavg", {}),
    "fedprox": ("fedprox", {}),
    "local-gmm": ("local-gmm", {}),
    "clean": ("clean", {}),
    "fedgsca": ("fedgsca", {}),
    "fedgsca-fixed": ("fedgsca", {"thresholds": "fixed"}),
    "fedgsca-ce": ("fedgsca", {"loss": "ce"}),
}
#: Each noise type at two rates (extreme: the rate of its noisy sites; heterogeneous: the
#: average over all sites).
DEFAULT_NOISE: dict[str, tuple[float, ...]] = {
    "symmetric": (0.2, 0.4),
    "asymmetric": (0.2, 0.4),
    "extreme": (0.6, 0.7),
    "heterogeneous": (0.2, 0.4),
}
#: Extreme sites sit at the highest rates below :func:`medgate_fl.noise.rate_cap`: four-class
#: labels stop pointing to their class at a symmetric 0.75 (cap 0.70; the literature's 0.8 is
#: for ten classes), binary labels invert above 0.5 (cap 0.45).
BINARY_EXTREME = (0.35, 0.45)


def default_noise(task: str) -> dict[str, tuple[float, ...]]:
    """The grid's noise settings for ``task``."""
    return {**DEFAULT_NOISE, "extreme": BINARY_EXTREME} if task == "binary" else dict(DEFAULT_NOISE)


SELECTING = ("local-gmm", "fedgsca", "fedgsca-fixed", "fedgsca-ce")
STABILITY_ROUNDS = 10
#: The selector's scoring before ``loss_scale`` and ``site_bn`` existed (left out of run keys).
SCORING_BEFORE: dict[str, Any] = {"loss_scale": "minmax", "site_bn": False}
#: How site-BN scoring takes the site's statistics, in the key of every run that uses it:
#: the whole site's statistics, taken in the same pass that scores it
#: (:func:`medgate_fl.site.scoring_probs`). Runs without the key (2026-11-27, stop 22)
#: averaged 32-image batches' statistics and scored in a second pass.
SITE_BN_STATS = "whole-site"


@dataclass(frozen=True)
class Settings:
    """What every run of a grid shares."""

    sites: int = 10
    per_site: int = 120
    test_count: int = 300
    rounds: int = 30
    warmup_rounds: int = 10
    local_epochs: int = 5
    lr: float = 2e-3
    batch_size: int = 8
    alpha: float = 1.0
    task: str = "binary"
    proximal_mu: float = 0.01
    #: The selecting methods normalise each site's losses within each given label (not site-wide):
    #: with site-wide normalisation a minority class can be read as noise as a whole and the
    #: federation collapses to the majority class (docs/results/fedgsca.md, section 4).
    per_class_norm: bool = Scoring.per_class
    #: The selecting methods map losses to ``1 - p(given label)`` (the same scale at every
    #: site) rather than min-max over the site, and score with BatchNorm statistics
    #: recomputed on the site's own images (docs/results/fedgsca.md, section 2).
    loss_scale: str = Scoring.scale
    site_bn: bool = Scoring.site_bn

    def __post_init__(self) -> None:
        if not 0 <= self.warmup_rounds < self.rounds:
            raise ValueError(
                f"warm-up rounds ({self.warmup_rounds}) must be fewer than the rounds ({self.rounds}): "
                "the selecting methods would never select"
            )
        checked_batch(self.batch_size)
        if self.loss_scale not in LOSS_SCALES:
            raise ValueError(f"loss scale {self.loss_scale!r}: one of {', '.join(LOSS_SCALES)}")


#: ``--quick``: a smoke configuration, a second or two per run on the dev machine.
QUICK = Settings(sites=3, per_site=24, test_count=48, rounds=4, warmup_rounds=1, local_epochs=1)


@dataclass(frozen=True)
class RunSpec:
    method: str
    noise: str
    rate: float
    seed: int
    settings: Settings = field(default_factory=Settings)

    def params(self) -> dict[str, Any]:
        settings = asdict(self.settings)
        if self.method not in SELECTING:
            # Scoring only shapes selection: a method that does not select runs the same
            # either way, so its key (and a cached run) does not depend on it.
            settings["per_class_norm"] = False
            settings.update(SCORING_BEFORE)
        for name, value in SCORING_BEFORE.items():
            # A run with the scoring that existed before these settings keeps its old key.
            if settings[name] == value:
                del settings[name]
        if settings.get("site_bn"):
            settings["site_bn_stats"] = SITE_BN_STATS
        return {"version": VERSION, "method": self.method, "noise": self.noise, "rate": self.rate,
                "seed": self.seed, **settings}  # fmt: skip

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.params(), sort_keys=True).encode()).hexdigest()[:16]

    def run_config(self) -> dict[str, bool | float | int | str]:
        strategy, overrides = METHODS[self.method]
        s = self.settings
        config: dict[str, bool | float | int | str] = {
            "strategy": strategy,
            "num-server-rounds": s.rounds,
            "per-site": s.per_site,
            "test-count": s.test_count,
            "seed": self.seed,
            "dirichlet-alpha": s.alpha,
            "task": s.task,
            "noise": self.noise,
            "noise-rate": self.rate,
            "warmup-rounds": s.warmup_rounds,
            "min-sites": s.sites,
            "fraction-evaluate": 0.0,
            "lr": s.lr,
            "local-epochs": s.local_epochs,
            "batch-size": s.batch_size,
            "proximal-mu": s.proximal_mu,
            **overrides,
        }
        if self.method in SELECTING:
            config["per-class-norm"] = s.per_class_norm
            config["loss-scale"] = s.loss_scale
            config["site-bn"] = s.site_bn
        return config


def grid(
    methods: Iterable[str],
    noise: Mapping[str, Sequence[float]],
    seeds: Iterable[int],
    settings: Settings,
) -> list[RunSpec]:
    seeds = list(seeds)
    return [
        RunSpec(m, kind, float(rate), seed, settings)
        for kind, rates in noise.items()
        for rate in rates
        for seed in seeds
        for m in methods
    ]


def _centralised(task: str, test_count: int, seed: int, cache_dir: Path | None, times: list[float]) -> Any:
    """The deployed ServerApp's held-out scoring, as Flower's ``evaluate_fn``, stamping the
    time before and after each call into ``times`` (so round time leaves scoring out)."""
    score = held_out_evaluator(task, test_count, seed, cache_dir)

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        times.append(time.perf_counter())
        metrics = score(arrays)
        times.append(time.perf_counter())
        return MetricRecord(dict(metrics))

    return evaluate_fn


def execute(spec: RunSpec, cache_dir: Path | None = None) -> dict[str, Any]:
    """One run, not cached: per-round metrics and the summary."""
    s = spec.settings
    stamps: list[float] = []
    evaluate_fn = _centralised(s.task, s.test_count, spec.seed, cache_dir, stamps)
    start = time.perf_counter()
    fed = federate(spec.run_config(), s.sites, cache_dir=cache_dir, evaluate_fn=evaluate_fn)
    total = time.perf_counter() - start
    rounds = range(1, s.rounds + 1)
    evals = fed.result.evaluate_metrics_serverapp
    per_round: list[dict[str, float]] = []
    for r in rounds:
        row = {k: float(v) for k, v in evals[r].items()}  # type: ignore[arg-type]
        # Round r ran between the end of evaluation r-1 and the start of evaluation r.
        row["seconds"] = stamps[2 * r] - stamps[2 * r - 1]
        train = fed.result.train_metrics_clientapp.get(r)
        for key in ("selection-precision", "selection-recall", "clean-fraction", "train-loss"):
            if train is not None and key in train:
                row[key] = float(train[key])  # type: ignore[arg-type]
        traffic = [t for t in fed.grid.traffic if t.server_round == r]
        row["bytes"] = float(sum(t.bytes_sent + t.bytes_received for t in traffic))
        per_round.append(row)
    last = per_round[-1]
    accuracies = [row["accuracy"] for row in per_round[-STABILITY_ROUNDS:]]
    summary: dict[str, float | None] = {
        "accuracy": last["accuracy"],
        "macro-f1": last["macro-f1"],
        "minority-recall": last["minority-recall"],
        "accuracy-std-last10": float(np.std(accuracies)),
        "selection-precision": last.get("selection-precision"),
        "selection-recall": last.get("selection-recall"),
        "round-seconds": float(np.mean([row["seconds"] for row in per_round])),
        "bytes-per-round": float(np.mean([row["bytes"] for row in per_round])),
    }
    return {
        "key": spec.key,
        "params": spec.params(),
        "summary": summary,
        "rounds": per_round,
        "failed-rounds": list(fed.strategy.failed_rounds),
        "seconds": total,
    }


def train_model(spec: RunSpec, out: Path, cache_dir: Path | None = None) -> dict[str, object]:
    """One federation of ``spec`` in process, its final global model scored on the held-out
    slices and exported (weights, ONNX, card) into ``out``; returns the card."""
    from medgate_fl.global_model import export_global_model

    s = spec.settings
    evaluate_fn = _centralised(s.task, s.test_count, spec.seed, cache_dir, [])
    fed = federate(spec.run_config(), s.sites, cache_dir=cache_dir, evaluate_fn=evaluate_fn)
    final = fed.result.evaluate_metrics_serverapp[s.rounds]
    return export_global_model(
        fed.result.arrays.to_torch_state_dict(),
        s.task,
        out,
        run_config={**spec.run_config(), "method": spec.method, "sites": s.sites},
        rounds=s.rounds,
        metrics={k: float(v) for k, v in final.items()},  # type: ignore[arg-type]
    )


def train_central(
    settings: Settings, seed: int, epochs: int, out: Path, cache_dir: Path | None = None
) -> dict[str, object]:
    """The same network trained in one place on the pooled clean data of every site (what
    the reasoning service serves until a federated model is released); exported like one."""
    from medgate_fl.global_model import export_global_model

    s = settings
    sites = [data.site_data(k, s.per_site, seed, s.alpha, cache_dir=cache_dir) for k in range(s.sites)]
    images = np.concatenate([site.images for site in sites])
    labels = data.task_labels(np.concatenate([site.labels for site in sites]), s.task)
    classes = data.num_classes(s.task)
    model = build_model(classes, seed)
    train_epochs(model, images, labels, None, epochs=epochs, lr=s.lr, batch=s.batch_size, seed=seed)
    test = data.held_out_data(s.test_count, seed, cache_dir=cache_dir)
    metrics = evaluate(model, test.images, data.task_labels(test.labels, s.task), classes)
    config = {"strategy": "central", "seed": seed, "epochs": epochs, "lr": s.lr, "batch-size": s.batch_size,
              "task": s.task, "sites": s.sites, "per-site": s.per_site, "dirichlet-alpha": s.alpha,
              "studies": len(labels), "test-count": s.test_count}  # fmt: skip
    return export_global_model(model.state_dict(), s.task, out, run_config=config, rounds=0, metrics=metrics)


def data_digest(spec: RunSpec, cache_dir: Path | None = None) -> str:
    """SHA-256 of the data a run learns from and is scored on: every site's images, given
    (noisy) labels and true labels, as its ClientApp loads them (the same cached loader, so
    the run that follows reads them from memory), and the held-out set, each with its shape
    and dtype.

    The run key covers the parameters and :data:`VERSION` the code; this covers the data, so
    that a change to a generator or to the noise (which once went in without a version
    bump: a cap on each site's noise rate changed the labels of five runs of the 40 %
    settings, found when their FedAvg rounds no longer matched FedGSCA's warm-up) cannot
    pass a stale result off as current."""
    digest = hashlib.sha256()

    def add(array: npt.NDArray[Any]) -> None:
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())

    run = spec.run_config()
    for node in site_nodes(spec.settings.sites, cache_dir).values():
        site = cached_site(site_config_from(node, run))
        for array in (site.images, site.labels, site.true_labels):
            add(array)
    for array in (site.test_images, site.test_labels):  # every site holds the same held-out set
        add(array)
    return digest.hexdigest()


def run_one(spec: RunSpec, out_dir: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    """The run's result, from ``out_dir/runs/<key>.json`` when it is already there and was
    made from the same data; else the run is executed and stored with its data digest. A
    stored run without a digest predates it and is taken as it is (the grid's stale files
    were replaced; ``summarise.py --overview`` checks FedAvg against FedGSCA's warm-up)."""
    path = out_dir / "runs" / f"{spec.key}.json"
    if path.exists():
        cached: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if "data-sha256" not in cached or cached["data-sha256"] == data_digest(spec, cache_dir):
            return cached
        log(WARNING, "%s: stored run %s was made from other data; running it again", spec.method, path.name)
    result = {**execute(spec, cache_dir), "data-sha256": data_digest(spec, cache_dir)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
    tmp.replace(path)
    return result


def run_grid(specs: Sequence[RunSpec], out_dir: Path, cache_dir: Path | None = None) -> list[dict[str, Any]]:
    return [run_one(spec, out_dir, cache_dir) for spec in specs]


def _mean_std(values: Sequence[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def markdown(results: Sequence[dict[str, Any]], metric: str = "accuracy") -> str:
    """One table: a row per (noise, rate), a column per method, mean ± std over seeds."""
    methods = [m for m in METHODS if any(r["params"]["method"] == m for r in results)]
    settings = sorted({(r["params"]["noise"], r["params"]["rate"]) for r in results})
    lines = [f"| noise | rate | {' | '.join(methods)} |", "|---|---|" + "---|" * len(methods)]
    for noise_kind, rate in settings:
        cells = []
        for m in methods:
            values = [
                float(r["summary"][metric])
                for r in results
                if r["params"]["method"] == m
                and (r["params"]["noise"], r["params"]["rate"]) == (noise_kind, rate)
                and r["summary"].get(metric) is not None
            ]
            cells.append(_mean_std(values))
        lines.append(f"| {noise_kind} | {rate:g} | {' | '.join(cells)} |")
    return "\n".join(lines)


def report(results: Sequence[dict[str, Any]]) -> str:
    """Every metric's table, and the cost of a round per method."""
    parts = []
    for metric in ("accuracy", "macro-f1", "minority-recall", "accuracy-std-last10",
                   "selection-precision", "selection-recall"):  # fmt: skip
        parts += [f"### {metric}", "", markdown(results, metric), ""]
    parts += ["### cost per round", "", "| method | seconds | bytes |", "|---|---|---|"]
    for m in METHODS:
        rows = [r["summary"] for r in results if r["params"]["method"] == m]
        if rows:
            seconds = np.mean([x["round-seconds"] for x in rows])
            size = np.mean([x["bytes-per-round"] for x in rows])
            parts.append(f"| {m} | {seconds:.3f} | {size:,.0f} |")
    return "\n".join(parts) + "\n"


def compare_cost(
    settings: Settings = QUICK,
    noise: str = "symmetric",
    rate: float = 0.4,
    seed: int = 0,
    cache_dir: Path | None = None,
    repeats: int = 1,
) -> dict[str, float]:
    """FedGSCA's round against FedAvg's: seconds and serialised bytes per round.

    Only rounds after the warm-up count (FedGSCA's warm-up rounds are FedAvg rounds). A
    discarded FedAvg run first warms torch and the site cache. In process the sites run one
    after another, so a round's time is the *sum* of the sites' work plus the server's;
    both methods are measured the same way, which is what the ratio needs.

    With ``repeats`` > 1 the pair runs that many times, in alternating order (FedAvg first,
    then FedGSCA first, ...), so that drift in the machine's speed falls on both. Each
    method's seconds are then the median over the repeats, and ``time-ratio`` is the median
    of the repeats' own ratios (paired, so not the ratio of the two medians);
    ``time-ratio-min``/``-max`` give the spread. Bytes do not vary."""
    execute(RunSpec("fedavg", noise, rate, seed, settings), cache_dir)
    seconds: dict[str, list[float]] = {"fedavg": [], "fedgsca": []}
    size: dict[str, float] = {}
    for i in range(repeats):
        for method in ("fedavg", "fedgsca") if i % 2 == 0 else ("fedgsca", "fedavg"):
            rows = execute(RunSpec(method, noise, rate, seed, settings), cache_dir)["rounds"][settings.warmup_rounds :]
            seconds[method].append(float(np.mean([row["seconds"] for row in rows])))
            size[method] = float(np.mean([row["bytes"] for row in rows]))
    ratios = np.array(seconds["fedgsca"]) / np.array(seconds["fedavg"])
    out: dict[str, float] = {}
    for method in ("fedavg", "fedgsca"):
        out[f"{method}-seconds"] = float(np.median(seconds[method]))
        out[f"{method}-bytes"] = size[method]
    out["time-ratio"] = float(np.median(ratios))
    if repeats > 1:
        out["time-ratio-min"], out["time-ratio-max"] = float(ratios.min()), float(ratios.max())
    out["bytes-ratio"] = out["fedgsca-bytes"] / out["fedavg-bytes"]
    return out
