"""The grounded VQA model over the large-model path: MLServer serves it
(deploy/mlserver/vqa, runtime ``medgate_runtimes.GroundedVqa``) and ``KServeV2Backend``, the
client the service uses for a remote model, sends it image + prompt (+ modality and pixel
spacing) and gets the V2T-CoT text back. The text must be exactly what ``VqaModel.answer``
gives in process on the same weights, answerable or not, and input the model refuses must
come back as a permanent ``ModelError`` quoting the model's reason.

The server runs from the MLServer venv (scripts/setup-mlserver.sh installs medgate_common and
medgate_vlm there, without torch); the tests skip only when that venv is missing.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from shared_fixtures import MLSERVER_RUNTIMES, MLSERVER_VENV, MLServerProcess, mlserver_repository

from medgate_common.errors import ModelError, ModelInputError
from medgate_common.inference import KServeV2Backend, TensorSpec
from medgate_ml.vqa.data import TEST_SEED, VqaItem, VqaSet, build_set
from medgate_vlm.core.vqa import CANNOT_ANSWER, MODEL_FILE, VqaModel, load_vqa, package_weights_dir

pytestmark = pytest.mark.integration

MODEL = "medgate-vqa"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLServerProcess]:
    if not (MLSERVER_VENV / "bin" / "mlserver").exists():
        pytest.skip("no MLServer venv (.venv-mlserver); scripts/setup-mlserver.sh creates it")
    repository = mlserver_repository(tmp_path_factory.mktemp("mlserver"))
    shutil.copytree(MLSERVER_RUNTIMES.parent / "vqa", repository / "vqa")  # the deployed settings, as they are
    process = MLServerProcess(repository, repository / "mlserver.log")
    process.start(timeout_s=60.0)
    if httpx.get(f"{process.url}/v2/models/{MODEL}/ready", timeout=5.0).status_code != 200:
        process.stop()  # MLServer drops a model that fails to load and still says it is ready
        pytest.fail(f"{MODEL} did not load; log:\n{process.log.read_text()[-3000:]}")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def remote(server: MLServerProcess) -> Iterator[KServeV2Backend]:
    with KServeV2Backend(server.url, MODEL) as backend:
        yield backend


@pytest.fixture(scope="module")
def local() -> VqaModel:
    return load_vqa()


@pytest.fixture(scope="module")
def held_out() -> VqaSet:
    return build_set(TEST_SEED, 2, (False, True))


def _ask(vqa: KServeV2Backend, data: VqaSet, items: list[VqaItem]) -> list[str]:
    """One request for ``items`` (their images must share a shape)."""
    images = [data.images[it.image] for it in items]
    result = vqa.infer(
        {
            "image": np.stack([im.raw for im in images]).astype(np.float32),
            "prompt": np.array([it.question for it in items]),
            "modality": np.array([im.modality for im in images]),
            "spacing_mm": np.array([im.pixel_mm for im in images], dtype=np.float64),
        }
    )
    text = result.outputs["text"]
    assert text.dtype == object and text.shape == (len(items),)
    return [str(t) for t in text]


def _local(model: VqaModel, data: VqaSet, item: VqaItem) -> str:
    image = data.images[item.image]
    return model.answer(image.raw, image.modality, item.question, spacing_mm=image.pixel_mm).grounded.rationale


def test_serves_the_packaged_weights_under_the_large_model_contract(remote: KServeV2Backend, local: VqaModel) -> None:
    assert remote.inputs == (
        TensorSpec("image", "float32", (None, None, None)),
        TensorSpec("prompt", "object", (None,)),
        TensorSpec("modality", "object", (None,)),
        TensorSpec("spacing_mm", "float64", (None, 2)),
    )
    assert remote.outputs == (TensorSpec("text", "object", (None,)),)
    onnx_sha = hashlib.sha256((package_weights_dir() / MODEL_FILE).read_bytes()).hexdigest()
    assert remote.info.sha256 == local.card.sha256 == onnx_sha
    assert (remote.info.name, remote.info.version, remote.info.backend) == (MODEL, "1", "kserve-v2")


def test_text_equals_the_in_process_answer(remote: KServeV2Backend, local: VqaModel, held_out: VqaSet) -> None:
    # One question per intent, in a seen and in a held-out phrasing, plus out-of-scope ones.
    chosen: dict[tuple[str, bool], VqaItem] = {}
    for item in held_out.items:
        chosen.setdefault((item.intent, item.held_out), item)
    items = list(chosen.values())
    assert len({it.intent for it in items}) >= 10 and any(it.held_out for it in items)
    assert any(it.intent == "out_of_scope" for it in items)
    got = [_ask(remote, held_out, [item])[0] for item in items]
    expected = [_local(local, held_out, item) for item in items]
    for item, text, want in zip(items, got, expected, strict=True):
        assert text == want, item.question
        assert text.startswith("<rationale>") and text.endswith("</answer>")
    refused = [text for text in got if text.endswith(f"<answer>{CANNOT_ANSWER}</answer>")]
    assert refused  # the out-of-scope questions are not answered with a guess
    answered = [text for text in got if not text.endswith(f"<answer>{CANNOT_ANSWER}</answer>")]
    assert len(answered) >= 10


def test_a_batch_is_answered_item_by_item(remote: KServeV2Backend, local: VqaModel, held_out: VqaSet) -> None:
    shape = held_out.images[0].raw.shape
    items = [it for it in held_out.items if held_out.images[it.image].raw.shape == shape][::9][:4]
    items.append(VqaItem(items[0].image, "Is there ascites in this image?", "out_of_scope", "", None, True))
    got = _ask(remote, held_out, items)
    assert got == [_local(local, held_out, item) for item in items]
    assert got[-1].endswith(f"<answer>{CANNOT_ANSWER}</answer>")


def _feed(image: np.ndarray, modality: str = "CT", question: str = "Is there a lesion?") -> dict[str, np.ndarray]:
    return {
        "image": image.astype(np.float32),
        "prompt": np.array([question] * len(image)),
        "modality": np.array([modality] * len(image)),
        "spacing_mm": np.ones((len(image), 2)),
    }


def test_bad_input_is_a_permanent_error_with_the_models_reason(remote: KServeV2Backend, held_out: VqaSet) -> None:
    slice_ = held_out.images[0].raw[None]
    refusals = {
        "modality 'US' is not one of ['CT', 'MR']": _feed(slice_, modality="US"),
        "needs one finite 2D slice": _feed(np.zeros((1, 1, 64))),
        "the question has no words": _feed(slice_, question="  "),
        "expected modality as one string per image": {**_feed(slice_), "modality": np.array(["CT", "MR"])},
    }
    for reason, feed in refusals.items():
        with pytest.raises(ModelError) as info:
            remote.infer(feed)
        assert not isinstance(info.value, ModelInputError)  # refused by the server, not the client
        assert reason in info.value.message and f"'{MODEL}'" in info.value.message
        assert info.value.details["status"] == 400 and not info.value.retryable
        if not reason.startswith("expected"):  # VqaModel's own refusal, with its code
            assert "[model_input_mismatch]" in info.value.message
    # Shapes the served metadata rules out never leave the client.
    with pytest.raises(ModelInputError, match="image"):
        remote.infer({**_feed(slice_), "image": slice_[0]})
    with pytest.raises(ModelInputError, match="spacing_mm"):
        remote.infer({**_feed(slice_), "spacing_mm": np.ones((1, 3))})
