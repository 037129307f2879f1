"""The IDX file format of MNIST and Fashion-MNIST, read with every field checked.

Layout (all integers big-endian)::

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
                0x0E float64
    byte  3     number of dimensions d
    4 * d       size of each dimension, unsigned 32-bit
    the data    prod(sizes) elements, row-major (C order), big-endian

So MNIST's images start with the magic number 0x00000803 (uint8, 3 dimensions: N, 28, 28) and
its labels with 0x00000801 (uint8, 1 dimension: N). The file may be gzip-compressed, as the
official downloads are; it is recognised by its content, not its name.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from .files import DataFileError, read_bytes, verify_sha256

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def magic_number(dtype: np.dtype | type, ndim: int) -> int:
    """The IDX magic number for ``ndim`` dimensions of ``dtype`` (``uint8, 3`` -> 0x00000803)."""
    wanted = np.dtype(dtype).newbyteorder(">")
    for code, idx_dtype in IDX_DTYPES.items():
        if idx_dtype == wanted:
            return (code << 8) | ndim
    raise ValueError(f"IDX has no element type for {np.dtype(dtype)}")


def _describe(code: int, ndim: int) -> str:
    """``'uint8 elements, 3 dimensions'``: what a (valid) magic number declares."""
    return f"{IDX_DTYPES[code].name} elements, {ndim} dimension{'s' if ndim != 1 else ''}"


def _check_magic(
    raw: bytes, source: str | Path, dtype: np.dtype | type | None, ndim: int | None
) -> None:
    """The first four bytes must be an IDX magic number, and the one expected when ``dtype``
    and/or ``ndim`` are given; checked before anything is read from the header, whose sizes
    mean nothing in a file of another kind."""
    found = f"0x{raw[:4].hex()}"
    code, dims = raw[2], raw[3]
    valid = raw[:2] == b"\x00\x00" and code in IDX_DTYPES and dims >= 1
    want_code = None if dtype is None else magic_number(dtype, 1) >> 8
    if valid and want_code in (None, code) and ndim in (None, dims):
        return
    what = _describe(code, dims) if valid else "not an IDX magic number"
    if want_code is None and ndim is None:
        types = ", ".join(f"{c:02x}" for c in IDX_DTYPES)
        raise DataFileError(
            f"{source}: not an IDX file: magic number {found}; expected 0x0000TTDD with element "
            f"type TT in {{{types}}} and DD >= 1 dimensions"
        )
    if want_code is not None and ndim is not None:
        want = f"0x{(want_code << 8) | ndim:08x} ({_describe(want_code, ndim)})"
    elif want_code is not None:
        want = f"0x0000{want_code:02x}DD ({IDX_DTYPES[want_code].name} elements)"
    else:
        want = f"0x0000TT{ndim:02x} ({ndim} dimension{'s' if ndim != 1 else ''})"
    raise DataFileError(f"{source}: wrong magic number: expected {want}, found {found} ({what})")


def parse_idx(
    raw: bytes,
    source: str | Path = "<bytes>",
    *,
    dtype: np.dtype | type | None = None,
    ndim: int | None = None,
) -> np.ndarray:
    """The array held by the uncompressed IDX content ``raw``.

    Checks, in this order: the magic number (an IDX one, and the one that declares ``dtype``
    and ``ndim`` when those are given), that the header is complete, and that the data after
    the header has exactly ``prod(sizes) * itemsize`` bytes (fewer: truncated; more: trailing
    garbage). Any failure is a :class:`DataFileError` naming ``source``, what was expected and
    what was found. The result has shape ``sizes``, native byte order, and shares memory with
    ``raw`` (so it is read-only) when the element type is one byte wide.
    """
    if len(raw) < 4:
        raise DataFileError(
            f"{source}: {len(raw)} bytes, too short for the 4-byte IDX magic number (truncated)"
        )
    _check_magic(raw, source, dtype, ndim)
    code, dims = raw[2], raw[3]
    header = 4 + 4 * dims
    if len(raw) < header:
        raise DataFileError(
            f"{source}: truncated inside the header ({len(raw)} bytes; the header of a "
            f"{dims}-dimensional IDX file has {header})"
        )
    shape = struct.unpack(f">{dims}I", raw[4:header])
    idx_dtype = IDX_DTYPES[code]
    count = math.prod(shape)
    expected, got = count * idx_dtype.itemsize, len(raw) - header
    if got != expected:
        problem = "truncated" if got < expected else "has trailing bytes"
        raise DataFileError(
            f"{source}: {problem}: its header declares {'x'.join(map(str, shape))} "
            f"{idx_dtype.name} elements = {expected} bytes of data, but {got} bytes follow the "
            f"{header}-byte header"
        )
    array = np.frombuffer(raw, dtype=idx_dtype, count=count, offset=header).reshape(shape)
    if idx_dtype.itemsize > 1:
        array = array.astype(idx_dtype.newbyteorder("="))
    return array


def read_idx(
    path: str | Path,
    *,
    dtype: np.dtype | type | None = None,
    ndim: int | None = None,
    sha256: str | None = None,
    known: dict[str, str] | None = None,
) -> np.ndarray:
    """Read the IDX file ``path`` (gzip-compressed or not) and check it.

    ``dtype`` and ``ndim``, when given, are the element type and number of dimensions the
    magic number must declare. ``sha256`` is the official hash of the uncompressed content
    (None: no content check); ``known`` maps hashes of other official files to their names so
    that a swapped file is reported as such (see :func:`~cnnumpy.data.files.verify_sha256`).
    Raises :class:`DataFileError` on any mismatch; a wrong magic number is reported as such
    (expected and found) before any size in the header is trusted.
    """
    raw = read_bytes(path)
    array = parse_idx(raw, path, dtype=dtype, ndim=ndim)
    verify_sha256(raw, path, sha256, known)
    return array
