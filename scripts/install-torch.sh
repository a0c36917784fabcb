#!/bin/sh
# Install PyTorch into the Python environment of PYTHON, unless it already has one.
#
#   scripts/install-torch.sh PYTHON [SPEC]      (SPEC default: torch==2.13.0)
#
# A torch that imports is kept (Colab, conda, a venv made before): nothing is installed.
# Otherwise the build follows the machine, as PyTorch's own install selector does:
#   - an NVIDIA GPU (nvidia-smi, or the kernel driver in /proc/driver/nvidia): SPEC from
#     the package index, whose Linux wheels are the CUDA builds;
#   - no NVIDIA GPU: the CPU build. A wheel on local disk that pip already knows of (its
#     find-links setting) is taken first, with no network; else PyTorch's CPU index
#     (TORCH_CPU_INDEX). A bare `pip install torch` there would pull a multi-GB CUDA
#     build with about 18 nvidia-* packages it can never use.
# TORCH_BUILD=cpu|cuda overrides the detection (default auto).
set -eu

PY=${1:?usage: install-torch.sh PYTHON [SPEC]}
SPEC=${2:-torch==2.13.0}
CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
BUILD=${TORCH_BUILD:-auto}

if "$PY" -c "import torch" 2>/dev/null; then
  echo "torch $("$PY" -c 'import torch; print(torch.__version__)') is installed: keeping it"
  exit 0
fi

if [ "$BUILD" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 || [ -e /proc/driver/nvidia/version ]; then
    BUILD=cuda
  else
    BUILD=cpu
  fi
fi

case "$BUILD" in
  cuda)
    echo "torch: an NVIDIA GPU is here; installing $SPEC (a CUDA build)"
    exec "$PY" -m pip install -q "$SPEC"
    ;;
  cpu)
    if "$PY" -m pip install -q --no-index --no-deps "$SPEC" >/dev/null 2>&1; then
      echo "torch: no NVIDIA GPU; $SPEC from local disk"
      exec "$PY" -m pip install -q "$SPEC"  # its dependencies (torch itself is there)
    fi
    echo "torch: no NVIDIA GPU; installing the CPU build of $SPEC from $CPU_INDEX"
    exec "$PY" -m pip install -q "$SPEC" --index-url "$CPU_INDEX"
    ;;
  *)
    echo "install-torch.sh: TORCH_BUILD must be auto, cpu or cuda, not '$BUILD'" >&2
    exit 2
    ;;
esac
