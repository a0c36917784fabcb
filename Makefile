# The README's contract: `make demo` and `make test` work on a fresh Debian machine.
# `make install VENV=` installs into the environment of $(PYTHON) instead of a venv
# (Colab, conda, a venv of your own); its torch is kept.
PYTHON ?= python3
VENV   ?= .venv
ifeq ($(strip $(VENV)),)
PY     := $(PYTHON)
STAMP  := .installed
else
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
endif
# torch first, and only when none imports: the CPU build where there is no NVIDIA GPU
# (scripts/install-torch.sh); a bare `torch` would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# the optional extras `make install` adds (make test tests them): explore = Gradio,
# tensorboard = --logger tensorboard, export = ONNX export and its onnxruntime check
EXTRAS ?= dev,explore,tensorboard,export

.PHONY: install data test demo lint bench clean gpu-check browser

install: $(STAMP)

$(STAMP): pyproject.toml
	$(if $(strip $(VENV)),test -x $(PY) || $(PYTHON) -m venv $(VENV))
	sh scripts/install-torch.sh $(PY) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	@# the optional C kernels (cnnlab.native): built once here; without a compiler
	@# cnnlab uses its PyTorch paths and this prints why
	@$(PY) -c "from cnnlab import native; print('cnnlab.native:', native.status())"
	touch $@

# Fashion-MNIST: Debian's package when apt and root are there, else cnnlab downloads it.
data: install
	@if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then \
	  echo "Fashion-MNIST: /usr/share/datasets/fashion-mnist"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
	    || $(PY) -m cnnlab data fetch fashion-mnist; \
	else \
	  $(PY) -m cnnlab data fetch fashion-mnist; \
	fi

test: install
	-@$(MAKE) --no-print-directory data
	-@$(MAKE) --no-print-directory browser
	$(PY) -m pytest -q --timeout=600

# A headless browser for the `cnnlab explore` tests: Debian's chromium where apt and root
# are there, driven by Playwright (never `playwright install`: the system browser is used).
# Without one those tests skip and say why.
browser: install
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	  chromium-driver; } || echo "no chromium: the browser tests of cnnlab explore will skip"
	@$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install -q "playwright>=1.40"

demo: data
	$(PY) -m cnnlab train lenet --out runs/lenet --resume auto

lint: install
	$(PY) -m ruff check src tests benchmarks

bench: data
	$(PY) benchmarks/ops.py
	$(PY) benchmarks/data.py

# On a machine with an NVIDIA GPU and torch already installed (no network needed): the
# tests marked gpu and the GPU figures, one table, written into benchmarks/results/gpu.md.
# Fashion-MNIST from data/fashion-mnist (see benchmarks/gpu_check.py); needs pytest.
# SMOKE=1: the same stages on the CPU with tiny sizes (make test runs this too).
GPU_PY ?= $(if $(wildcard $(PY)),$(PY),$(PYTHON))
gpu-check:
	PYTHONPATH=src $(GPU_PY) benchmarks/gpu_check.py $(if $(SMOKE),--smoke)

clean:
	rm -rf $(VENV) .installed build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
