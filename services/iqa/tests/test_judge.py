"""The rule judge: what it reads out of free text, the scores it gives to the gold, to
contradicting and wrong-verdict candidates, and its agreement with hand-scored cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from iqa_fixtures import truth_report

from medgate_common.schemas.quality import QualityAttribute as A
from medgate_common.schemas.quality import Severity, Verdict
from medgate_iqa.bench import claims
from medgate_iqa.bench.items import Bench, build_bench
from medgate_iqa.bench.judge import AXES, RuleJudge
from medgate_iqa.bench.specimens import quick_bases
from medgate_iqa.core.language import describe
from medgate_iqa.core.sources import BaseSlice

LABELS = Path(__file__).parent / "data" / "judge_handlabelled.json"
FLOOR = 0.75  # exact agreement per axis; MedQ's GPT-4o judge reached 83-91 % against experts
judge = RuleJudge()


@pytest.fixture(scope="module")
def bases() -> list[BaseSlice]:
    return quick_bases()


@pytest.fixture(scope="module")
def bench(bases: list[BaseSlice]) -> Bench:
    return build_bench(bases, 12, seed=5, pairs=6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The image is not diagnostic due to severe streaks.", {A.streak: (True, Severity.severe)}),
        ("Streaks are absent and the slice is motion-free.", {A.streak: (False, None), A.motion: (False, None)}),
        (
            "There is no visible noise, and very poor contrast hides the liver.",
            {A.noise: (False, None), A.contrast: (True, Severity.severe)},
        ),
        ("No streak, ring or metal artifacts are present.", dict.fromkeys((A.streak, A.ring, A.metal), (False, None))),
        ("Edges are smeared along one direction. The effect is slight.", {A.limited_angle: (True, Severity.mild)}),
        ("Noise is minimal; slight ghosting is seen.", {A.noise: (False, None), A.ghosting: (True, Severity.mild)}),
        ("Marked motion blur.", {A.motion: (True, Severity.severe)}),
    ],
)
def test_reader_scopes_negation_and_severity(text: str, expected: dict[A, tuple[bool, Severity | None]]) -> None:
    assert {a: (c.present, c.severity) for a, c in claims.read(text).items()} == expected


def test_verdict_and_preference_read_free_wording() -> None:
    assert claims.verdict("Overall, the quality of this image is usable.") is Verdict.usable
    assert claims.verdict("Strong inhomogeneity. I would reject it.") is Verdict.reject
    assert claims.verdict("Good contrast and sharpness. I'd rate it as excellent.") is Verdict.good
    assert claims.verdict("Faint ghosts along the phase direction.") is None
    assert claims.preference("Overall, image B has the higher quality.") == "B"
    assert claims.preference("Consequently, the first image is clearly preferable.") == "A"
    assert claims.preference("Image A is worse than image B in every respect.") == "B"


def test_gold_scores_full_marks_against_itself(bench: Bench) -> None:
    for d in bench.descriptions:
        assert judge.score(d.gold, d.gold, "single").total == 8, d.gold
    for p in bench.pairs:
        assert judge.score(p.gold, p.gold, "pair").total == 8, p.gold


def test_the_services_description_of_the_true_findings_scores_full_marks(bench: Bench) -> None:
    """A model that found exactly what the simulator did must get 8/8 in the service's own
    words, which differ from the gold's."""
    for d in bench.descriptions:
        specimen = bench.specimens[d.specimen]
        report = truth_report(specimen, d.modality, d.verdict)
        scores = judge.score(describe(report), d.gold, "single")
        assert scores.total == 8, scores.raw


GOLD = (
    "In this CT slice, anatomical edges are crisp and free of blurring, there is no visible noise in the tissue, "
    "and tissue contrast is well preserved. Severe streak artifacts from sparse-view sampling radiate across the "
    "field of view. Diagnostic detail is lost under these problems, so the slice should be acquired again. "
    "Overall, the quality of this image is reject."
)


def test_a_contradicting_candidate_scores_low() -> None:
    candidate = "The slice is free of streaks, but heavy noise and marked blurring are present. " + (
        "Overall, the quality of this image is good."
    )
    scores = judge.score(candidate, GOLD, "single")
    assert scores.preciseness == 0 and scores.completeness == 0 and scores.quality_accuracy == 0
    assert scores.consistency == 0  # severe problems of its own, called good
    assert scores.total <= 1


def test_a_wrong_verdict_is_caught() -> None:
    assert judge.score(GOLD, GOLD, "single").axes() == dict.fromkeys(AXES, 2)
    adjacent = judge.score(GOLD.replace("is reject.", "is usable."), GOLD, "single")
    assert (adjacent.quality_accuracy, adjacent.consistency, adjacent.preciseness) == (1, 1, 1)
    opposite = judge.score(GOLD.replace("is reject.", "is good."), GOLD, "single")
    assert (opposite.quality_accuracy, opposite.consistency, opposite.preciseness) == (0, 0, 0)
    assert opposite.completeness == 2


def test_a_pair_preferring_the_worse_image_is_caught() -> None:
    gold = (
        "Image A is clean, with crisp edges and no visible artifacts. Image B shows severe ring artifacts. "
        "The difference is obvious: image B is far more degraded. Overall, image A has the higher quality."
    )
    right = judge.score(
        "Image B has strong rings; image A is clean. Overall, image A has the higher quality.", gold, "pair"
    )
    wrong = judge.score(
        "Image B has strong rings; image A is clean. Overall, image B has the higher quality.", gold, "pair"
    )
    assert right.total == 8
    assert (wrong.quality_accuracy, wrong.preciseness, wrong.consistency) == (0, 0, 0)


def quadratic_kappa(a: list[int], b: list[int], k: int = 3) -> float:
    """Cohen's kappa with quadratic weights, as MedQ reports for its judge."""
    observed = np.zeros((k, k))
    for i, j in zip(a, b, strict=True):
        observed[i, j] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / max(len(a), 1)
    weights = np.subtract.outer(np.arange(k), np.arange(k)) ** 2 / (k - 1) ** 2
    chance = float((weights * expected).sum())
    return 1.0 if chance == 0 else 1.0 - float((weights * observed).sum()) / chance


def test_agreement_with_hand_labels_meets_the_floor() -> None:
    cases = json.loads(LABELS.read_text())["cases"]
    assert len(cases) >= 24
    rows = [(case, judge.score(case["candidate"], case["gold"], case["task"]).axes()) for case in cases]
    lines, exact = [], {}
    for subset in ("design", "holdout", "blind", "blind2", "all"):
        chosen = [(c, got) for c, got in rows if subset in ("all", c["set"])]
        cells = []
        for axis in AXES:
            human = [c["human"][axis] for c, _ in chosen]
            rule = [got[axis] for _, got in chosen]
            share = float(np.mean([h == r for h, r in zip(human, rule, strict=True)]))
            cells.append(f"{axis} {100 * share:.0f}% (kw {quadratic_kappa(human, rule):.2f})")
            if subset == "all":
                exact[axis] = share
        lines.append(f"{subset} (n={len(chosen)}): " + ", ".join(cells))
    print("\n".join(lines))
    assert all(share >= FLOOR for share in exact.values()), lines
