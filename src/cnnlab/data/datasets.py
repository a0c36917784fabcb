"""Whole datasets in memory: Fashion-MNIST, MNIST and the synthetic shapes.

A :class:`Dataset` holds both splits as uint8 tensors (N, 1, 28, 28) and int64
labels. Parsing the IDX files takes about a second (gzip); the parsed tensors
are cached as one ``.pt`` file next to the files (or in the user cache when
that folder is read-only or system-owned) so that later loads are a single
``torch.load``.

Example:
    >>> ds = load_dataset("synthetic", seed=0)
    >>> ds.train_images.dtype, tuple(ds.train_images.shape[1:]), len(ds.classes)
    (torch.uint8, (1, 28, 28), 10)
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.data.idx import read_image_label_pair
from cnnlab.data.names import DATASET_NAMES
from cnnlab.data.sources import FILE_KEYS, ensure_files, get_spec, user_cache_dir
from cnnlab.errors import DataError

__all__ = ["Dataset", "load_dataset", "load_fashion_mnist", "load_mnist", "parsed_cache_path",
           "DATASET_NAMES"]

CACHE_VERSION = 1


@dataclass
class Dataset:
    """Both splits of an image-classification dataset, held in memory.

    ``train_images``/``test_images``: uint8 (N, 1, H, W); ``train_labels``/
    ``test_labels``: int64 (N,); ``classes``: the text label of each class index.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.train_images.shape[1:])
        return (f"Dataset({self.name!r}, train={len(self.train_labels)}, "
                f"test={len(self.test_labels)}, image={shape}, classes={len(self.classes)})")


def _signature(files: dict[str, Path]) -> list[list]:
    """What the cache must match: each file's name, size and modification time."""
    sig = []
    for key in FILE_KEYS:
        st = files[key].stat()
        sig.append([files[key].name, int(st.st_size), int(st.st_mtime_ns)])
    return sig


def parsed_cache_path(name: str, files: dict[str, Path]) -> Path:
    """Where the parsed tensors of these files are cached.

    Next to the files when that folder is writable and not system-owned
    (``/usr``: files there belong to a package), else in the user cache.
    """
    folder = files["train_images"].parent
    fname = f"cnnlab-{name}-v{CACHE_VERSION}.pt"
    system = str(folder.resolve()).startswith("/usr/")
    if not system and os.access(folder, os.W_OK):
        return folder / fname
    return user_cache_dir(name) / fname


def _load_cache(path: Path, name: str, sig: list[list], num_classes: int) -> dict | None:
    """The cached tensors if the cache file is intact and matches ``sig``, else None."""
    if not path.is_file():
        return None
    try:
        # mmap: the tensors are the file's pages (copy-on-write, never written back), not a
        # copy read at start-up (~40 ms of every run's start here, benchmarks/results/startup.md)
        blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # any unreadable cache is simply rebuilt
        return None
    try:
        if blob.get("version") != CACHE_VERSION or blob.get("name") != name:
            return None
        if blob.get("source") != sig:
            return None
        out = {}
        for split in ("train", "test"):
            X, y = blob[f"{split}_images"], blob[f"{split}_labels"]
            ok = (isinstance(X, torch.Tensor) and isinstance(y, torch.Tensor)
                  and X.dtype == torch.uint8 and y.dtype == torch.uint8
                  and X.dim() == 4 and X.shape[1] == 1 and y.dim() == 1
                  and X.shape[0] == y.shape[0] and y.numel() > 0
                  and int(y.max()) < num_classes)
            if not ok:
                return None
            out[f"{split}_images"], out[f"{split}_labels"] = X, y.long()
        return out
    except (AttributeError, KeyError, TypeError):
        return None


def _save_cache(path: Path, blob: dict) -> None:
    """Write ``blob`` atomically (temp file + rename); a cache we cannot write is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(blob, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        pass
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load_idx_dataset(name: str, root: str | os.PathLike | None, download: bool,
                      cache: bool = True) -> Dataset:
    spec = get_spec(name)
    files = ensure_files(spec.name, root, download_ok=download)
    sig = _signature(files)
    path = parsed_cache_path(spec.name, files)
    tensors = _load_cache(path, spec.name, sig, len(spec.classes)) if cache else None
    if tensors is None:
        tensors = {}
        for split, (xk, yk) in {"train": ("train_images", "train_labels"),
                                "test": ("test_images", "test_labels")}.items():
            X, y = read_image_label_pair(files[xk], files[yk], num_classes=len(spec.classes))
            tensors[f"{split}_images"], tensors[f"{split}_labels"] = X, y
        if tensors["train_images"].shape[1:] != tensors["test_images"].shape[1:]:
            raise DataError(f"{files['test_images']}: test images are "
                            f"{tuple(tensors['test_images'].shape[2:])} but training images "
                            f"{tuple(tensors['train_images'].shape[2:])}; mixed-up files")
        if cache:
            blob = {"version": CACHE_VERSION, "name": spec.name, "source": sig}
            for k, v in tensors.items():
                blob[k] = v.to(torch.uint8) if k.endswith("labels") else v
            _save_cache(path, blob)
    return Dataset(name=spec.name, classes=list(spec.classes), **tensors)


def load_fashion_mnist(root: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """Fashion-MNIST (Xiao et al., 2017), 60000 training and 10000 test images.

    Files are searched as described in :mod:`cnnlab.data.sources`; when they are
    nowhere they are downloaded (unless ``download=False`` or
    ``$CNNLAB_NO_DOWNLOAD=1``).

    Example:
        >>> ds = load_fashion_mnist()  # doctest: +SKIP
        >>> ds.train_images.shape, ds.classes[9]  # doctest: +SKIP
        (torch.Size([60000, 1, 28, 28]), 'Ankle boot')
    """
    return _load_idx_dataset("fashion-mnist", root, download)


def load_mnist(root: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """MNIST handwritten digits (LeCun et al., 1998); classes are ``'0'``..``'9'``.

    Example:
        >>> load_mnist().classes[:3]  # doctest: +SKIP
        ['0', '1', '2']
    """
    return _load_idx_dataset("mnist", root, download)


def load_dataset(name: str, root: str | os.PathLike | None = None, seed: int = 0,
                 download: bool = True) -> Dataset:
    """Load ``name``: ``fashion-mnist``, ``mnist`` or ``synthetic`` (``seed`` picks the shapes).

    Example:
        >>> load_dataset("synthetic").classes[:3]
        ['square', 'circle', 'triangle']
    """
    key = str(name).lower().replace("_", "-")  # str(): None or a number is an unknown name
    if key == "synthetic":
        from cnnlab.data.synthetic import make_synthetic

        return make_synthetic(seed=seed)
    return _load_idx_dataset(get_spec(key).name, root, download)
