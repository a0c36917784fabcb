"""IDX reader, search path, parsed-tensor cache and download, on generated files only."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import struct
import zlib
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from cnnlab.data import datasets, sources
from cnnlab.data.idx import read_idx, read_idx_bytes, read_image_label_pair
from cnnlab.errors import DataError, DataNotFoundError

NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write(path: Path, data: bytes, gz: bool) -> Path:
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def fake_arrays(n_train: int = 30, n_test: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    return {"train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
            "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "test_labels": (np.arange(n_test) % 10).astype(np.uint8)}


def write_dataset(folder: Path, gz: bool = True, arrays=None) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = arrays or fake_arrays()
    for key, name in NAMES.items():
        write(folder / name, idx_bytes(arrays[key]), gz)
    return arrays


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real cache, no $CNNLAB_DATA, no system folder, never the network."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.setenv("CNNLAB_NO_DOWNLOAD", "1")
    for name, spec in list(sources.SOURCES.items()):
        monkeypatch.setitem(sources.SOURCES, name,
                            dataclasses.replace(spec, system_dirs=(str(tmp_path / "sys"),)))

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(sources, "urlopen", no_network)


# ---------------------------------------------------------------------- reader
@pytest.mark.parametrize("gz", [False, True])
def test_read_valid_file_gz_and_raw(tmp_path, gz):
    X = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write(tmp_path / "x-idx3-ubyte", idx_bytes(X), gz)
    out = read_idx(path)
    assert out.dtype == torch.uint8 and tuple(out.shape) == (2, 3, 4)
    assert torch.equal(out, torch.from_numpy(X))


def test_gzip_detected_by_magic_not_name(tmp_path):
    X = np.array([3, 1, 4], dtype=np.uint8)
    plain = tmp_path / "labels.gz"  # misleading name, raw contents
    plain.write_bytes(idx_bytes(X))
    packed = tmp_path / "labels"  # gzip contents, no suffix
    packed.write_bytes(gzip.compress(idx_bytes(X)))
    assert read_idx(plain).tolist() == read_idx(packed).tolist() == [3, 1, 4]


def test_big_endian_types_are_converted():
    X = np.array([[-2, 300], [7, -32768]], dtype=np.int16)
    assert read_idx_bytes(idx_bytes(X, code=0x0B)).tolist() == X.tolist()
    F = np.array([0.5, -1.25], dtype=np.float32)
    assert read_idx_bytes(idx_bytes(F, code=0x0D)).tolist() == [0.5, -1.25]


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file_names_file_and_problem(tmp_path, gz):
    data = idx_bytes(np.zeros((5, 28, 28), dtype=np.uint8))
    path = tmp_path / "train-images-idx3-ubyte"
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data)[:-40])  # cut inside the gzip stream
    else:
        path.write_bytes(data[:-100])
    with pytest.raises(DataError) as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and ("truncated" in msg) and "\n" not in msg


@pytest.mark.parametrize("header", [b"\x08\x03\x00\x00", b"\x00\x00\x99\x01", b"\x00\x01\x08\x01"])
def test_wrong_magic(tmp_path, header):
    path = tmp_path / "bad"
    path.write_bytes(header + b"\x00" * 16)
    with pytest.raises(DataError, match="wrong magic number"):
        read_idx(path)


def test_header_shorter_than_its_dimensions(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 3, 10))  # 3 dims, only one given
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_wrong_count_trailing_bytes(tmp_path):
    data = idx_bytes(np.zeros(10, dtype=np.uint8)) + b"\x01\x02"
    path = write(tmp_path / "labels", data, gz=True)
    with pytest.raises(DataError, match="trailing bytes") as e:
        read_idx(path)
    assert "12" in str(e.value) and "10" in str(e.value)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "x.gz"
    good = gzip.compress(idx_bytes(np.zeros(100, dtype=np.uint8)))
    path.write_bytes(good[:10] + bytes(b ^ 0xFF for b in good[10:]))
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)


def test_missing_file_is_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "nope")


def test_mismatched_label_count(tmp_path):
    X = write(tmp_path / "x", idx_bytes(np.zeros((5, 28, 28), dtype=np.uint8)), False)
    y = write(tmp_path / "y", idx_bytes(np.zeros(4, dtype=np.uint8)), False)
    with pytest.raises(DataError, match="4 labels for 5 images") as e:
        read_image_label_pair(X, y)
    assert str(y) in str(e.value)


def test_label_out_of_range_and_swapped_files(tmp_path):
    X = write(tmp_path / "x", idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8)), False)
    y = write(tmp_path / "y", idx_bytes(np.array([1, 12, 3], dtype=np.uint8)), False)
    with pytest.raises(DataError, match="label 12 is out of range"):
        read_image_label_pair(X, y)
    with pytest.raises(DataError, match="is this the labels file"):
        read_image_label_pair(y, X)


def _gz_stream(*parts: bytes, zeros_mib: int = 0) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [z.compress(p) for p in parts]
    out += [z.compress(bytes(1 << 20)) for _ in range(zeros_mib)]
    return b"".join(out) + z.flush()


def _header(*shape: int, code: int = 0x08) -> bytes:
    return struct.pack(f">BBBB{len(shape)}I", 0, 0, code, len(shape), *shape)


# hostile IDX files: (id, file bytes, what the one-line error must say). Each must be
# refused after reading at most what its header promises (plus a few kB), never by
# decompressing everything first.
HOSTILE = [
    ("gzip-bomb-behind-a-small-header",  # 2 images declared, 300 MB of zeros follow
     lambda: _gz_stream(_header(2, 28, 28) + bytes(2 * 784), zeros_mib=300), r"trailing bytes"),
    ("header-declares-terabytes", lambda: _header(2**31, 2**10, 2**10) + bytes(100),
     r"declares shape .* more than the 1 GiB"),
    ("header-declares-terabytes-gz", lambda: gzip.compress(_header(2**31, 2**10, 2**10)),
     r"declares shape .* more than the 1 GiB"),
    ("255-dimensions", lambda: _header(*([2**32 - 1] * 255)), r"more than the 1 GiB"),
    ("gz-too-small-for-its-header", lambda: gzip.compress(_header(60000, 100, 100) + bytes(10)),
     r"more than a \d+-byte gzip file can hold"),
    ("float-header-truncated", lambda: _header(10, 10, code=0x0E) + bytes(80), r"truncated"),
    ("gzip-then-garbage", lambda: gzip.compress(_header(3) + bytes(3)) + b"garbage!",
     r"corrupt or truncated gzip"),
    ("gzip-cut-in-header", lambda: gzip.compress(_header(3, 28, 28) + bytes(3 * 784))[:14],
     r"corrupt or truncated gzip|too short|truncated"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("make, wanted", [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_idx_files_are_refused_early(tmp_path, make, wanted):
    import resource
    import time

    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(make())
    start, rss = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match=wanted) as e:
        read_idx(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert time.monotonic() - start < 20
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) * 1024  # kB on Linux
    assert grown < 100 * 2**20, f"{grown / 2**20:.0f} MiB to refuse it"


def test_idx_special_files_are_refused(tmp_path):
    fifo = tmp_path / "train-labels-idx1-ubyte"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="named pipe"):
        read_idx(fifo)
    with pytest.raises(DataError, match="character device"):
        read_idx("/dev/zero")


def test_a_named_folder_is_used_or_refused(tmp_path):
    """--data-dir (root=) that is empty, lacks a file, holds a FIFO in a file's place or is
    a file: refused, although a complete copy sits in the user cache."""
    write_dataset(sources.user_cache_dir("mnist"))
    assert len(datasets.load_mnist().train_labels) == 30  # the cache works
    (tmp_path / "empty").mkdir()
    partial = tmp_path / "partial"
    write_dataset(partial)
    (partial / "train-labels-idx1-ubyte.gz").unlink()
    piped = tmp_path / "piped"
    write_dataset(piped)
    (piped / "t10k-images-idx3-ubyte.gz").unlink()
    os.mkfifo(piped / "t10k-images-idx3-ubyte.gz")
    (tmp_path / "file").write_text("x")
    for root, wanted in [("empty", "is empty"), ("partial", "lacks train-labels"),
                         ("piped", "lacks t10k-images"), ("file", "is not a folder"),
                         ("nowhere", "does not exist")]:
        with pytest.raises(DataNotFoundError, match=wanted):
            datasets.load_mnist(root=tmp_path / root)
    assert not sources.find_dataset_dir("mnist", tmp_path / "empty")


# -------------------------------------------------------------- search path
def test_root_found_with_forgiving_layouts(tmp_path):
    arrays = write_dataset(tmp_path / "d2l" / "FashionMNIST" / "raw", gz=False)
    ds = datasets.load_fashion_mnist(root=tmp_path / "d2l")
    assert ds.name == "fashion-mnist" and ds.classes[0] == "T-shirt/top"
    assert tuple(ds.train_images.shape) == (30, 1, 28, 28)
    assert torch.equal(ds.train_images[:, 0], torch.from_numpy(arrays["train_images"]))
    assert ds.train_labels.dtype == torch.int64
    write_dataset(tmp_path / "plain" / "mnist", gz=True)
    assert len(datasets.load_mnist(root=tmp_path / "plain").test_labels) == 10


def test_search_order(tmp_path, monkeypatch):
    write_dataset(tmp_path / "root", arrays=fake_arrays(n_train=11))
    write_dataset(tmp_path / "env", arrays=fake_arrays(n_train=12))
    write_dataset(sources.user_cache_dir("mnist"), arrays=fake_arrays(n_train=13))
    write_dataset(tmp_path / "sys", arrays=fake_arrays(n_train=14))

    def n_train(root=None):
        return len(datasets.load_mnist(root=root).train_labels)

    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "env"))
    assert n_train(tmp_path / "root") == 11
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="is empty.*never swapped"):
        n_train(tmp_path / "empty")  # a folder the user names is used or refused
    assert n_train(None) == 12  # no folder named: $CNNLAB_DATA comes first
    monkeypatch.delenv("CNNLAB_DATA")
    assert n_train() == 13
    rows = sources.locate("mnist", root=tmp_path / "root")
    assert [r.status for r in rows] == ["found", "not set", "found", "found"]
    # the system folder comes last (it is used when nothing else holds the files)
    for name in NAMES.values():
        os.unlink(sources.user_cache_dir("mnist") / (name + ".gz"))
    assert n_train() == 14


def test_incomplete_folder_is_reported_and_skipped(tmp_path):
    folder = tmp_path / "partial"
    write_dataset(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    rows = sources.locate("mnist", root=folder)
    assert rows[0].status.startswith("incomplete")
    with pytest.raises(DataNotFoundError) as e:
        datasets.load_mnist(root=folder)
    msg = str(e.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and "--data-dir" in msg and "\n" not in msg


def test_missing_everywhere_says_how_to_get_it(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        datasets.load_fashion_mnist(root=tmp_path / "nothing")
    msg = str(e.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    for name in NAMES.values():
        assert name + ".gz" in msg
    assert isinstance(e.value, FileNotFoundError)


# ------------------------------------------------------------ parsed cache
def test_cache_written_atomically_and_reused(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    write_dataset(folder)
    first = datasets.load_mnist(root=folder)
    cache = folder / "cnnlab-mnist-v1.pt"
    assert cache.is_file()
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]  # no temp file left
    blob = torch.load(cache, weights_only=True)
    assert blob["train_images"].dtype == torch.uint8

    calls = []
    real = datasets.read_image_label_pair
    monkeypatch.setattr(datasets, "read_image_label_pair",
                        lambda *a, **k: calls.append(a) or real(*a, **k))
    second = datasets.load_mnist(root=folder)
    assert calls == []  # served from the cache
    assert torch.equal(first.train_images, second.train_images)
    assert torch.equal(first.test_labels, second.test_labels)


def test_broken_cache_is_rebuilt(tmp_path):
    folder = tmp_path / "data"
    write_dataset(folder)
    ref = datasets.load_mnist(root=folder)
    cache = folder / "cnnlab-mnist-v1.pt"
    cache.write_bytes(b"not a torch file")
    again = datasets.load_mnist(root=folder)
    assert torch.equal(ref.train_images, again.train_images)
    blob = torch.load(cache, weights_only=True)  # rewritten, valid
    # a cache with the wrong shape is rejected, too
    blob["train_images"] = blob["train_images"][:, :, :5]
    blob["train_labels"] = blob["train_labels"][:3]
    torch.save(blob, cache)
    assert torch.equal(datasets.load_mnist(root=folder).train_images, ref.train_images)


def test_cache_invalidated_when_files_change(tmp_path):
    folder = tmp_path / "data"
    write_dataset(folder, arrays=fake_arrays(seed=1))
    a = datasets.load_mnist(root=folder)
    write_dataset(folder, arrays=fake_arrays(seed=2))  # same sizes, new contents
    for p in folder.glob("*.gz"):  # filesystem timestamps may be coarse: make the change visible
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    b = datasets.load_mnist(root=folder)
    assert not torch.equal(a.train_images, b.train_images)


def test_readonly_folder_caches_in_user_cache(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    write_dataset(folder)
    real_access = os.access
    monkeypatch.setattr(datasets.os, "access",
                        lambda p, mode: False if Path(p) == folder else real_access(p, mode))
    datasets.load_mnist(root=folder)
    assert not (folder / "cnnlab-mnist-v1.pt").exists()
    assert (sources.user_cache_dir("mnist") / "cnnlab-mnist-v1.pt").is_file()


def test_corrupt_file_error_from_loader(tmp_path):
    folder = tmp_path / "data"
    write_dataset(folder)
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(29, dtype=np.uint8))))
    with pytest.raises(DataError, match="29 labels for 30 images"):
        datasets.load_mnist(root=folder)
    assert not (folder / "cnnlab-mnist-v1.pt").exists()


# ------------------------------------------------------------------ download
class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def serve(monkeypatch, payloads: dict[str, bytes], fail: bool = False):
    """Replace urlopen with one serving ``payloads`` by file name; record the URLs."""
    urls = []

    def fake_urlopen(url, timeout=None):
        urls.append(url)
        if fail:
            raise URLError("Temporary failure in name resolution")
        return FakeResponse(payloads[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(sources, "urlopen", fake_urlopen)
    monkeypatch.delenv("CNNLAB_NO_DOWNLOAD")
    return urls


def fake_remote(monkeypatch, corrupt: str | None = None) -> dict[str, bytes]:
    """gz payloads for mnist, with the spec's md5 sums set to match them."""
    arrays = fake_arrays()
    payloads, files = {}, {}
    for key, name in NAMES.items():
        data = gzip.compress(idx_bytes(arrays[key]))
        md5 = hashlib.md5(data).hexdigest()
        if key == corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        payloads[name + ".gz"] = data
        files[key] = (name + ".gz", md5)
    spec = dataclasses.replace(sources.SOURCES["mnist"], files=files)
    monkeypatch.setitem(sources.SOURCES, "mnist", spec)
    return payloads


