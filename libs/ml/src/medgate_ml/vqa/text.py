"""The question encoder's input: the per-token states of the pretrained all-MiniLM-L6-v2
sentence encoder (:mod:`medgate_common.minilm`, kept frozen; serving calls the same code).

A question becomes ``[MAX_TOKENS, HIDDEN]`` float states (``[CLS]``, word pieces,
``[SEP]``, then zero rows); a zero row is padding. Many questions repeat the same
phrasing, so :func:`encode_questions` encodes each distinct text once and returns an index.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from medgate_common import minilm

MAX_TOKENS = 24
HIDDEN = 384
BATCH = 128


def question_states(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """[N, MAX_TOKENS, HIDDEN] frozen token states of each text (zero rows past its end)."""
    out = np.zeros((len(texts), MAX_TOKENS, HIDDEN), dtype=np.float32)
    encoder = minilm.load()
    for start in range(0, len(texts), BATCH):
        enc = encoder.encode(list(texts[start : start + BATCH]), MAX_TOKENS)
        out[start : start + enc.states.shape[0], : enc.states.shape[1]] = enc.states
    return out


def encode_questions(texts: Sequence[str]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The states of each distinct text [U, MAX_TOKENS, HIDDEN] and, per text, its row [N]."""
    unique = list(dict.fromkeys(texts))
    row = {t: i for i, t in enumerate(unique)}
    return question_states(unique), np.array([row[t] for t in texts], dtype=np.int64)
