"""``medgate fl experiment`` on the quick configuration: structure, caching, determinism."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medgate_fl import experiment, noise
from medgate_fl.cli import app

METHODS = ["fedavg", "clean", "fedgsca"]


def test_key_covers_every_parameter() -> None:
    base = experiment.RunSpec("fedgsca", "symmetric", 0.4, 0, experiment.QUICK)
    keys = {base.key}
    for changed in (
        experiment.RunSpec("fedavg", "symmetric", 0.4, 0, experiment.QUICK),
        experiment.RunSpec("fedgsca", "asymmetric", 0.4, 0, experiment.QUICK),
        experiment.RunSpec("fedgsca", "symmetric", 0.2, 0, experiment.QUICK),
        experiment.RunSpec("fedgsca", "symmetric", 0.4, 1, experiment.QUICK),
        *(
            experiment.RunSpec(
                "fedgsca", "symmetric", 0.4, 0, experiment.Settings(**{**vars(experiment.QUICK), name: value})
            )
            for name, value in [
                ("sites", 4),
                ("per_site", 25),
                ("rounds", 5),
                ("lr", 0.02),
                ("per_class_norm", False),
                ("warmup_rounds", 2),
                ("local_epochs", 2),
                ("alpha", 0.5),
                ("test_count", 49),
                ("proximal_mu", 0.1),
                ("task", "multiclass"),
                ("batch_size", 16),
                ("loss_scale", "minmax"),
                ("site_bn", False),
            ]
        ),
    ):
        keys.add(changed.key)
    assert len(keys) == 19
    assert experiment.RunSpec("fedgsca", "symmetric", 0.4, 0, experiment.QUICK).key == base.key


def test_normalisation_belongs_to_the_selecting_methods_only() -> None:
    site_wide = experiment.Settings(**{**vars(experiment.QUICK), "per_class_norm": False})
    for method in experiment.METHODS:
        default = experiment.RunSpec(method, "symmetric", 0.4, 0, experiment.QUICK)
        other = experiment.RunSpec(method, "symmetric", 0.4, 0, site_wide)
        if method in experiment.SELECTING:
            assert default.run_config()["per-class-norm"] is True
            assert other.run_config()["per-class-norm"] is False
            assert default.key != other.key
        else:
            # FedAvg, FedProx and the clean bound run identically either way: one key, one run.
            assert "per-class-norm" not in default.run_config()
            assert default.key == other.key


def test_ablations_map_to_config() -> None:
    fixed = experiment.RunSpec("fedgsca-fixed", "symmetric", 0.4, 0, experiment.QUICK).run_config()
    ce = experiment.RunSpec("fedgsca-ce", "symmetric", 0.4, 0, experiment.QUICK).run_config()
    local = experiment.RunSpec("local-gmm", "symmetric", 0.4, 0, experiment.QUICK).run_config()
    assert (fixed["strategy"], fixed["thresholds"]) == ("fedgsca", "fixed")
    assert (ce["strategy"], ce["loss"]) == ("fedgsca", "ce")
    assert local["strategy"] == "local-gmm"


def test_the_binary_grid_asks_for_no_rate_its_sites_cannot_have() -> None:
    """Every rate of the default grid reaches the sites as asked (no cap lowers it), so two
    settings are never the same run under two names."""
    for task, classes in (("binary", 2), ("multiclass", 4)):
        plan = experiment.default_noise(task)
        assert set(plan) == {"symmetric", "asymmetric", "extreme", "heterogeneous"}
        assert all(len(set(rates)) == 2 for rates in plan.values())
        for kind, rates in plan.items():
            for rate in rates:
                sites = noise.site_noise_plan(kind, rate, 10, classes, seed=0)
                assert np.mean([s.rate for s in sites]) == pytest.approx(rate) or kind == "extreme"
                assert all(s.rate == pytest.approx(rate) for s in sites if kind == "extreme" and s.kind != "clean")
    assert experiment.default_noise("binary")["extreme"] == experiment.BINARY_EXTREME


def test_quick_grid_is_sane_cached_and_deterministic(tmp_path: Path, cache: Path) -> None:
    specs = experiment.grid(METHODS, {"symmetric": (0.4,)}, [0], experiment.QUICK)
    results = experiment.run_grid(specs, tmp_path / "a", cache)
    assert [r["params"]["method"] for r in results] == METHODS
    for r in results:
        s = r["summary"]
        assert len(r["rounds"]) == experiment.QUICK.rounds
        for metric in ("accuracy", "macro-f1", "minority-recall", "accuracy-std-last10"):
            assert 0.0 <= s[metric] <= 1.0
        assert s["bytes-per-round"] > 0
        assert s["round-seconds"] > 0
        assert (s["selection-precision"] is not None) == (r["params"]["method"] == "fedgsca")
        assert (tmp_path / "a" / "runs" / f"{r['key']}.json").exists()
    gsca = results[2]["summary"]
    assert 0.0 < gsca["selection-precision"] <= 1.0
    assert 0.0 < gsca["selection-recall"] <= 1.0
    # FedGSCA's query round carries the model once more: more bytes than FedAvg.
    assert gsca["bytes-per-round"] > results[0]["summary"]["bytes-per-round"]
    # Cached: a second call reads the JSON (timings included); a fresh folder recomputes
    # the same numbers.
    assert experiment.run_grid(specs, tmp_path / "a", cache) == results
    again = experiment.execute(specs[2], cache)
    for a, b in zip(again["rounds"], results[2]["rounds"], strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    table = experiment.report(results)
    assert "| symmetric | 0.4 |" in table
    assert "### selection-precision" in table


def test_a_stored_run_made_from_other_data_is_run_again(tmp_path: Path, cache: Path) -> None:
    """The run key covers parameters and code version, the stored data digest the data:
    a cap on the noise rates once changed five runs' labels without a version bump and
    their stored results were read as current. Same digest or none (a run from before the
    digest): the stored file is read. Another digest: the run executes again."""
    spec = experiment.RunSpec("fedavg", "symmetric", 0.4, 0, replace(experiment.QUICK, rounds=2))
    first = experiment.run_one(spec, tmp_path, cache)
    assert first["data-sha256"] == experiment.data_digest(spec, cache)
    path = tmp_path / "runs" / f"{spec.key}.json"
    marked = {**first, "seconds": -1.0}  # a value no execution writes: proves the file was read
    path.write_text(json.dumps(marked))
    assert experiment.run_one(spec, tmp_path, cache)["seconds"] == -1.0
    path.write_text(json.dumps({k: v for k, v in marked.items() if k != "data-sha256"}))
    assert experiment.run_one(spec, tmp_path, cache)["seconds"] == -1.0
    path.write_text(json.dumps({**marked, "data-sha256": "0" * 64}))
    again = experiment.run_one(spec, tmp_path, cache)
    assert again["seconds"] > 0 and again["data-sha256"] == first["data-sha256"]
    assert json.loads(path.read_text())["seconds"] == again["seconds"]
    assert again["rounds"][-1]["accuracy"] == first["rounds"][-1]["accuracy"]
    # the digest sees the labels: the same images at another noise rate digest differently
    assert experiment.data_digest(replace(spec, rate=0.2), cache) != first["data-sha256"]


def test_cli_quick_writes_runs_and_tables(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["experiment", "--quick", "--out", str(tmp_path), "--cache-dir", str(cache),
            "--method", "fedavg", "--noise", "symmetric:0.4", "--seeds", "1", "--rounds", "2"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    runs = list((tmp_path / "runs").glob("*.json"))
    assert len(runs) == 1
    assert json.loads(runs[0].read_text())["params"]["rounds"] == 2
    assert "| fedavg |" in (tmp_path / "results.md").read_text()
    # FedAvg does not select, so the normalisation is not part of its run (nor of its key).
    assert json.loads(runs[0].read_text())["params"]["per_class_norm"] is False
    selecting = [a if a != "fedavg" else "fedgsca" for a in args]
    # Scoring options left out take the grid's defaults (experiment.Settings), not the CLI's own.
    default = experiment.Settings()
    cases: list[tuple[list[str], dict[str, object]]] = [
        ([], {"per_class_norm": default.per_class_norm, "loss_scale": default.loss_scale, "site_bn": default.site_bn}),
        (["--site-norm"], {"per_class_norm": False, "loss_scale": default.loss_scale}),
        (["--loss-scale", "minmax", "--global-bn"], {"per_class_norm": default.per_class_norm}),
    ]
    for i, (flags, expected) in enumerate(cases):
        out = tmp_path / f"fedgsca{i}"
        done = CliRunner().invoke(app, [*selecting, "--out", str(out), *flags])
        assert done.exit_code == 0, done.output
        (run,) = (out / "runs").glob("*.json")
        params = json.loads(run.read_text())["params"]
        assert {k: params[k] for k in expected} == expected
        if "--global-bn" in flags:  # the scoring from before keeps the old keys: none written
            assert "loss_scale" not in params and "site_bn" not in params
    # With no scoring flag the run takes whatever the grid's settings say, not a CLI literal.
    monkeypatch.setattr(experiment, "QUICK", replace(experiment.QUICK, loss_scale="minmax", site_bn=False))
    done = CliRunner().invoke(app, [*selecting, "--out", str(tmp_path / "patched")])
    assert done.exit_code == 0, done.output
    (run,) = (tmp_path / "patched" / "runs").glob("*.json")
    assert "loss_scale" not in json.loads(run.read_text())["params"]  # minmax: the key from before


def test_cost_comparison(cache: Path) -> None:
    cost = experiment.compare_cost(experiment.Settings(**{**vars(experiment.QUICK), "rounds": 2}), cache_dir=cache)
    assert cost["fedgsca-seconds"] > 0
    assert cost["fedavg-seconds"] > 0
    # A selecting FedGSCA round sends the model once, with query.gmm; its train messages carry
    # config and the weights' digest, and the replies add a mixture per site: a little more
    # than FedAvg, nothing like a second copy of the model (that was 1.3-1.6).
    assert 1.0 < cost["bytes-ratio"] < 1.02


def test_cost_pairs_alternate_and_the_ratio_is_the_median_of_the_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """``execute`` is replaced by a script of round times (no federation runs): what is
    checked is the order of the runs and the arithmetic of the report."""
    settings = experiment.Settings(**{**vars(experiment.QUICK), "rounds": 2})  # one round after the warm-up
    script = {"fedavg": iter([99.0, 10.0, 10.0, 10.0]), "fedgsca": iter([12.0, 15.0, 11.0])}
    calls: list[str] = []

    def scripted(spec: experiment.RunSpec, cache_dir: Path | None = None) -> dict[str, object]:
        calls.append(spec.method)
        seconds = next(script[spec.method])
        return {
            "rounds": [{"seconds": 0.0, "bytes": 1.0}, {"seconds": seconds, "bytes": 2.0 + (spec.method == "fedgsca")}]
        }

    monkeypatch.setattr(experiment, "execute", scripted)
    cost = experiment.compare_cost(settings, repeats=3)
    # A discarded FedAvg warm-up, then pairs in alternating order.
    assert calls == ["fedavg", "fedavg", "fedgsca", "fedgsca", "fedavg", "fedavg", "fedgsca"]
    assert cost["fedavg-seconds"] == 10.0 and cost["fedgsca-seconds"] == 12.0
    assert cost["time-ratio"] == pytest.approx(1.2)  # median of 1.2, 1.5, 1.1
    assert (cost["time-ratio-min"], cost["time-ratio-max"]) == pytest.approx((1.1, 1.5))
    assert cost["bytes-ratio"] == pytest.approx(1.5)


def test_settings_that_could_not_select_or_train_are_refused() -> None:
    from dataclasses import replace

    from medgate_fl.server_app import train_config_from

    with pytest.raises(ValueError, match="never select"):
        replace(experiment.Settings(), rounds=6)  # the default warm-up is 10 rounds
    with pytest.raises(ValueError, match="at least 2"):
        replace(experiment.QUICK, batch_size=1)
    with pytest.raises(ValueError, match="at least 2"):
        train_config_from({"batch-size": 1})
    assert train_config_from({})["batch-size"] == 32
    assert train_config_from(experiment.RunSpec("fedavg", "clean", 0.0, 0).run_config())["batch-size"] == 8


def test_cli_refuses_a_warm_up_as_long_as_the_run(tmp_path: Path) -> None:
    args = ["experiment", "--quick", "--out", str(tmp_path), "--method", "fedgsca", "--rounds", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "never select" in result.output
    assert not (tmp_path / "runs").exists()


def test_runs_with_the_scoring_from_before_keep_their_keys() -> None:
    """Runs cached before ``loss_scale`` and ``site_bn`` existed are found again under the
    old scoring (min-max, federation BatchNorm statistics), and FedAvg's key ignores both."""
    before = experiment.Settings(**{**vars(experiment.QUICK), "loss_scale": "minmax", "site_bn": False})
    spec = experiment.RunSpec("fedgsca", "symmetric", 0.4, 0, before)
    assert "loss_scale" not in spec.params() and "site_bn" not in spec.params()
    assert spec.run_config()["loss-scale"] == "minmax" and spec.run_config()["site-bn"] is False
    now = experiment.RunSpec("fedgsca", "symmetric", 0.4, 0, experiment.QUICK)
    assert now.params()["loss_scale"] == "probability" and now.params()["site_bn"] is True
    # site-BN runs name how they took the statistics: stop 22's two-pass runs had no such key
    assert now.params()["site_bn_stats"] == experiment.SITE_BN_STATS
    assert "site_bn_stats" not in spec.params()
    assert "site_bn_stats" not in experiment.RunSpec("fedavg", "symmetric", 0.4, 0, experiment.QUICK).params()
    assert (
        experiment.RunSpec("fedavg", "symmetric", 0.4, 0, before).key
        == experiment.RunSpec("fedavg", "symmetric", 0.4, 0, experiment.QUICK).key
    )
    with pytest.raises(ValueError, match="loss scale"):
        experiment.Settings(loss_scale="zscore")
