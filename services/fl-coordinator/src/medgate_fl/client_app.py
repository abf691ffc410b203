"""The site's ClientApp (Flower Message API): what a SuperNode runs for each message.

``query.gmm`` answers with the site's loss mixture (three pairs of floats and a count),
``train`` with updated weights and scalar metrics, ``evaluate`` with scalar metrics on the
site's clean held-out slices. Nothing else leaves the site.

A FedGSCA train message may come without weights: the site then trains the model of the
same round's query, which it kept, after checking it against the message's digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from medgate_fl import gmm
from medgate_fl.adjust import AdaptiveThresholds
from medgate_fl.runconfig import DEFAULTS
from medgate_fl.site import Scoring, SiteConfig, evaluate_site, load_site, normalised_losses, scoring_probs, train_round
from medgate_fl.task import build_model
from medgate_fl.wire import ARRAYS_DIGEST, WEIGHTS_NOT_HELD

app = ClientApp()
STATE_KEY = "caa"
#: The query's predictions, kept in the site's state for the same round's train message
#: (same global model): FedGSCA's train step then needs no extra forward pass.
PROBS_KEY = "gmm-probs"
#: The query's model, kept for the same round's train message when that comes without one.
WEIGHTS_KEY = "gmm-weights"
#: The round of the query whose predictions and model are kept.
ROUND_KEY = PROBS_KEY + "-round"
#: A site's arrays are read (or generated) once per process, not once per message.
cached_site = lru_cache(maxsize=16)(load_site)


def site_config(context: Context) -> SiteConfig:
    """Site identity from the SuperNode's node config; the task from the run config."""
    return site_config_from(context.node_config, context.run_config)


def site_config_from(node: Mapping[str, Any], run: Mapping[str, Any]) -> SiteConfig:
    """:func:`site_config` from the two configs themselves (also used by the experiment to
    fingerprint a run's data exactly as its sites load it)."""
    cache = node.get("cache-dir") or run.get("cache-dir")
    return SiteConfig(
        site_id=int(node["site-id"]),
        num_sites=int(node["num-sites"]),
        per_site=int(run.get("per-site", 120)),
        test_count=int(run.get("test-count", DEFAULTS["test-count"])),
        seed=int(run.get("seed", 0)),
        alpha=float(run.get("dirichlet-alpha", 1.0)),
        task=str(run.get("task", "multiclass")),
        noise=str(run.get("noise", "clean")),
        noise_rate=float(run.get("noise-rate", 0.0)),
        cache_dir=Path(str(cache)) if cache else None,
    )


def mixture_from(config: ConfigRecord) -> gmm.Mixture | None:
    if "gmm-means" not in config:
        return None
    return gmm.Mixture.from_lists(
        config["gmm-weights"],  # type: ignore[arg-type]
        config["gmm-means"],  # type: ignore[arg-type]
        config["gmm-variances"],  # type: ignore[arg-type]
    )


def scoring_from(config: ConfigRecord) -> Scoring:
    """The selector's scoring keys of a query or train config (absent: the defaults)."""
    return Scoring(
        per_class=bool(config.get("per-class-norm", DEFAULTS["per-class-norm"])),
        scale=str(config.get("loss-scale", DEFAULTS["loss-scale"])),
        site_bn=bool(config.get("site-bn", DEFAULTS["site-bn"])),
    )


@app.query("gmm")
def query_gmm(msg: Message, context: Context) -> Message:
    site = cached_site(site_config(context))
    model = build_model(site.classes)
    model.load_state_dict(msg.content.array_records["arrays"].to_torch_state_dict())
    config = msg.content.config_records["config"]
    scoring = scoring_from(config)
    probs = scoring_probs(site, model, scoring)
    local = gmm.fit(normalised_losses(site, probs, scoring), init=mixture_from(config))
    context.state[PROBS_KEY] = ArrayRecord({"probs": Array(probs.numpy())})
    context.state[WEIGHTS_KEY] = msg.content.array_records["arrays"]
    context.state[ROUND_KEY] = ConfigRecord({"server-round": int(config.get("server-round", -1))})  # type: ignore[arg-type]
    record = MetricRecord({**local.as_lists(), "num-examples": len(site.labels)})
    return Message(RecordDict({"gmm": record}), reply_to=msg)


