"""Hashed word + character-trigram token ids (fastText-style subwords), in numpy.

One implementation for the VQA question encoder's training (``medgate_ml.vqa.text``) and
its serving (``medgate_vlm.core.question``), so the ids cannot drift apart. A misspelt or
unseen word still shares most of its trigrams with the word it resembles.
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import numpy.typing as npt

WORD = re.compile(r"[a-z0-9+']+")


def words(text: str) -> list[str]:
    """Lower-case words (letters, digits, ``+`` and ``'``) in order."""
    return WORD.findall(text.lower())


def token_ids(text: str, max_words: int, ids_per_word: int, buckets: int) -> npt.NDArray[np.int64]:
    """``[max_words, ids_per_word]``: per word, its own hashed id then its character
    trigrams of ``<word>``, each ``1 + crc32 % buckets`` (0 is padding)."""
    out = np.zeros((max_words, ids_per_word), dtype=np.int64)
    for i, word in enumerate(words(text)[:max_words]):
        marked = f"<{word}>"
        pieces = [f"w:{word}", *(marked[j : j + 3] for j in range(len(marked) - 2))][:ids_per_word]
        out[i, : len(pieces)] = [1 + zlib.crc32(p.encode()) % buckets for p in pieces]
    return out
