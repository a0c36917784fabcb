"""Fixtures shared by test files."""

from __future__ import annotations

import pytest

from cnnlab import native


@pytest.fixture(scope="session")
def native_variant(tmp_path_factory):
    """``build(define)``: the native library compiled with ``-D<define>`` (e.g. the
    allocation-failure or AVX2-only copy of alloc.h / avx512.c), built once per define."""
    built: dict = {}

    def build(define: str):
        if define not in built:
            cc = native._compiler()
            if not native.available() or cc is None:
                pytest.skip(f"no native kernels here: {native.status()}")
            target = tmp_path_factory.mktemp(define.lower()) / f"cnnlab_native-{define}.so"
            native._build(cc, target, defines=(define,))
            built[define] = native._open(target)
        return built[define]

    return build
