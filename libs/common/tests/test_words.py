"""The word splitter the VQA vocabulary and the out-of-scope check share."""

from __future__ import annotations

from medgate_common.words import words


def test_words_fold_case_accents_and_invisible_characters() -> None:
    assert words("Is there a LÉSION in the liver?") == ["is", "there", "a", "lesion", "in", "the", "liver"]
    assert words("le\u00adsion, T2+ signal; patient's") == ["lesion", "t2+", "signal", "patient's"]
    assert words("?!") == []
