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


# No MNIST-style file comes near this: Fashion-MNIST's largest holds 47 MB of pixels.
# A header declaring more is corrupt or hostile, and is refused before anything is read.
MAX_IDX_BYTES = 1 << 30
# DEFLATE cannot shrink data by more than 1032:1 (RFC 1951: a 258-byte match costs at
# least 2 bits), so a gz file of n bytes never holds more than about 1032 * n.
MAX_GZIP_RATIO = 1032
_CHUNK = 1 << 20
_SLACK = 4096  # bytes read past the declared size, to say how many trailing bytes there are


def _header_size(head: bytes, name: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, header bytes)`` from the first bytes of an IDX file."""
    if len(head) < 4:
        raise DataError(f"{name}: {len(head)} bytes is too short for an IDX header; "
                        "the file is truncated, fetch it again")
    zero1, zero2, code, ndim = head[0], head[1], head[2], head[3]
    if zero1 != 0 or zero2 != 0 or code not in IDX_DTYPES:
        raise DataError(f"{name}: wrong magic number 0x{head[:4].hex()} (expected 0x0000 then a "
                        "type code such as 08 and the number of dimensions); not an IDX file")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions; the file is corrupt")
    header = 4 + 4 * ndim
    if len(head) < header:
        raise DataError(f"{name}: header declares {ndim} dimensions but the file ends after "
                        f"{len(head)} bytes; the file is truncated, fetch it again")
    shape = struct.unpack(f">{ndim}I", head[4:header])
    return shape, np.dtype(IDX_DTYPES[code]), header


def _declared_bytes(shape: tuple[int, ...], dtype: np.dtype, name: str) -> int:
    """The data bytes the header promises, refused when no real dataset is that large."""
    expected = dtype.itemsize
    for s in shape:  # Python ints: no overflow for 255 dimensions of 2**32
        expected *= s
    if expected > MAX_IDX_BYTES:
        raise DataError(f"{name}: header declares shape {tuple(shape)} = {expected} bytes of "
                        f"data, more than the {MAX_IDX_BYTES >> 30} GiB an IDX file may hold "
                        "here; the file is corrupt, fetch it again")
    from cnnlab.guards import check_memory

    check_memory(expected, f"{name} (shape {tuple(shape)})",
                 "free some memory or use a smaller dataset file")
    return expected


def _read_file(f, path: Path) -> bytearray:
    """The decompressed bytes of an open IDX file, never more than its header promises.

    The header is read first; the declared size is checked against the limit, the
    machine's memory and the file's own size (raw: exactly; gz: at most 1032:1); then
    the data is read (gz: streamed) into a buffer of that size plus a few kB, so
    that a decompression bomb is refused after at most that many bytes, not after
    filling memory.
    """
    name = str(path)
    first = f.read(2)
    if first == GZIP_MAGIC:
        f.seek(0)
        size_on_disk = os.fstat(f.fileno()).st_size
        source = _GzipChunks(f, name)
    else:
        size_on_disk = None
        source = _RawChunks(f, first)
    head = source.read(4)
    if len(head) == 4 and head[0] == 0 and head[1] == 0:
        head += source.read(4 * head[3])
    shape, dtype, header = _header_size(head, name)
    expected = _declared_bytes(shape, dtype, name)
    if size_on_disk is None:
        actual = os.fstat(f.fileno()).st_size - header
        if actual != expected:
            what = "truncated" if actual < expected else "has trailing bytes"
            raise DataError(f"{name}: header says shape {tuple(shape)} = {expected} bytes of "
                            f"data but the file holds {actual}; it is {what}, fetch it again")
    elif expected > MAX_GZIP_RATIO * size_on_disk + 1024:
        raise DataError(f"{name}: header declares {expected} bytes of data, more than a "
                        f"{size_on_disk}-byte gzip file can hold; the file is truncated or "
                        "corrupt, fetch it again")
    data = bytearray(header + expected + _SLACK)
    data[:header] = head
    n = header
    while n < len(data):
        block = source.read(min(_CHUNK, len(data) - n))
        if not block:
            break
        data[n:n + len(block)] = block
        n += len(block)
    if n == len(data):  # more than the slack: stop reading, however much is left
        raise DataError(f"{name}: header says shape {tuple(shape)} = {expected} bytes of data "
                        f"but the file holds more than {expected + _SLACK}; it has trailing "
                        "bytes, fetch it again")
    del data[n:]  # in place: no second copy of a large file
    return data


class _RawChunks:
    def __init__(self, f, first: bytes):
        self.f, self.pending = f, first

    def read(self, n: int) -> bytes:
        out, self.pending = self.pending[:n], self.pending[n:]
        return out + (self.f.read(n - len(out)) if n > len(out) else b"")


class _GzipChunks:
    """Decompressed bytes of a gzip stream (all members), at most ``n`` per read."""

    def __init__(self, f, name: str):
        self.f, self.name = f, name
        self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.buf = b""

    def read(self, n: int) -> bytes:
        try:
            while len(self.buf) < n:
                if self.z.eof:  # a member ended: another may follow (gzip allows several)
                    data = self.z.unused_data + self.z.unconsumed_tail or self.f.read(_CHUNK)
                    if not data.strip(b"\0"):  # the end, or the zero padding tar leaves
                        break
                    self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                elif self.z.unconsumed_tail:  # input held back by the output cap
                    data = self.z.unconsumed_tail
                else:
                    data = self.f.read(_CHUNK)
                    if not data:
                        raise EOFError("the gzip stream ends before its end marker")
                self.buf += self.z.decompress(data, n - len(self.buf))
        except (EOFError, zlib.error) as e:
            raise DataError(f"{self.name}: corrupt or truncated gzip stream ({e}); "
                            "delete it and fetch it again (`cnnlab data fetch`)") from None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def _raw_bytes(path: Path) -> bytearray:
    from cnnlab.errors import DataNotFoundError
    from cnnlab.guards import open_regular

    try:
        f = open_regular(path, "data", "pass an IDX file or run `cnnlab data`")
    except DataNotFoundError:
        raise DataError(f"{path}: file not found; check the path or run `cnnlab data`") from None
    with f:
        try:
            return _read_file(f, path)
        except OSError as e:
            raise DataError(f"{path}: cannot read ({e.strerror or e}); check the file") from None


def read_idx_bytes(data: bytes, name: str = "<bytes>") -> torch.Tensor:
    """Parse the (already decompressed) bytes of one IDX file into a tensor.

    ``name`` is only used in error messages.

    Example:
        >>> import struct
        >>> read_idx_bytes(struct.pack(">BBBBII", 0, 0, 8, 2, 2, 2) + bytes(range(4))).tolist()
        [[0, 1], [2, 3]]
    """
    shape, dtype, header = _header_size(bytes(data[:4 + 4 * data[3]]) if len(data) >= 4
                                        else bytes(data), name)
    expected = dtype.itemsize
    for s in shape:  # Python ints: a hostile header cannot overflow the product
        expected *= s
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
