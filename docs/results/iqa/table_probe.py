"""Does taking the CT table away hide artifacts? Severe degradations from our simulators
on the two held-out real CTs, many draws per attribute, judged by the gate with and
without ``core.views.without_table``; and the network's probabilities on the clean
abdomen under each way of showing it.

    python docs/results/iqa/table_probe.py [--draws 20] [--weights DIR]

The degradations are made on the model grid (as ``medgate iqa bench`` makes its own rows),
so the table is taken away after degradation, where an artifact that touches the table
joins it and goes with it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage

from medgate_common.schemas.quality import Severity, Verdict
from medgate_iqa.core import model as model_module
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.core.labels import ATTRIBUTES
from medgate_iqa.core.model import QualityModel
from medgate_iqa.core.sources import dicom_frames
from medgate_iqa.core.views import to_grid, without_table
from medgate_iqa.degrade import attributes, degrade

HELD_OUT = ("693_J2KR.dcm", "explicit_VR-UN.dcm")


def keep_table(image: np.ndarray, modality: str) -> np.ndarray:
    return image


def patient_only(image: np.ndarray, modality: str) -> np.ndarray:
    solid = image > -500
    labels, count = ndimage.label(solid)
    if count < 2:
        return image
    sizes = np.bincount(labels.ravel())[1:]
    return np.where(labels == int(np.argmax(sizes)) + 1, image, np.float32(-1000.0)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--weights", type=Path, default=None)
    args = parser.parse_args()
    model = QualityModel.load(args.weights) if args.weights else QualityModel.load()
    gate = QualityAssessor(model)
    shown = {"table kept": keep_table, "table taken away": without_table, "only the patient": patient_only}
    index = {a.value: i for i, a in enumerate(ATTRIBUTES)}
    print("p(severe) on the clean first frame, per way of showing it\n")
    for name in HELD_OUT:
        frame = dicom_frames(name)[0]
        for label, show in shown.items():
            model_module.without_table = show  # what QualityModel.predict calls
            p = model.predict([frame], "CT")[0].severity
            cells = " ".join(f"{a} {p[index[a], 2]:.2f}" for a in ("motion", "limited_angle", "streak", "ring"))
            print(f"{name:20} {label:18} {cells}")
    print(f"\nsevere degradations rejected, {args.draws} draws per attribute and CT (seed 0)\n")
    print("| series | attribute | " + " | ".join(shown) + " |")
    print("|---|---|" + "---|" * len(shown))
    totals = dict.fromkeys(shown, 0)
    count = 0
    for name in HELD_OUT:
        grid = to_grid(dicom_frames(name)[0])
        rng = np.random.default_rng(0)
        for attribute in attributes("CT"):
            images = [
                r[0] for r in (degrade(grid, "CT", attribute, Severity.severe, rng) for _ in range(args.draws)) if r
            ]
            row = []
            for label, show in shown.items():
                model_module.without_table = show
                rejected = sum(gate.assess_slices([im], "CT").report.verdict is Verdict.reject for im in images)
                totals[label] += rejected
                row.append(f"{rejected} / {len(images)}")
            count += len(images)
            print(f"| {name} | {attribute.value} | " + " | ".join(row) + " |")
    print("| all | | " + " | ".join(f"{t} / {count}" for t in totals.values()) + " |")
    model_module.without_table = without_table


if __name__ == "__main__":
    main()
