"""MLServer runtimes that serve MedGate models over the KServe v2 protocol.

``mlserver start deploy/mlserver`` puts this folder on ``sys.path``, so a model-settings.json
anywhere below it can name ``medgate_runtimes.OnnxModel``, ``medgate_runtimes.GroundedVqa``
(``deploy/mlserver/vqa``) or ``medgate_runtimes.ImageQuestionStandIn``. Each runtime reports
the sha256 of what it runs in its metadata ``parameters``; ``KServeV2Backend`` puts it in
every result's ``ModelInfo``.

Tensors are converted here rather than with MLServer's codecs, which add a batch dimension
to 1-D outputs and turn string tensors into fixed-width numpy arrays.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.errors import InferenceError
from mlserver.types import (
    InferenceRequest,
    InferenceResponse,
    MetadataModelResponse,
    MetadataTensor,
    Parameters,
    RequestInput,
    ResponseOutput,
)
from mlserver.utils import get_model_uri, to_absolute_path

_V2_TO_NUMPY = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
_ORT_TO_V2 = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _array(tensor: RequestInput) -> np.ndarray:
    data = getattr(tensor.data, "root", tensor.data)
    if tensor.datatype == "BYTES":
        items = [d.decode() if isinstance(d, bytes) else str(d) for d in np.asarray(data, dtype=object).ravel()]
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array.reshape(tensor.shape)
    dtype = _V2_TO_NUMPY.get(str(tensor.datatype))
    if dtype is None:
        raise InferenceError(f"datatype {tensor.datatype} of {tensor.name!r} is not supported")
    return np.asarray(data, dtype=dtype).reshape(tensor.shape)


def _output(name: str, array: np.ndarray, datatype: str) -> ResponseOutput:
    data: list[Any] = [str(x) for x in array.ravel()] if datatype == "BYTES" else array.ravel().tolist()
    return ResponseOutput(name=name, datatype=datatype, shape=list(array.shape), data=data)


class _Runtime(MLModel):
    """Adds the served artefact's sha256 to the metadata MLServer builds from the settings."""

    _sha256: str

    async def metadata(self) -> MetadataModelResponse:
        meta = await super().metadata()
        meta.parameters = Parameters(sha256=self._sha256)
        return meta


class OnnxModel(_Runtime):
    """One ONNX file (``parameters.uri`` in model-settings.json) run by onnxruntime on CPU.

    Inputs and outputs need not be declared in model-settings.json: they are read from the
    file, with symbolic dimensions reported as -1.
    """

    async def load(self) -> bool:
        path = Path(await get_model_uri(self._settings))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self._sha256 = _sha256(path)
        if not self._settings.inputs:
            self._settings.inputs = [self._describe(arg) for arg in self._session.get_inputs()]
        if not self._settings.outputs:
            self._settings.outputs = [self._describe(arg) for arg in self._session.get_outputs()]
        return True

    @staticmethod
    def _describe(arg: Any) -> MetadataTensor:
        shape = [d if isinstance(d, int) else -1 for d in arg.shape]
        return MetadataTensor(name=arg.name, datatype=_ORT_TO_V2[arg.type], shape=shape)

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feed = {tensor.name: _array(tensor) for tensor in payload.inputs}
        names = [arg.name for arg in self._session.get_outputs()]
        try:
            values = self._session.run(names, feed)
        except Exception as exc:  # onnxruntime raises untyped errors for bad feeds
            raise InferenceError(f"onnxruntime: {exc}") from exc
        types = {arg.name: _ORT_TO_V2[arg.type] for arg in self._session.get_outputs()}
        outputs = [_output(name, np.asarray(value), types[name]) for name, value in zip(names, values, strict=True)]
        return InferenceResponse(model_name=self.name, model_version=self.version, outputs=outputs)


def describe_image(image: np.ndarray, prompt: str) -> str:
    """The stand-in's answer: image statistics in a sentence, naming the prompt it answers."""
    values = image.astype(np.float64)
    return (
        f"Answer to {prompt!r}: a {image.shape[0]}x{image.shape[1]} image, "
        f"mean {values.mean():.4f}, min {values.min():.4f}, max {values.max():.4f}."
    )


