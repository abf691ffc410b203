"""Does sending FedGSCA's train message without weights change its round time?

Runs one FedGSCA federation at the experiment's settings (10 sites x 120, symmetric 40 %,
seed 0, 4 warm-up rounds then 3 selecting rounds, no federated evaluation) in process and
prints: the label given as the first argument, the mean seconds of a selecting round's
query and train messages, the mean seconds of a warm-up round's train messages, and the
bytes the server sent per selecting round. Run it alternately on two checkouts, e.g.

    for i in 1 2 3; do
        PYTHONPATH=/tmp/before/services/fl-coordinator/src python light_train_ab.py old
        python light_train_ab.py new
    done

with ``/tmp/before`` a worktree of the commit before the change (``git worktree add``);
the interleaving puts the machine's drift on both. ``FL_CACHE`` names the site-data cache
(this run: ``FL_CACHE=/tmp/flcache``).
"""

import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from medgate_fl.experiment import RunSpec, Settings
from medgate_fl.inprocess import federate

torch.set_num_threads(1)
settings = replace(Settings(), rounds=7, warmup_rounds=4)
config = RunSpec("fedgsca", "symmetric", 0.4, 0, settings).run_config()
config["fraction-evaluate"] = 0.0
cache = Path(os.environ.get("FL_CACHE", Path.home() / ".medgate" / "fl" / "cache"))  # generated site data
fed = federate(config, settings.sites, cache_dir=cache)
selecting = [t for t in fed.grid.traffic if t.server_round > 4 and t.message_type in ("query.gmm", "train")]
warmup = [t for t in fed.grid.traffic if t.server_round <= 4 and t.message_type == "train"]
print(
    sys.argv[1],
    round(sum(t.seconds for t in selecting) / 3, 3),
    round(sum(t.seconds for t in warmup) / 4, 3),
    sum(t.bytes_sent for t in selecting) // 3,
    flush=True,
)
