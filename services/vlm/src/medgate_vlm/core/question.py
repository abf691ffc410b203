"""The question side of the VQA model at serving time: the out-of-scope check.

Out of scope ("cannot answer from this study") is decided before any answer is given:
the model's own intent head may say so (it was trained on out-of-scope questions), or the
question, read as an intent that is about something (a finding, or the largest organ),
names none of the things that intent knows, yet contains a term the model has never seen —
e.g. "is there ascites?", "where is the gallstones?". The reason names the unknown terms.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from medgate_common.words import words

#: Words of no meaning for the check (a question may add them freely).
STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "this",
        "that",
        "these",
        "those",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "with",
        "by",
        "from",
        "and",
        "or",
        "any",
        "there",
        "here",
        "it",
        "its",
        "do",
        "does",
        "did",
        "can",
        "could",
        "you",
        "your",
        "me",
        "my",
        "please",
        "what",
        "which",
        "where",
        "who",
        "how",
        "shown",
        "show",
        "seen",
        "see",
        "visible",
        "present",
    ]
)


def _trigrams(word: str) -> set[str]:
    marked = f"<{word}>"
    return {marked[j : j + 3] for j in range(len(marked) - 2)}


def unknown_terms(text: str, known: Collection[str], min_similarity: float = 0.6) -> list[str]:
    """Words neither known nor a near spelling (trigram Jaccard ≥ ``min_similarity``) of a known word."""
    out = []
    grams = {k: _trigrams(k) for k in known}
    for w in words(text):
        if w in STOP or w in known or w.isdigit():
            continue
        mine = _trigrams(w)
        if not any(len(mine & g) / len(mine | g) >= min_similarity for g in grams.values()):
            out.append(w)
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class ScopeDecision:
    answerable: bool
    reason: str = ""


def decide_scope(
    text: str,
    intent: str,
    *,
    known_words: Collection[str],
    subject_words: Mapping[str, Collection[str]],
    scope_summary: str,
) -> ScopeDecision:
    """Answerable unless the intent head says out of scope, or the question, read as an intent
    that is about something (a finding, an organ: the keys of ``subject_words``), names none of
    the things that intent knows yet carries a word never seen in training: "where is the
    ascites?" is not a question about the largest organ, whatever the head makes of "where"."""
    unknown = unknown_terms(text, known_words)
    quoted = ", ".join(f"'{w}'" for w in unknown)
    if intent == "out_of_scope":
        about = f" (it asks about {quoted})" if unknown else ""
        return ScopeDecision(False, f"the question is not one this model was trained to answer{about}; {scope_summary}")
    present = set(words(text))
    subjects = subject_words.get(intent)
    if subjects is not None and unknown and not any(f in present or f in text.lower() for f in subjects):
        return ScopeDecision(
            False, f"the question asks about {quoted}, which is outside this model's findings; {scope_summary}"
        )
    return ScopeDecision(True)
