#!/bin/bash
# Run on the lent GPU machine from the repository root, with the wheels of MONAI 1.6.1,
# pydicom 3.0.2 and nibabel 5.4.2 in .whl/ and the driver as it ran (gpu_driver_as_run.py.txt
# here; gpu_driver.py is the same logic tidied) copied there as .whl/gpu_barl.py.
# $1: the driver's time limit in seconds; $2: its budget for the probe and the grid.
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/libs/common/src:$PWD/libs/ml/src:$PWD/services/segmentation/src
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total --format=csv
mkdir -p /tmp/gpu
cp -r .whl/prev/. /tmp/gpu/ 2>/dev/null  # runs of an earlier call, reused when their spec matches
timeout "$1" python3 .whl/gpu_barl.py "$2" /tmp/gpu 2>&1 | tee "$OUT/log.txt"
cd /tmp/gpu && tar czf "$OUT/gpu-runs.tgz" .
