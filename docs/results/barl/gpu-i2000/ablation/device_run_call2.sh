#!/bin/bash
# As run on the lent H200 (2026-11-27), from the repository root, with .whl/ holding the wheels of
# MONAI 1.6.1, pydicom 3.0.2, nibabel 5.4.2 and pytest 9.2.0 (+ pluggy, iniconfig, packaging),
# .whl/prev/ the grid's three full-BARL 10 % run files, and .whl/gpu_ablate.py (gpu_ablate_as_run.py.txt here).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/libs/common/src:$PWD/libs/ml/src:$PWD/services/segmentation/src
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
mkdir -p $OUT/abl/runs && cp .whl/prev/*.json $OUT/abl/runs/
timeout "$1" python3 -c "
import sys, time
from pathlib import Path
from medgate_seg.training.experiment import ablation_specs, comparison_specs, write_summary
t = time.time()
full = [s for s in comparison_specs(2000) if s.method == 'barl' and s.ratio == 0.10]
parts = [s for s in ablation_specs(2000) if s.without == 'progressive']
print(write_summary(full + parts, Path('$OUT/abl'), 'ablation-progressive', 3, 'cuda'), flush=True)
print('total', round(time.time() - t), 's')
" 2>&1 | tee $OUT/log2.txt
cd $OUT/abl && tar czf $OUT/abl-runs.tgz runs && rm -r runs
