"""MiniMedQ item generation: deterministic, balanced, and gold answers that follow from
what the simulators did; and a small end-to-end bench run."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from iqa_fixtures import truth_report

from medgate_common.schemas.quality import Severity, Verdict
from medgate_iqa.bench import claims
from medgate_iqa.bench.items import LETTERS, Bench, build_bench
from medgate_iqa.bench.specimens import LEVELS, MODALITIES, quick_bases
from medgate_iqa.bench.wording import GENERAL, NO_ARTIFACT
from medgate_iqa.core.language import describe
from medgate_iqa.core.lexicon import attribute_in
from medgate_iqa.core.model import weights_dir
from medgate_iqa.core.sources import BaseSlice
from medgate_iqa.degrade import verdict_of

N = 24  # specimens per modality: divisible by 2, 3 and 4, so every balance is exact


@pytest.fixture(scope="module")
def bases() -> list[BaseSlice]:
    return quick_bases()


@pytest.fixture(scope="module")
def bench(bases: list[BaseSlice]) -> Bench:
    return build_bench(bases, N, seed=3, pairs=8)


def test_same_seed_same_items_other_seed_other_items(bases: list[BaseSlice]) -> None:
    small = [b for b in bases if b.modality == "MR"][:4] + [b for b in bases if b.modality == "CT"][:2]
    one, two = build_bench(small, 6, seed=11, pairs=2), build_bench(small, 6, seed=11, pairs=2)
    assert one.perception == two.perception and one.descriptions == two.descriptions and one.pairs == two.pairs
    for key, specimen in one.specimens.items():
        assert np.array_equal(specimen.image, two.specimens[key].image)
        assert specimen.applied == two.specimens[key].applied
    other = build_bench(small, 6, seed=12, pairs=2)
    assert [i.question for i in other.perception] != [i.question for i in one.perception]


def test_levels_kinds_and_answer_letters_are_balanced(bench: Bench) -> None:
    for modality in MODALITIES:
        items = [i for i in bench.perception if i.modality == modality]
        assert Counter(i.kind for i in items) == {"yes-or-no": N, "what": N, "how": N}
        assert Counter(i.level for i in items if i.kind == "how") == dict.fromkeys(LEVELS, N // 3)
        assert Counter(i.answer for i in items if i.kind == "yes-or-no") == {"A": N // 2, "B": N // 2}
        assert Counter(i.answer for i in items if i.kind == "what") == dict.fromkeys(LETTERS, N // 4)
        assert Counter(i.answer for i in items if i.kind == "how") == dict.fromkeys("ABC", N // 3)
        reals = sum(i.real for i in items if i.kind == "what")
        assert reals == round(N * 0.25)
    preferred = Counter(p.preferred for p in bench.pairs)
    assert preferred["A"] == preferred["B"]
    assert Counter(p.grain for p in bench.pairs) == {"coarse": len(bench.pairs) // 2, "fine": len(bench.pairs) // 2}


def test_questions_and_options_name_what_they_ask_about(bench: Bench) -> None:
    """The service's answer() reads questions and options through the lexicon; every item
    must name its attribute so that it can (and nothing else)."""
    for item in bench.perception:
        specimen = bench.specimens[item.specimen]
        if item.kind == "yes-or-no":
            assert item.options == ("Yes", "No")
            assert attribute_in(item.question) is item.attribute
            applied = {a.attribute for a in specimen.applied}
            assert (item.answer == "A") == (item.attribute in applied)
        elif item.kind == "what":
            named = [attribute_in(o) for o in item.options]
            assert len(item.options) == 4 and len(set(item.options)) == 4
            assert all(a is not None for o, a in zip(item.options, named, strict=True) if o != NO_ARTIFACT)
            truth = item.options[LETTERS.index(item.answer)]
            if specimen.applied:
                assert named[LETTERS.index(item.answer)] is specimen.applied[0].attribute
                assert not {a.attribute for a in specimen.applied} & {
                    a for a, o in zip(named, item.options, strict=True) if o != truth
                }
            else:
                assert truth == NO_ARTIFACT
        else:
            assert item.options in (("Good", "Usable", "Reject"), ("None", "Mild", "Severe"))
            assert item.answer == LETTERS[LEVELS.index(specimen.level)]
            if item.attribute is not None:  # a severity question
                assert attribute_in(item.question) is item.attribute
        general = item.attribute is None or item.attribute in GENERAL
        assert item.scope == ("general" if general else "specific")


def test_gold_descriptions_follow_the_simulator_and_the_severity_rule(bench: Bench) -> None:
    for d in bench.descriptions:
        specimen = bench.specimens[d.specimen]
        assert d.verdict is Verdict(verdict_of([a.level for a in specimen.applied]))
        assert d.verdict is {Severity.none: Verdict.good, Severity.mild: Verdict.usable}.get(
            specimen.level, Verdict.reject
        )
        assert 3 <= len(claims.sentences(d.gold)) <= 5
        assert d.gold.endswith(f"Overall, the quality of this image is {d.verdict.value}.")
        read = claims.asserted(claims.read(d.gold))
        assert read == {a.attribute: a.level for a in specimen.applied}
    for p in bench.pairs:
        a, b = bench.specimens[p.a], bench.specimens[p.b]
        better, worse = (a, b) if p.preferred == "A" else (b, a)
        assert LEVELS.index(better.level) < LEVELS.index(worse.level)
        assert worse.level is Severity.severe
        assert better.level is (Severity.none if p.grain == "coarse" else Severity.mild)
        assert a.source == b.source
        assert p.gold.endswith(f"Overall, image {p.preferred} has the higher quality.")


def test_gold_wording_is_not_the_services_wording(bench: Bench) -> None:
    """A judge comparing the service's text with gold text in the service's own words would
    reward copying; the two share no sentence but the fixed closing one."""
    for d in bench.descriptions[:20]:
        specimen = bench.specimens[d.specimen]
        report = truth_report(specimen, d.modality, d.verdict)
        shared = set(claims.sentences(describe(report))) & set(claims.sentences(d.gold))
        assert shared <= {f"Overall, the quality of this image is {d.verdict.value}."}


@pytest.mark.slow
def test_a_small_bench_run_fills_every_table(tmp_path: Path) -> None:
    if not (weights_dir() / "quality.onnx").exists():
        pytest.skip("the packaged quality weights are not built (medgate iqa train)")
    from rich.console import Console

    from medgate_iqa.bench.run import run_bench

    out = tmp_path / "bench.json"
    run_bench(seed=0, images=3, json_out=out, pairs=2, calibration_slices=3, console=Console(width=160))
    check_tables(json.loads(out.read_text()), images=3)


def check_tables(results: dict[str, Any], images: int) -> None:
    from medgate_iqa.bench.report import GROUP_ORDER

    for system in ("model", "stats", "chance"):
        table = results["perception"][system]
        assert set(table) == set(GROUP_ORDER)
        for group, values in GROUP_ORDER.items():
            assert set(table[group]) == set(values)
        assert 0.0 <= table["overall"]["all"]["accuracy"] <= 1.0
        assert table["overall"]["all"]["n"] == 3 * images * len(MODALITIES)
    assert results["perception"]["chance"]["type"]["yes-or-no"]["accuracy"] == 0.5
    assert results["perception"]["chance"]["type"]["what"]["accuracy"] == 0.25
    for system in ("model", "stats"):
        for task, subsets in (
            ("single", {"all", "synthetic", "real"}),
            ("pair", {"all", "synthetic", "real", "coarse", "fine"}),
        ):
            assert set(results["reasoning"][system][task]) == subsets
            cell = results["reasoning"][system][task]["all"]
            assert set(cell) == {"completeness", "preciseness", "consistency", "quality_accuracy", "total", "n"}
            assert 0.0 <= cell["total"]["mean"] <= 8.0
    config = results["config"]
    assert config["model"]["sha256"] and config["timings"]["total_s"] > 0
    for cuts in config["stats_calibration"].values():
        assert all(c["mild"] <= c["severe"] for c in cuts.values())
    assert re.fullmatch(r"rule-judge-\d+", config["judge"])
