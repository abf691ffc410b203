"""The numpy all-MiniLM-L6-v2 encoder against the model's published behaviour, its tokeniser
on the cases BERT's uncased tokeniser is known for, and clear errors for a missing or
broken checkpoint.

The similarities are the ones the sentence-transformers documentation prints for this
model on its three example sentences (0.6660, 0.1046, 0.1411). A one-off check against
transformers 4.46.3's ``BertModel`` gave a largest per-token difference of 2.4e-6 on four
questions; transformers is not a dependency, so that check is not repeated here.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from medgate_common import minilm
from medgate_common.errors import ModelError


@pytest.fixture(scope="module")
def encoder() -> minilm.MiniLM:
    return minilm.load()


def test_published_similarities(encoder: minilm.MiniLM) -> None:
    emb = encoder.embed(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    sims = emb @ emb.T
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert sims[0, 1] == pytest.approx(0.6660, abs=1e-4)
    assert sims[0, 2] == pytest.approx(0.1046, abs=1e-4)
    assert sims[1, 2] == pytest.approx(0.1411, abs=1e-4)


def test_wordpiece_tokenisation(encoder: minilm.MiniLM) -> None:
    tok = encoder.tokenizer
    assert tok.tokenize("Is there a hypodense lesion?") == [
        "is",
        "there",
        "a",
        "h",
        "##yp",
        "##ode",
        "##nse",
        "les",
        "##ion",
        "?",
    ]
    assert tok.tokenize("Café naïve, RÉSUMÉ!") == ["cafe", "naive", ",", "resume", "!"]
    assert tok.tokenize("x" * 200) == ["[UNK]"]
    # What transformers 4.46.3's BertTokenizer gives for this vocabulary (checked once, by hand):
    # soft hyphen and zero-width space dropped, CJK ideographs set apart, accents stripped.
    assert tok.tokenize("le\u00adsion is\u200bthere") == ["les", "##ion", "ist", "##her", "##e"]
    assert tok.tokenize("中国肝") == ["中", "国", "[UNK]"]
    assert tok.tokenize("où est la lésion ?") == ["ou", "est", "la", "les", "##ion", "?"]
    assert tok.tokenize("tab\there\nnew\u00a0nbsp") == ["tab", "here", "new", "n", "##bs", "##p"]
    assert tok.tokenize("a—b “quoted” …") == ["a", "—", "b", "“", "quoted", "”", "…"]
    ids = tok.encode("one two three four five", max_tokens=4)
    assert ids[0] == tok.cls and ids[-1] == tok.sep and len(ids) == 4


def test_concurrent_first_loads_share_one_encoder() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        loaded = list(pool.map(lambda _: minilm.load(), range(8)))
    assert all(m is loaded[0] for m in loaded) and minilm.load(minilm.model_dir()) is loaded[0]


def test_concurrent_encodes_leave_the_blas_threads_as_they_were(encoder: minilm.MiniLM) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info

    before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda i: encoder.encode([f"is there a lesion number {i}?"], 24), range(60)))
    assert [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"] == before


def test_batch_padding_does_not_change_a_text_states(encoder: minilm.MiniLM) -> None:
    alone = encoder.encode(["is the liver involved?"], 16)
    padded = encoder.encode(["is the liver involved?", "which organ holds the largest of the focal lesions here?"], 16)
    n = int(alone.mask[0].sum())
    assert np.allclose(alone.states[0, :n], padded.states[0, :n], atol=1e-5)
    assert not padded.states[0, n:].any() and padded.mask[1].all()
    assert alone.tokens[0] == ["[CLS]", "is", "the", "liver", "involved", "?", "[SEP]"]


def test_word_at_joins_pieces() -> None:
    pieces = ["[CLS]", "h", "##yp", "##ode", "##nse", "les", "##ion", "[SEP]"]
    assert minilm.word_at(pieces, 2) == "hypodense"
    assert minilm.word_at(pieces, 5) == "lesion"
    assert minilm.word_at(pieces, 0) == "" and minilm.word_at(pieces, 99) == ""


def test_weights_sha256_names_the_checkpoint() -> None:
    digest = minilm.weights_sha256()
    assert len(digest) == 64 and digest == minilm.weights_sha256(minilm.model_dir())


def test_missing_or_broken_checkpoints_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(minilm.ENV_DIR, str(tmp_path))
    with pytest.raises(ModelError, match=r"no model\.safetensors"):
        minilm.model_dir()
    (tmp_path / "short.safetensors").write_bytes(b"abc")
    with pytest.raises(ModelError, match="not a safetensors"):
        minilm.read_safetensors(tmp_path / "short.safetensors")
    header = json.dumps({"x": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}).encode()
    (tmp_path / "bf16.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0")
    with pytest.raises(ModelError, match="unsupported dtype"):
        minilm.read_safetensors(tmp_path / "bf16.safetensors")
    header = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + np.ones(2, "<f4").tobytes())
    assert minilm.read_safetensors(tmp_path / "model.safetensors")["a"].tolist() == [1.0, 1.0]
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n")
    (tmp_path / "config.json").write_text(
        json.dumps({"hidden_size": 2, "num_attention_heads": 1, "num_hidden_layers": 1, "layer_norm_eps": 1e-12,
                    "max_position_embeddings": 8})
    )  # fmt: skip
    with pytest.raises(ModelError, match="not a BERT checkpoint"):
        minilm.MiniLM(minilm.model_dir())