class ImageQuestionStandIn(_Runtime):
    """A protocol fixture for ``KServeV2Backend``'s own tests: image + prompt in, text out.

    Inputs ``image`` (FP32, batch x rows x cols) and ``prompt`` (BYTES, one per image);
    output ``text`` (BYTES, one per image). It describes each image's statistics and names
    the prompt it answers, deterministically and without weights, so libs/common's tests can
    check string tensors (UTF-8, bytes, one prompt too many) with answers they compute
    themselves. It is not a model and is not deployed: the model served under this contract
    is :class:`GroundedVqa`. Its reported sha256 is that of this file.
    """

    async def load(self) -> bool:
        self._sha256 = _sha256(Path(__file__))
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        tensors = {tensor.name: _array(tensor) for tensor in payload.inputs}
        image, prompt = tensors.get("image"), tensors.get("prompt")
        if image is None or prompt is None or image.ndim != 3 or prompt.shape != (image.shape[0],):
            raise InferenceError("expected image [batch, rows, cols] and one prompt per image")
        text = np.empty(len(prompt), dtype=object)
        text[:] = [describe_image(img, str(p)) for img, p in zip(image, prompt, strict=True)]
        outputs = [_output("text", text, "BYTES")]
        return InferenceResponse(model_name=self.name, model_version=self.version, outputs=outputs)


def _texts(tensor: np.ndarray | None, name: str, batch: int) -> list[str]:
    if tensor is None or tensor.dtype != object or tensor.shape != (batch,):
        raise InferenceError(f"expected {name} as one string per image ({batch})")
    return [str(item) for item in tensor]


class GroundedVqa(_Runtime):
    """The grounded VQA model (``medgate_vlm.core.vqa``) over the large-model contract.

    Inputs ``image`` (FP32, batch x rows x cols: slices in HU for CT, signal for MR),
    ``prompt`` (BYTES: the question), ``modality`` (BYTES: ``CT`` or ``MR``, which picks the
    card's windows) and ``spacing_mm`` (FP64, batch x 2: row and column pixel spacing, for
    the areas the rationale quotes and the size answer); output ``text`` (BYTES): the
    V2T-CoT ``<rationale>…</rationale><answer>…</answer>`` that ``VqaModel.answer`` gives in
    process, because it is that code that runs here, on the same ``vqa.onnx`` + ``vqa.json``:
    those in the folder ``parameters.extra.weights`` (relative to the model-settings file),
    else those packaged with medgate_vlm (``parameters.uri`` is not used: MLServer fills it
    with the settings' own folder). Everything about the model (matrix, windows,
    vocabularies, encoder) comes from its card. The reported sha256 is the card's, that of
    ``vqa.onnx``. Input the model refuses (not a 2D slice, an unknown modality, an empty
    question) is an ``InferenceError`` quoting it, code included.
    ``parameters.extra.threads`` sets ONNX Runtime's intra-op threads (0: one per core).
    """

    async def load(self) -> bool:
        # Imported here so that the other runtimes need nothing but mlserver and onnxruntime.
        from medgate_vlm.core.vqa import load_vqa, package_weights_dir

        params = self._settings.parameters
        extra = (params.extra if params else None) or {}
        weights = extra.get("weights")
        folder = Path(to_absolute_path(self._settings, str(weights))) if weights else package_weights_dir()
        self._model = load_vqa(folder, threads=int(extra.get("threads", 0)))
        self._sha256 = self._model.card.sha256
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        from medgate_common.errors import ModelInputError

        tensors = {tensor.name: _array(tensor) for tensor in payload.inputs}
        image, spacing = tensors.get("image"), tensors.get("spacing_mm")
        if image is None or image.ndim != 3:
            raise InferenceError("expected image as [batch, rows, cols]")
        batch = image.shape[0]
        prompts = _texts(tensors.get("prompt"), "prompt", batch)
        modalities = _texts(tensors.get("modality"), "modality", batch)
        if spacing is None or spacing.shape != (batch, 2):
            raise InferenceError(f"expected spacing_mm as [{batch}, 2] (row, column mm)")
        text = np.empty(batch, dtype=object)
        for i in range(batch):
            try:
                result = self._model.answer(
                    image[i], modalities[i], prompts[i], spacing_mm=(float(spacing[i, 0]), float(spacing[i, 1]))
                )
            except ModelInputError as exc:
                raise InferenceError(f"image {i}: {exc}") from exc  # "[model_input_mismatch] ..."
            text[i] = result.grounded.rationale
        outputs = [_output("text", text, "BYTES")]
        return InferenceResponse(model_name=self.name, model_version=self.version, outputs=outputs)
