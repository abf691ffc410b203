"""The one word splitter that VQA training (the vocabulary of seen phrasings written into the
model card) and serving (the out-of-scope check against that vocabulary) share, so the two
cannot split a question differently."""

from __future__ import annotations

import re
import unicodedata

WORD = re.compile(r"[a-z0-9+']+")


def words(text: str) -> list[str]:
    """Lower-case words (letters, digits, ``+`` and ``'``) in order, accents and invisible
    format characters dropped first as the question encoder's tokeniser drops them, so
    "lésion" is the word "lesion" here too."""
    plain = unicodedata.normalize("NFD", text.lower())
    plain = "".join(ch for ch in plain if unicodedata.category(ch) not in ("Mn", "Cf"))
    return WORD.findall(plain)
