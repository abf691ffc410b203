#!/usr/bin/env bash
# Installs everything (scripts/setup.sh), then runs lint, types, import contracts and every
# test: unit, integration (Orthanc, dcmtk, dicom3tools) and end-to-end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
VENV="${MEDGATE_VENV:-$ROOT/.venv}"
export PATH="$VENV/bin:$PATH"

echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy (strict on libs/ and each core/)"
mypy libs/common/src libs/ml/src gateway/src services/iqa/src services/segmentation/src \
    services/vlm/src services/fl-coordinator/src ui/src
echo "== import-linter"
lint-imports
echo "== pytest"
python -m pytest "$@"
