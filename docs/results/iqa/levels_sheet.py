"""Contact sheets of our MR simulators' mild and severe levels on two held-out real slices:
emri_small frame 7 (a noisy 64 x 64 tissue crop) and Colin27 axial 118 (a whole head).

    python docs/results/iqa/levels_sheet.py docs/results/iqa

Each row: clean, mild, severe (the display view the network sees); the label gives the
attribute and the measured impact of the mild and severe versions. One rng (seed 7) per
slice, attributes in the simulators' order.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from medgate_common.schemas.quality import Severity
from medgate_iqa.core.sources import dicom_frames, volume
from medgate_iqa.core.views import model_input, to_grid
from medgate_iqa.degrade import attributes, degrade


def sheet(image: np.ndarray, out: Path) -> list[str]:
    rng = np.random.default_rng(7)
    rows, labels = [], []
    for attribute in attributes("MR"):
        tiles, label = [model_input(image, "MR")[0]], [attribute.value]
        for level in (Severity.mild, Severity.severe):
            result = degrade(image, "MR", attribute, level, rng)
            if result is None:
                tiles.append(np.zeros_like(tiles[0]))
                label.append("not reached")
            else:
                tiles.append(model_input(result[0], "MR")[0])
                label.append(f"{result[1].impact:.2f}")
        rows.append(np.concatenate(tiles, axis=1))
        labels.append(" ".join(label))
    rows += [np.zeros_like(rows[0])] * (len(rows) % 2)
    grid = np.concatenate([np.concatenate(rows[i : i + 2], axis=1) for i in range(0, len(rows), 2)], axis=0)
    picture = Image.fromarray(np.clip(grid / np.percentile(grid, 99.5) * 255, 0, 255).astype(np.uint8))
    picture = picture.convert("RGB")
    draw = ImageDraw.Draw(picture)
    width = rows[0].shape[1]
    for i, text in enumerate(labels):
        draw.text(((i % 2) * width + 2, (i // 2) * rows[0].shape[0] + 2), text, fill=(255, 0, 0))
    picture.quantize(colors=128).save(out, optimize=True)
    return labels


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    emri = to_grid(dicom_frames("emri_small.dcm")[7])
    colin = to_grid(np.rot90(volume("ch2.nii.gz")[:, :, 118]).astype(np.float32))
    for name, image in (("emri7", emri), ("colin27-118", colin)):
        print(name, sheet(image, folder / f"levels-{name}.png"))