def test_download_good_md5(monkeypatch):
    payloads = fake_remote(monkeypatch)
    urls = serve(monkeypatch, payloads)
    ds = datasets.load_mnist()
    assert len(ds.train_labels) == 30 and len(urls) == 4
    assert urls[0].startswith("https://ossci-datasets.s3.amazonaws.com/mnist/")
    cache = sources.user_cache_dir("mnist")
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [n + ".gz" for n in NAMES.values()] + ["cnnlab-mnist-v1.pt"])
    datasets.load_mnist()  # now found locally: no further request
    assert len(urls) == 4


def test_download_bad_md5_leaves_nothing(monkeypatch):
    payloads = fake_remote(monkeypatch, corrupt="train_labels")
    serve(monkeypatch, payloads)
    with pytest.raises(DataError, match="md5"):
        datasets.load_mnist()
    cache = sources.user_cache_dir("mnist")
    names = [p.name for p in cache.iterdir()]
    assert "train-labels-idx1-ubyte.gz" not in names
    assert not [n for n in names if n.endswith(".part")]


def test_download_network_error_is_clear(monkeypatch):
    payloads = fake_remote(monkeypatch)
    serve(monkeypatch, payloads, fail=True)
    with pytest.raises(DataNotFoundError) as e:
        datasets.load_mnist()
    msg = str(e.value)
    assert "could not be downloaded" in msg and "name resolution" in msg
    assert "train-images-idx3-ubyte.gz" in msg and "\n" not in msg
    assert not list(sources.user_cache_dir("mnist").iterdir())


def test_fashion_mnist_tries_each_mirror(monkeypatch):
    urls = serve(monkeypatch, {}, fail=True)
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist()
    assert urls[0].startswith("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")
    assert len(urls) == len(sources.SOURCES["fashion-mnist"].mirrors)
