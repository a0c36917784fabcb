"""Where the MNIST-style datasets live: search path, download, user cache.

Search order (first folder holding all four files wins):

1. ``root`` (the CLI's ``--data-dir``); when given, the only place looked at: a folder
   without the four files is an error (or, with downloads allowed, where they go),
   never a reason to use another copy;
2. ``$CNNLAB_DATA``;
3. the user cache ``$XDG_CACHE_HOME/cnnlab/<name>`` (default ``~/.cache/cnnlab/<name>``);
4. Debian's package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``),
   for Fashion-MNIST only.

Each folder may hold the four files itself or under ``<name>/``,
``FashionMNIST/raw/`` (torchvision's and so d2l's layout) and similar names; the
files may be gzip-compressed or not. Files found locally are checked by
structure (the IDX reader), not by md5: Debian's package ships the same data
recompressed, so its ``.gz`` files have other md5 sums than the originals.
When the files are nowhere, they are
downloaded from the official mirror into the user cache, checked against the
published md5 sums and renamed into place only when complete. Set
``CNNLAB_NO_DOWNLOAD=1`` to forbid downloads (tests, air-gapped machines).

Example:
    >>> [spec.name for spec in SOURCES.values()]
    ['fashion-mnist', 'mnist']
    >>> user_cache_dir("mnist").parts[-2:]
    ('cnnlab', 'mnist')
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.error import URLError
from urllib.request import urlopen

from cnnlab.errors import DataError, DataNotFoundError

__all__ = ["SOURCES", "SourceSpec", "Place", "get_spec", "user_cache_dir", "search_dirs",
           "find_files", "find_dataset_dir", "locate", "download", "ensure_files",
           "how_to_get"]

FILE_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True)
class SourceSpec:
    """One MNIST-style dataset: its files, mirrors, md5 sums and class names."""

    name: str
    title: str
    files: dict[str, tuple[str, str]]  # key -> (file name of the .gz, md5 of the .gz)
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    system_dirs: tuple[str, ...] = ()
    apt_package: str | None = None
    # sub-folders of a search folder that may hold the files (be forgiving about layouts)
    subdirs: tuple[str, ...] = field(default=())

    def file_names(self) -> list[str]:
        return [self.files[k][0] for k in FILE_KEYS]


SOURCES: dict[str, SourceSpec] = {
    "fashion-mnist": SourceSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        # md5 sums published by Zalando Research (github.com/zalandoresearch/fashion-mnist)
        files={
            "train_images": ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            "train_labels": ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            "test_images": ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            "test_labels": ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"),
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        apt_package="dataset-fashion-mnist",
        subdirs=("fashion-mnist", "FashionMNIST/raw", "FashionMNIST", "fashion_mnist",
                 "fashion"),
    ),
    "mnist": SourceSpec(
        name="mnist",
        title="MNIST",
        # md5 sums of the original LeCun files, as mirrored by PyTorch's ossci bucket
        files={
            "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        },
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",),
        classes=tuple(str(i) for i in range(10)),
        subdirs=("mnist", "MNIST/raw", "MNIST"),
    ),
}


def get_spec(name: str) -> SourceSpec:
    """The :class:`SourceSpec` of ``name`` (``fashion-mnist`` or ``mnist``)."""
    key = str(name).lower().replace("_", "-")
    if key == "fashionmnist":
        key = "fashion-mnist"
    if key not in SOURCES:
        raise DataError(f"unknown dataset {name!r}; choose one of "
                        f"{', '.join([*SOURCES, 'synthetic'])}")
    return SOURCES[key]


def user_cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/cnnlab/<name>``, by default ``~/.cache/cnnlab/<name>``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnnlab" / name


def search_dirs(name: str, root: str | os.PathLike | None = None) -> list[tuple[str, Path | None]]:
    """The folders searched, in order, each with a label (``None`` path: not set)."""
    spec = get_spec(name)
    env = os.environ.get("CNNLAB_DATA")
    places: list[tuple[str, Path | None]] = []
    if root is not None:
        places.append(("--data-dir", Path(root).expanduser()))
    places.append(("$CNNLAB_DATA", Path(env).expanduser() if env else None))
    places.append(("user cache", user_cache_dir(spec.name)))
    for d in spec.system_dirs:
        places.append((f"Debian package {spec.apt_package}", Path(d)))
    return places


def _file_variants(gz_name: str) -> list[str]:
    raw = gz_name[:-3]
    # raw first (no decompression); LeCun's unpacked names sometimes use a dot: train-images.idx3
    return [raw, gz_name, raw.replace("-idx", ".idx"), raw.replace("-idx", ".idx") + ".gz"]


def find_files(folder: str | os.PathLike, name: str) -> dict[str, Path] | None:
    """The four files of ``name`` in ``folder`` or a known sub-folder of it, or ``None``."""
    spec = get_spec(name)
    folder = Path(folder)
    for cand in [folder, *(folder / s for s in spec.subdirs)]:
        if not cand.is_dir():
            continue
        found: dict[str, Path] = {}
        for key in FILE_KEYS:
            for variant in _file_variants(spec.files[key][0]):
                if (cand / variant).is_file():
                    found[key] = cand / variant
                    break
        if len(found) == len(FILE_KEYS):
            return found
    return None


def find_dataset_dir(name: str, root: str | os.PathLike | None = None) -> dict[str, Path] | None:
    """The files of the first search folder that holds all four, or ``None`` (no download).

    A ``root`` the caller names is the only place looked at: without the files there
    the answer is ``None``, never another copy found elsewhere.
    """
    if root is not None:
        return find_files(Path(root).expanduser(), name)
    for _, path in search_dirs(name, root):
        if path is not None:
            files = find_files(path, name)
            if files:
                return files
    return None


class Place(NamedTuple):
    """One row of :func:`locate`: a searched place and what was found there."""

    place: str
    status: str


def locate(name: str, root: str | os.PathLike | None = None) -> list[Place]:
    """Where each searched folder stands for dataset ``name`` (for ``cnnlab data``).

    Example:
        >>> rows = locate("mnist", root="/nonexistent")
        >>> rows[0]
        Place(place='--data-dir /nonexistent', status='missing')
    """
    spec = get_spec(name)
    rows = []
    for label, path in search_dirs(name, root):
        if path is None:
            rows.append(Place(f"{label}", "not set"))
            continue
        files = find_files(path, name)
        if files:
            where = files["train_images"].parent
            status = "found" if where == path else f"found in {where}"
            rows.append(Place(f"{label} {path}", status))
        elif path.is_dir() and any(
                (path / v).exists() for k in FILE_KEYS for v in _file_variants(spec.files[k][0])):
            rows.append(Place(f"{label} {path}", "incomplete (not all four files)"))
        else:
            rows.append(Place(f"{label} {path}", "missing"))
    return rows


def how_to_get(name: str) -> str:
    """One sentence telling a user how to make ``name`` available offline."""
    spec = get_spec(name)
    files = ", ".join(spec.file_names())
    apt = f"install it with `sudo apt-get install {spec.apt_package}`, or " \
        if spec.apt_package else ""
    return (f"{apt}copy {files} (from {spec.mirrors[0]}) into {user_cache_dir(spec.name)} "
            f"or into a folder you pass as --data-dir (root=) or set as $CNNLAB_DATA")


def file_digest(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """The hex digest of a file's bytes (``md5``: the official Fashion-MNIST list;
    ``sha1``: d2l's DATA_HUB), read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, dest: Path, md5: str, progress: bool) -> None:
    """Download ``url`` to ``dest`` via a temp file in the same folder; md5-checked."""
    from tqdm.auto import tqdm

    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=30) as response:
            total = response.headers.get("Content-Length") if response.headers else None
            with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                      desc=dest.name, disable=not progress, leave=False) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != md5:
            raise DataError(f"{url}: downloaded file has md5 {digest.hexdigest()}, expected "
                            f"{md5}; the mirror served a damaged or different file, try again")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def download(name: str, dest: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Download the four files of ``name`` into ``dest`` (default: the user cache).

    Files already there with the right md5 are kept. Each file is written to a
    temporary name and renamed only after its md5 matched, so an interrupted or
    damaged download leaves nothing behind. Raises :class:`DataNotFoundError`
    (no network) or :class:`DataError` (md5 mismatch).
    """
    spec = get_spec(name)
    dest = Path(dest) if dest is not None else user_cache_dir(spec.name)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {dest} to download {spec.title} ({e.strerror}); "
                        "pass a writable --data-dir (root=)") from None
    for key in FILE_KEYS:
        fname, md5 = spec.files[key]
        target = dest / fname
        if target.is_file() and file_digest(target) == md5:
            continue
        failures = []
        for mirror in spec.mirrors:
            try:
                _fetch(mirror + fname, target, md5, progress)
                break
            except DataError as e:
                failures.append(str(e))
            except (URLError, OSError, TimeoutError, ValueError) as e:
                reason = getattr(e, "reason", None) or e
                failures.append(f"{mirror + fname}: {reason}")
        else:
            if all(": downloaded file has md5" in f for f in failures):
                raise DataError(failures[-1])
            raise DataNotFoundError(f"{spec.title} could not be downloaded ({failures[-1]}); "
                                    f"{how_to_get(spec.name)}")
    return dest


def ensure_files(name: str, root: str | os.PathLike | None = None, download_ok: bool = True,
                 progress: bool = True) -> dict[str, Path]:
    """The four files of ``name``: found on the search path, else downloaded.

    Downloads only when ``download_ok`` and ``$CNNLAB_NO_DOWNLOAD`` is unset.
    """
    files = find_dataset_dir(name, root)
    if files:
        return files
    spec = get_spec(name)
    if root is not None:  # the folder the user named: used or refused, never swapped
        return _files_in_root(spec, Path(root).expanduser(), download_ok, progress)
    looked = "; ".join(f"{p.place}: {p.status}" for p in locate(name, root))
    if not download_ok or os.environ.get("CNNLAB_NO_DOWNLOAD", "") not in ("", "0"):
        raise DataNotFoundError(f"{spec.title} not found (looked in {looked}) and downloading "
                                f"is off; {how_to_get(spec.name)}")
    dest = download(spec.name, progress=progress)
    files = find_files(dest, spec.name)
    if not files:  # pragma: no cover - download() either fills dest or raises
        raise DataNotFoundError(f"{spec.title} download left {dest} incomplete; "
                                f"{how_to_get(spec.name)}")
    return files


def _files_in_root(spec: SourceSpec, root: Path, download_ok: bool,
                   progress: bool) -> dict[str, Path]:
    """The four files in the folder the user named, downloaded there if allowed, else
    an error that says which are missing (no other folder is looked at)."""
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DataNotFoundError(f"the data folder {root} {what}; name a folder holding the "
                                f"{spec.title} files, or none to search the usual places; "
                                f"{how_to_get(spec.name)}")
    missing = [spec.files[k][0] for k in FILE_KEYS
               if not any((c / v).is_file() for c in (root, *(root / d for d in spec.subdirs))
                          for v in _file_variants(spec.files[k][0]))]
    if download_ok and os.environ.get("CNNLAB_NO_DOWNLOAD", "") in ("", "0"):
        download(spec.name, dest=root, progress=progress)
        files = find_files(root, spec.name)
        if files:
            return files
    if not any(root.iterdir()):
        have = "is empty"
    else:
        have = f"lacks {', '.join(missing)}" if missing else "does not hold all four files"
    raise DataNotFoundError(f"the data folder {root} {have} (regular files, gzipped or not) "
                            f"of {spec.title}; it is used or refused, never swapped for "
                            f"another copy (name no folder to search the usual places); "
                            f"{how_to_get(spec.name)}")
