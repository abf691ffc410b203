#!/usr/bin/env bash
# Installs everything (scripts/setup.sh), then runs the main job: `medgate demo`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
exec "${MEDGATE_VENV:-$ROOT/.venv}/bin/medgate" demo "$@"
