#!/bin/bash
# As run on the lent H200 (2026-11-27), from the repository root, with .whl/ holding the wheels of
# MONAI 1.6.1, pydicom 3.0.2, nibabel 5.4.2 and pytest 9.2.0 (+ pluggy, iniconfig, packaging),
# .whl/prev/ the grid's three full-BARL 10 % run files, and .whl/gpu_ablate.py (gpu_ablate_as_run.py.txt here).
# $1: time limit of the ablation in seconds
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/libs/common/src:$PWD/libs/ml/src:$PWD/services/segmentation/src
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import torch, monai, pydicom, scipy; print(torch.__version__, monai.__version__)"
mkdir -p $OUT/abl/runs && cp .whl/prev/*.json $OUT/abl/runs/
( timeout 200 python3 -m pytest -p no:cacheprovider --noconftest -o addopts="" -rA -q libs/ml/tests/test_seg.py -k gpu > $OUT/cuda-test.txt 2>&1; echo "rc $?" >> $OUT/cuda-test.txt ) &
timeout "$1" python3 .whl/gpu_ablate.py $OUT/abl 2>&1 | tee $OUT/log.txt
wait
cat $OUT/cuda-test.txt
