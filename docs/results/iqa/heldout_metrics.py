"""Re-measure the committed network's slice-level metrics on the current held-out split,
the way `medgate iqa train` does at the end of training (1,600 samples, seed 10,000).

    python docs/results/iqa/heldout_metrics.py

The samples are generated before the network is loaded: a process pool forked after torch
has started its threads can hang.
"""

from __future__ import annotations

import json

from medgate_iqa.training.data import generate, to_arrays

if __name__ == "__main__":
    held_out = to_arrays(generate("test", 1600, 10_000, 2))
    from medgate_iqa.core.model import weights_dir
    from medgate_iqa.training.speed import load_torch
    from medgate_iqa.training.train import evaluate

    net = load_torch(weights_dir())
    print("now:     ", evaluate(getattr(net, "net", net), held_out))
    print("the card:", json.loads((weights_dir() / "quality.json").read_text(encoding="utf-8"))["metrics"]["test"])
