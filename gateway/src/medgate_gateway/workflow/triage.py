"""The study's triage score, taken from the reasoning step's result so that the worklist can
sort on it.

The reasoning service scores each series it reports on (``StudyReasoning.series[].triage``,
the probability that the series is abnormal). A study is as urgent as its most suspicious
series, so the study's score is the highest. No score at all (no triage model installed,
every series refused: rejected by the gate, not segmented) is ``None``, never 0: "not scored"
must not sort as "looks normal".
"""

from __future__ import annotations

from typing import Any

from medgate_common.schemas.reasoning import StudyReasoning, TriageScore


def study_triage(result: dict[str, Any] | None) -> TriageScore | None:
    """The highest series score of a reasoning result, or None if no series was scored.

    Raises ``ValueError`` (pydantic's ValidationError) when the result is not a
    :class:`StudyReasoning`.
    """
    if not result:
        return None
    reasoning = StudyReasoning.model_validate(result)
    scores = [series.triage for series in reasoning.series if series.triage is not None]
    return max(scores, key=lambda triage: triage.score, default=None)
