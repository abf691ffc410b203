"""The one word splitter that VQA training (the vocabulary of seen phrasings written into the
model card) and serving (the out-of-scope check against that vocabulary) share, so the two
cannot split a question differently."""

from __future__ import annotations

import re

WORD = re.compile(r"[a-z0-9+']+")


def words(text: str) -> list[str]:
    """Lower-case words (letters, digits, ``+`` and ``'``) in order."""
    return WORD.findall(text.lower())
