"""The question encoder's token ids: hashed words + character trigrams
(:func:`medgate_common.subwords.token_ids`, the one implementation that serving uses too),
with this model's sizes; the sizes are written to the model card.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from medgate_common import subwords

MAX_WORDS = 16
IDS_PER_WORD = 10
BUCKETS = 4096


def token_ids(text: str) -> npt.NDArray[np.int64]:
    """[MAX_WORDS, IDS_PER_WORD] ids: per word its own id, then its trigrams (0 = padding)."""
    return subwords.token_ids(text, MAX_WORDS, IDS_PER_WORD, BUCKETS)
