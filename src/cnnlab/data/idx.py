"""Reader for the IDX files that MNIST and Fashion-MNIST ship in.

IDX (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte magic number
``0x00 0x00 <dtype code> <number of dimensions>``, then each dimension as a
big-endian uint32, then the values in row-major order (big-endian for the
multi-byte types). Files may be gzip-compressed; we tell by the first two bytes
(0x1f 0x8b), not by the file name.

Every problem raises :class:`cnnlab.errors.DataError` naming the file and what
is wrong, so a half-downloaded or mislabelled file never turns into a silent
shape error later.

Example:
    >>> import gzip, struct, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte.gz"
    >>> _ = path.write_bytes(gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([7, 2, 1])))
    >>> read_idx(path)
    tensor([7, 2, 1], dtype=torch.uint8)
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from cnnlab.errors import DataError

__all__ = ["read_idx", "read_idx_bytes", "read_image_label_pair"]

GZIP_MAGIC = b"\x1f\x8b"

# IDX dtype code -> big-endian numpy dtype
IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",  # unsigned byte
    0x09: ">i1",  # signed byte
    0x0B: ">i2",  # short
    0x0C: ">i4",  # int
    0x0D: ">f4",  # float
    0x0E: ">f8",  # double
}


def _raw_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the path or run `cnnlab data`") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror}); check its permissions") from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as e:
            raise DataError(f"{path}: corrupt or truncated gzip stream ({e}); "
                            "delete it and fetch it again (`cnnlab data fetch`)") from None
    return data


def read_idx_bytes(data: bytes, name: str = "<bytes>") -> torch.Tensor:
    """Parse the (already decompressed) bytes of one IDX file into a tensor.

    ``name`` is only used in error messages.

    Example:
        >>> import struct
        >>> read_idx_bytes(struct.pack(">BBBBII", 0, 0, 8, 2, 2, 2) + bytes(range(4))).tolist()
        [[0, 1], [2, 3]]
    """
    if len(data) < 4:
        raise DataError(f"{name}: {len(data)} bytes is too short for an IDX header; "
                        "the file is truncated, fetch it again")
    zero1, zero2, code, ndim = data[0], data[1], data[2], data[3]
    if zero1 != 0 or zero2 != 0 or code not in IDX_DTYPES:
        raise DataError(f"{name}: wrong magic number 0x{data[:4].hex()} (expected 0x0000 then a "
                        "type code such as 08 and the number of dimensions); not an IDX file")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions; the file is corrupt")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: header declares {ndim} dimensions but the file ends after "
                        f"{len(data)} bytes; the file is truncated, fetch it again")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(f"{name}: header says shape {tuple(shape)} = {expected} bytes of data but "
                        f"the file holds {actual}; it is {what}, fetch it again")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    # native byte order, writable copy: torch cannot wrap read-only or big-endian buffers
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read one IDX file (gzip-compressed or raw) into a tensor of its dtype.

    Example:
        >>> read_idx("/nonexistent/train-labels-idx1-ubyte")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        cnnlab.errors.DataError: /nonexistent/train-labels-idx1-ubyte: file not found; ...
    """
    path = Path(path)
    return read_idx_bytes(_raw_bytes(path), name=str(path))


def read_image_label_pair(images_path: str | os.PathLike, labels_path: str | os.PathLike,
                          num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Read an images file and its labels file and check that they belong together.

    Returns ``(images uint8 [N, 1, H, W], labels int64 [N])``.

    Example:
        >>> import struct, tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "x").write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 2, 2) + bytes(8))
        >>> _ = (d / "y").write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 2) + bytes([3, 9]))
        >>> X, y = read_image_label_pair(d / "x", d / "y")
        >>> tuple(X.shape), y.tolist()
        ((2, 1, 2, 2), [3, 9])
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != torch.uint8 or images.dim() != 3:
        raise DataError(f"{images_path}: expected unsigned-byte images of 3 dimensions "
                        f"(N, H, W), got {images.dtype} of shape {tuple(images.shape)}; "
                        "is this the labels file?")
    if labels.dtype != torch.uint8 or labels.dim() != 1:
        raise DataError(f"{labels_path}: expected unsigned-byte labels of 1 dimension (N), "
                        f"got {labels.dtype} of shape {tuple(labels.shape)}; "
                        "is this the images file?")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images "
                        f"in {images_path}; the files do not belong together")
    if labels.numel() and int(labels.max()) >= num_classes:
        raise DataError(f"{labels_path}: label {int(labels.max())} is out of range for "
                        f"{num_classes} classes; the file is corrupt or from another dataset")
    return images.unsqueeze(1).contiguous(), labels.long()
