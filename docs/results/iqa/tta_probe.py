"""Writes tta-probe-1.0.0.txt: a model folder on the real-image rows, plain and with the
mean of its probabilities over the 8 rotations and flips of each slice.

    python docs/results/iqa/tta_probe.py [FOLDER]      # default: the packaged model
"""

import sys
from pathlib import Path

import numpy as np

from medgate_iqa.bench.external import run_external, run_ours
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.core.model import QualityModel, SlicePrediction


class Dihedral(QualityModel):
    def predict_grid(self, grids: list, modality: str, batch: int = 16) -> list[SlicePrediction]:  # type: ignore[type-arg]
        views = []
        for k in range(4):
            for flip in (False, True):
                turned = [np.rot90(g, k) for g in grids]
                shown = [np.ascontiguousarray(t[:, ::-1] if flip else t) for t in turned]
                views.append(super().predict_grid(shown, modality, batch))
        return [
            SlicePrediction(
                np.mean([v[i].severity for v in views], 0).astype(np.float32),
                np.mean([v[i].verdict for v in views], 0).astype(np.float32),
            )
            for i in range(len(grids))
        ]


def main(folder: Path | None) -> None:
    base = QualityModel.load(folder) if folder else QualityModel.load()
    for name, model in (("plain", base), ("tta", Dihedral(base.backend, base.card))):
        gate = QualityAssessor(model)
        ext, ours = run_external(gate), run_ours(gate)
        clean = [r for r in ext if r["condition"] == "clean"]
        degraded = [r for r in ext if r["condition"] != "clean"]
        print(
            name,
            f"clean {sum(r['ok'] for r in clean)} / {len(clean)}",
            f"ext {sum(r['ok'] for r in degraded)} / {len(degraded)}",
            f"ours {sum(r['ok'] for r in ours)} / {len(ours)}",
        )
        for r in ext:
            if not r["ok"]:
                print("  x", r["series"], r["condition"], r["verdict"], r["findings"])
        for r in ours:
            if not r["ok"]:
                print("  o", r["series"], r["attribute"], r.get("verdict"), r.get("findings"))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
