"""The CPU path before and after the device change: 30 training steps of every method on
12 synthetic volumes (3 labelled), seed 0, one thread; writes each method's last logged
loss terms and the sum of its lesion probability over one volume to the JSON file named
by the first argument. Run it on the commit before the change and on the change, then
compare the files byte for byte (before.json and after.json here are identical)."""

import json
import sys
from pathlib import Path

import torch

from medgate_ml.seg.data import labelled_split, training_set
from medgate_ml.seg.methods import Hyper
from medgate_ml.seg.train import predict, train_method

torch.set_num_threads(1)
train = training_set(12)
lab, unl = labelled_split(len(train), 0.25, 0)
out = {}
for method in ("supervised", "mean_teacher", "cps", "barl"):
    run = train_method(method, [train[i] for i in lab], [train[i] for i in unl], Hyper(iterations=30), 0)
    out[method] = [run.history[-1], float(predict(run.method.predictor, train[0].image).sum())]
Path(sys.argv[1]).write_text(json.dumps(out, indent=1))
