# The README's contract: `make demo` and `make test` work on a fresh Debian machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch first, pinned to the build that lies on local disk here; a bare `torch`
# with none installed would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install data test demo lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev]'
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
	$(PY) -m pytest -q --timeout=600

demo: data
	$(VENV)/bin/cnnlab train lenet

lint: install
	$(VENV)/bin/ruff check src tests benchmarks

bench: data
	$(PY) benchmarks/ops.py
	$(PY) benchmarks/data.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
