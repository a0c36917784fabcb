"""d2l's data hub: ``DATA_HUB``, ``DATA_URL``, ``download``, ``extract``, ``download_extract``.

The book fetches a few files (Kaggle house prices, section 5.7 of d2l 1.0.3 and
4.10 of 0.17) from its own server. Here the same functions keep a file that is
already in the folder when its SHA-1 matches (or no hash is given: offline
machines re-use what they have), download it with the standard library otherwise
(no ``requests``), and fail with one line naming the file and where to put it when
the network is not there.

Example:
    >>> from cnnlab import d2l
    >>> d2l.DATA_HUB["kaggle_house_train"][0] == d2l.DATA_URL + "kaggle_house_pred_train.csv"
    True
"""

from __future__ import annotations

import os
import tarfile
import urllib.request
import zipfile

from cnnlab.data.sources import file_digest
from cnnlab.errors import ConfigError, DataNotFoundError

DATA_URL = "http://d2l-data.s3-accelerate.amazonaws.com/"
# name -> (url, sha1); the entries the chapters covered here register (0.17 registers
# them in its kaggle section; 1.0.3 passes the URL to download() directly)
DATA_HUB: dict[str, tuple[str, str]] = {
    "kaggle_house_train": (DATA_URL + "kaggle_house_pred_train.csv",
                           "585e9cc93e70b39160e7921475f9bcd7d31219ce"),
    "kaggle_house_test": (DATA_URL + "kaggle_house_pred_test.csv",
                          "fa19780a7b011d9b009e8bff8e99922a8ee2eb90"),
}


def download(url: str, folder: str = "../data", sha1_hash: str | None = None) -> str:
    """Fetch ``url`` into ``folder`` (a ``DATA_HUB`` name also works); return the path.

    A file already there is kept when ``sha1_hash`` matches or is None.
    """
    if not url.startswith("http"):
        if url not in DATA_HUB:
            raise DataNotFoundError(f"{url!r} is neither a URL nor a DATA_HUB name; "
                                    f"known names: {sorted(DATA_HUB)}")
        url, sha1_hash = DATA_HUB[url]
    os.makedirs(folder, exist_ok=True)
    fname = os.path.join(folder, url.split("/")[-1])
    if os.path.exists(fname) and (sha1_hash is None
                                  or file_digest(fname, "sha1") == sha1_hash):
        return fname
    print(f"Downloading {fname} from {url}...")
    tmp = fname + ".part"
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            f.write(r.read())
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise DataNotFoundError(
            f"could not download {url} ({e}); put the file at {os.path.abspath(fname)} "
            "and run again") from None
    os.replace(tmp, fname)
    return fname


def extract(filename: str, folder: str | None = None) -> None:
    """Unpack a .zip / .tar / .gz archive into ``folder`` (default: its own folder)."""
    ext = os.path.splitext(filename)[1]
    if ext not in (".zip", ".tar", ".gz"):
        raise ConfigError(f"extract() takes .zip, .tar or .gz files, got {filename!r}")
    folder = os.path.dirname(filename) if folder is None else folder
    if ext == ".zip":
        with zipfile.ZipFile(filename, "r") as fp:
            fp.extractall(folder)
    else:
        with tarfile.open(filename, "r") as fp:
            fp.extractall(folder, filter="data")


def download_extract(name: str, folder: str | None = None) -> str:
    """``download(name)`` then unpack it beside itself; the unpacked folder's path."""
    fname = download(name)
    base_dir, (data_dir, ext) = os.path.dirname(fname), os.path.splitext(fname)
    if ext not in (".zip", ".tar", ".gz"):
        raise ConfigError(f"download_extract() takes .zip, .tar or .gz files, got {fname!r}")
    extract(fname, base_dir)
    return os.path.join(base_dir, folder) if folder else data_dir


def download_all() -> None:
    """Download every file of ``DATA_HUB`` (d2l 0.17)."""
    for name in DATA_HUB:
        download(name)
