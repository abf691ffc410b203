"""Writes seed-check-1.2.0.txt: the network's p(severe) on the two clean held-out CTs for
each model folder given, then the real-image rows of every folder but the first.

    python docs/results/iqa/seed_check.py LABEL=FOLDER [LABEL=FOLDER ...]

FOLDER "-" is the packaged model. The folders used on 2026-11-26 were the outputs of
``medgate iqa train --seed 0`` (committed) and ``--seed 1`` at commit 36da4e1, their
average (an ONNX file exported from both networks; the ensemble code was not kept) and
candidate 1.3.0 (see candidate-1.3.0.patch).
"""

import sys
from pathlib import Path

from medgate_iqa.bench.external import real_series, run_external, run_ours
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.core.labels import ATTRIBUTES
from medgate_iqa.core.model import QualityModel
from medgate_iqa.core.sources import dicom_frames

SHOWN = ("motion", "limited_angle", "streak", "noise", "ring")


def load(folder: str) -> QualityModel:
    return QualityModel.load() if folder == "-" else QualityModel.load(Path(folder))


def main(pairs: list[str]) -> None:
    models = dict(p.split("=", 1) for p in pairs)
    print("p(severe) of the network on the clean held-out CTs (first frame), per model\n")
    for label, folder in models.items():
        model = load(folder)
        for name in ("693_J2KI.dcm", "explicit_VR-UN.dcm"):
            p = model.predict([dicom_frames(name)[0]], "CT")[0]
            severe = {a.value: round(float(p.severity[i, 2]), 2) for i, a in enumerate(ATTRIBUTES) if a.value in SHOWN}
            print(f"{label:28} {name:20} {severe}")
    series = real_series()
    for label, folder in list(models.items())[1:]:
        gate = QualityAssessor(load(folder))
        ext, ours = run_external(gate, series=series), run_ours(gate, series=series)
        clean = sum(r["ok"] for r in ext if r["condition"] == "clean")
        degraded = sum(r["ok"] for r in ext if r["condition"] != "clean")
        print(f"\n{label}: clean {clean}/6, external {degraded}/33, ours {sum(r['ok'] for r in ours)}/40")
        for r in ext:
            mark = "  MISS " if not r["ok"] else "       "
            print(f"{mark}{r['series']} | {r['condition']} | {r['verdict']} | {', '.join(r['findings'])}")
        for r in ours:
            if not r["ok"]:
                found = ", ".join(r.get("findings") or [])
                print(f"  MISS (ours) {r['series']} | {r['attribute']} | {r.get('verdict')} | {found}")


if __name__ == "__main__":
    main(sys.argv[1:])
