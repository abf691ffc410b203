#!/usr/bin/env bash
# Makes the MLServer virtualenv (.venv-mlserver) from deploy/mlserver/requirements.txt.
# MLServer is the KServe v2 server that the remote-inference tests start and that serves the
# runtimes in deploy/mlserver; it cannot live in the main venv (its fastapi and starlette pins
# conflict with Flower's). Safe to re-run: it skips when the pins have not changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEDGATE_MLSERVER_VENV:-$ROOT/.venv-mlserver}"
PYTHON="${MEDGATE_PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
REQUIREMENTS="$ROOT/deploy/mlserver/requirements.txt"

stamp_src=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
stamp="$VENV/.medgate-setup"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$stamp_src" && -x "$VENV/bin/mlserver" ]]; then
    exit 0
fi

[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip --disable-pip-version-check -q install -r "$REQUIREMENTS"
"$VENV/bin/python" -c "import mlserver, onnxruntime" \
    || { echo "setup-mlserver: mlserver or onnxruntime does not import" >&2; exit 1; }
echo "$stamp_src" > "$stamp"
echo "setup-mlserver: ready ($VENV)"
