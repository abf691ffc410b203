"""``medgate seg speed``: the served pipeline on whole 64-slice synthetic CT studies, once with
the ONNX Runtime backend and once with a torch backend running the same network, in the same
run (rounds interleaved). Everything but the backend is the service's own code (series
checks, resampling to the model grid, sliding windows, lesion extraction), so the ratio
is per study, as the service would see it. Reports the median seconds per study for the
model calls alone and for the whole pipeline, their ORT / torch ratios, and the largest
difference between the two backends' lesion probabilities."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pydicom
import torch

from medgate_common.inference.backend import Array, InferenceResult, TensorSpec
from medgate_common.schemas.models import ModelInfo
from medgate_common.synth.study import generate_study, write_dataset
from medgate_ml.seg.network import Probabilities
from medgate_seg.core.model import LesionModel, weights_dir
from medgate_seg.core.pipeline import Segmenter
from medgate_seg.core.series import read_series
from medgate_seg.training.model import load_torch


class TorchBackend:
    """The committed network in torch behind the serving ``ModelBackend`` protocol."""

    def __init__(self, reference: LesionModel, folder: Path) -> None:
        self.reference = reference
        self.model = Probabilities(load_torch(folder)).eval()
        self.busy = 0.0

    @property
    def info(self) -> ModelInfo:
        return self.reference.backend.info

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self.reference.backend.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self.reference.backend.outputs

    def infer(self, inputs: Mapping[str, Array]) -> InferenceResult:
        started = time.perf_counter()
        with torch.no_grad():
            out = self.model(torch.from_numpy(np.asarray(inputs[self.reference.card.input], dtype=np.float32)))
        ms = (time.perf_counter() - started) * 1000
        self.busy += ms / 1000
        return InferenceResult({self.reference.card.output: out.numpy()}, self.info, ms)


class TimedBackend:
    """Counts the seconds spent inside another backend's ``infer``."""

    def __init__(self, inner: LesionModel) -> None:
        self.inner = inner.backend
        self.busy = 0.0

    info = property(lambda self: self.inner.info)
    inputs = property(lambda self: self.inner.inputs)
    outputs = property(lambda self: self.inner.outputs)

    def infer(self, inputs: Mapping[str, Array]) -> InferenceResult:
        started = time.perf_counter()
        result = self.inner.infer(inputs)
        self.busy += time.perf_counter() - started
        return result


def measure(rounds: int = 3, studies: int = 2, slices: int = 64, matrix: int = 256) -> dict[str, object]:
    folder = weights_dir()
    reference = LesionModel.load(folder, threads=torch.get_num_threads())
    backends: dict[str, TimedBackend | TorchBackend] = {
        "onnxruntime": TimedBackend(reference),
        "torch": TorchBackend(reference, folder),
    }
    segmenters = {name: Segmenter(LesionModel(b, reference.card)) for name, b in backends.items()}
    rows = []
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(studies):
            study = generate_study("CT", seed=7000, index=index, slices=slices, matrix=matrix, lesion_count=3)
            write_dataset(study, Path(tmp) / str(index))
            datasets = [pydicom.dcmread(p) for p in sorted((Path(tmp) / str(index) / "dicom").rglob("*.dcm"))]
            source = read_series(datasets, reference.card.modalities)
            times: dict[str, dict[str, list[float]]] = {n: {"model": [], "pipeline": []} for n in backends}
            probabilities: dict[str, np.ndarray] = {}
            lesions: dict[str, int] = {}
            for _ in range(rounds):
                for name, segmenter in segmenters.items():
                    backend = backends[name]
                    backend.busy = 0.0
                    started = time.perf_counter()
                    result = segmenter.segment(datasets)
                    times[name]["pipeline"].append(time.perf_counter() - started)
                    times[name]["model"].append(backend.busy)
                    lesions[name] = len(result.lesions)
            for name, segmenter in segmenters.items():
                probabilities[name] = segmenter.probability(source)[0]
            worst = max(worst, float(np.abs(probabilities["onnxruntime"] - probabilities["torch"]).max()))
            med = {n: {k: statistics.median(v) for k, v in t.items()} for n, t in times.items()}
            rows.append(
                {
                    "study": f"synthetic CT seed 7000 index {index}",
                    "slices": slices,
                    "matrix": matrix,
                    "lesions_found": lesions,
                    "onnxruntime_model_s": round(med["onnxruntime"]["model"], 3),
                    "torch_model_s": round(med["torch"]["model"], 3),
                    "ratio_model_ort_over_torch": round(med["onnxruntime"]["model"] / med["torch"]["model"], 3),
                    "onnxruntime_pipeline_s": round(med["onnxruntime"]["pipeline"], 3),
                    "torch_pipeline_s": round(med["torch"]["pipeline"], 3),
                    "ratio_pipeline_ort_over_torch": round(
                        med["onnxruntime"]["pipeline"] / med["torch"]["pipeline"], 3
                    ),
                }
            )
    return {
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "max_abs_probability_diff": worst,
        "ratio_model_median": round(float(np.median([r["ratio_model_ort_over_torch"] for r in rows])), 3),
        "ratio_pipeline_median": round(float(np.median([r["ratio_pipeline_ort_over_torch"] for r in rows])), 3),
        "rows": rows,
    }
