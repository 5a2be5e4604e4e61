#!/usr/bin/env bash
# Everything a fresh machine needs: system packages (as root, when missing), a virtual
# environment with torch and anyfind with all extras. Safe to run again: it skips what
# is already there (the venv is re-installed only when pyproject.toml changes).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
APT_PACKAGES=(espeak-ng postgresql chromium tesseract-ocr tesseract-ocr-eng)

missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v tesseract >/dev/null || missing+=(tesseract-ocr tesseract-ocr-eng)  # an OCR engine
# OpenCV (rapidocr's image code, the `ocr` extra) links libGL and GLib even headless
ldconfig -p 2>/dev/null | grep -q "libGL.so.1 " || missing+=(libgl1)
ldconfig -p 2>/dev/null | grep -q "libglib-2.0.so.0 " || missing+=(libglib2.0-0)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages (${missing[*]}); tests that need them will skip" >&2
  fi
fi

# A real Milvus standalone server for the tests (tests/support/milvus_serve.py): the PyPI package
# `milvus` 2.3 ships the binary; it needs setuptools<81 and marshmallow<4, so it gets a
# venv of its own. anyfind talks to it with its own pymilvus (3.x works with the 2.3 server).
# No pip cache: torch alone would be kept twice (wheel + install) on a machine with little disk.
export PIP_NO_CACHE_DIR=${PIP_NO_CACHE_DIR:-1}
need_gb=10
free_gb=$(df -Pk . | awk 'NR==2 {print int($4 / 1048576)}')
if [ ! -f "$VENV/.anyfind-installed" ] && [ "$free_gb" -lt "$need_gb" ]; then
  echo "setup: only ${free_gb} GB free here; a fresh install needs about ${need_gb} GB" \
       "(torch, Ray, the Milvus server)" >&2
fi

MILVUS_VENV=${MILVUS_VENV:-.venv-milvus}
if [ ! -x "$MILVUS_VENV/bin/python" ] || ! "$MILVUS_VENV/bin/python" -c "import milvus" 2>/dev/null; then
  "$PYTHON" -m venv "$MILVUS_VENV"
  "$MILVUS_VENV/bin/python" -m pip install -q "milvus==2.3.5" "setuptools<81" "marshmallow<4" 2>&1 \
    | grep -v "^WARNING: Location" || true
fi

stamp="$VENV/.anyfind-installed"
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
# torch and torchvision must be the matching pair (open_clip imports torchvision).
"$VENV/bin/python" -m pip install -q torch==2.14.1 torchvision==0.29.1 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -m pip install -q -e ".[all,dev]" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import anyfind, torch, sentence_transformers, faiss" 
echo "$want" > "$stamp"
echo "setup: ready ($VENV)"
