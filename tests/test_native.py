"""cnnlab.native: the C kernels built on first use, checked against the PyTorch paths."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab import native
from cnnlab.data import DataModule, make_synthetic
from cnnlab.data.transforms import interpolation_band, interpolation_matrix, resize, resize_uint8

needs_native = pytest.mark.skipif(not native.available(),
                                  reason=f"no native kernels here: {native.status()}")


@pytest.fixture
def fresh_native(monkeypatch, tmp_path):
    """A native module that has not tried to load yet, caching into tmp_path."""
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_why", native._why)
    return native


def test_status_says_where_it_came_from_or_why_not():
    line = native.status()
    assert line.startswith("loaded ") == native.available()
    assert "\n" not in line


def test_builds_into_the_cache_once(fresh_native, tmp_path):
    if fresh_native._compiler() is None:
        pytest.skip("no C compiler here")
    lib = fresh_native.load()
    assert lib is not None and lib.cnnlab_native_version() >= 1
    built = list((tmp_path / "native").glob("cnnlab_native-*.so"))
    assert len(built) == 1 and not list((tmp_path / "native").glob("*.tmp*"))
    assert fresh_native.load() is lib  # loaded once per process


def test_broken_compiler_falls_back_with_a_reason(fresh_native, monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    monkeypatch.setattr(fresh_native, "_compiler", lambda: "false")
    assert fresh_native.load() is None
    assert "unavailable" in fresh_native.status()
    assert not list((tmp_path / "native").glob("*.so"))  # nothing half-written is left
    X = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    ref = resize(X.float() / 255, (40, 40))
    assert torch.allclose(resize_uint8(X, (40, 40)), ref, atol=1e-6)


def test_disabled_by_environment():
    code = "from cnnlab import native; print(native.available(), native.status())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "CNNLAB_NATIVE": "0"}, check=True).stdout
    assert out.strip() == "False disabled by CNNLAB_NATIVE=0"


@pytest.mark.parametrize("n_in,n_out", [(28, 96), (28, 224), (28, 20), (5, 3), (7, 7), (1, 4)])
def test_interpolation_band_rebuilds_the_matrix(n_in, n_out):
    start, taps = interpolation_band(n_in, n_out)
    M = torch.zeros(n_out, n_in)
    for i in range(n_out):
        M[i, int(start[i]):int(start[i]) + taps.shape[1]] = taps[i]
    assert torch.equal(M, interpolation_matrix(n_in, n_out))


@needs_native
@settings(max_examples=60, deadline=None)
@given(b=st.integers(1, 5), c=st.integers(1, 3), h=st.integers(1, 40), w=st.integers(1, 40),
       H=st.integers(1, 120), W=st.integers(1, 120), normalize=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_native_resize_matches_pytorch(b, c, h, w, H, W, normalize, seed):
    X = torch.randint(0, 256, (b, c, h, w), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(seed))
    scale, shift = (1 / (255 * 0.353), -0.286 / 0.353) if normalize else (1 / 255, 0.0)
    ours = resize_uint8(X, (H, W), scale, shift)
    ref = resize(X.float() * scale + shift, (H, W))
    assert ours.shape == (b, c, H, W) and ours.dtype == torch.float32
    assert float((ours - ref).abs().max()) < 1e-5 * max(1.0, float(ref.abs().max()))


@needs_native
def test_datamodule_batches_equal_with_and_without_native(monkeypatch):
    data = make_synthetic(seed=0, num_train=300, num_test=100)
    kw = dict(batch_size=64, resize=48, normalize=True, augment="crop+flip", dataset=data)
    fast = [X for X, _ in DataModule(**kw).train_dataloader()]
    monkeypatch.setattr(native, "load", lambda: None)
    slow = [X for X, _ in DataModule(**kw).train_dataloader()]
    assert len(fast) == len(slow) == 5
    for a, b in zip(fast, slow):
        assert torch.allclose(a, b, atol=1e-5)