def kept_from_query(context: Context, config: ConfigRecord) -> tuple[ArrayRecord | None, torch.Tensor | None]:
    """The model and predictions kept from this round's query, removed from the state (a
    later round must not find them); ``None`` for what is not there or from another round."""
    weights = context.state.array_records.get(WEIGHTS_KEY)
    cached = context.state.array_records.get(PROBS_KEY)
    stamp = context.state.config_records.get(ROUND_KEY)
    for key in (WEIGHTS_KEY, PROBS_KEY, ROUND_KEY):
        if key in context.state:
            del context.state[key]
    if stamp is None or stamp["server-round"] != config.get("server-round"):
        return None, None
    probs = torch.from_numpy(cached["probs"].numpy()) if cached is not None else None
    return weights, probs


@app.train()
def train(msg: Message, context: Context) -> Message:
    site = cached_site(site_config(context))
    config = msg.content.config_records["config"]
    kept, probs = kept_from_query(context, config)
    arrays = msg.content.array_records.get("arrays")
    if arrays is None:
        round_ = int(config.get("server-round", -1))  # type: ignore[arg-type]
        if kept is None:
            raise ValueError(
                f"{WEIGHTS_NOT_HELD}: train message of round {round_} carries no weights and this site holds "
                "none from that round's query"
            )
        if kept.object_id != config.get(ARRAYS_DIGEST):
            raise ValueError(f"the weights kept from round {round_}'s query do not match the train message's digest")
        arrays = kept
    model = build_model(site.classes)
    model.load_state_dict(arrays.to_torch_state_dict())
    thresholds = None
    if str(config.get("thresholds", "adaptive")) == "adaptive":
        saved = context.state.config_records.get(STATE_KEY)
        thresholds = AdaptiveThresholds(site.classes)
        if saved is not None:
            thresholds.tau_global = float(saved["tau-global"])  # type: ignore[arg-type]
            thresholds.class_probs = [float(v) for v in saved["class-probs"]]  # type: ignore[union-attr]
    metrics = train_round(
        site,
        model,
        method=str(config.get("method", "fedavg")),
        epochs=int(config.get("local-epochs", 1)),  # type: ignore[arg-type]
        lr=float(config.get("lr", 1e-3)),  # type: ignore[arg-type]
        batch=int(config.get("batch-size", 32)),  # type: ignore[arg-type]
        mixture=mixture_from(config),
        thresholds=thresholds,
        scoring=scoring_from(config),
        credal=str(config.get("loss", "credal")) == "credal",
        proximal_mu=float(config.get("proximal-mu", 0.0)),  # type: ignore[arg-type]
        selector=str(config.get("selector", "global")),
        probs=probs,
        seed=int(config.get("server-round", 0)),  # type: ignore[arg-type]
    )
    if thresholds is not None:
        context.state[STATE_KEY] = ConfigRecord(
            {"tau-global": thresholds.tau_global, "class-probs": thresholds.class_probs}
        )
    content = RecordDict(
        {
            "arrays": ArrayRecord(model.state_dict()),
            "metrics": MetricRecord({**metrics, "num-examples": len(site.labels)}),
        }
    )
    return Message(content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    site = cached_site(site_config(context))
    model = build_model(site.classes)
    model.load_state_dict(msg.content.array_records["arrays"].to_torch_state_dict())
    metrics = evaluate_site(site, model)
    record = MetricRecord({**metrics, "num-examples": len(site.test_labels)})
    return Message(RecordDict({"metrics": record}), reply_to=msg)
