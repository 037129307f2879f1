"""Reading data-set files safely: locating them, gunzipping them, checking their sha256.

Nothing here downloads anything or unpickles anything. Every problem with a file's content
(truncated or corrupt gzip stream, wrong size, wrong checksum) is a :class:`DataFileError`
naming the file; a file that is not there is a ``FileNotFoundError`` that says where it was
looked for and where the official copy is published.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .dataset import Split

GZIP_MAGIC = b"\x1f\x8b"


class DataFileError(ValueError):
    """A data file that is truncated, corrupt, of the wrong format, or not the official one."""


def find_file(
    name: str, directories: Sequence[Path], *, dataset: str, url: str, gz: bool = True
) -> Path:
    """The first of ``dir/name.gz``, ``dir/name`` (in that order, per directory) that exists.

    ``gz=False`` looks for ``name`` only. Raises ``FileNotFoundError`` listing every place
    looked in and the address of the official copy.
    """
    names = [name + ".gz", name] if gz else [name]
    for directory in directories:
        for candidate in names:
            path = Path(directory) / candidate
            if path.is_file():
                return path
    wanted = " or ".join(repr(n) for n in names)
    places = ", ".join(str(Path(d).absolute()) for d in directories)
    raise FileNotFoundError(
        f"{dataset} file {wanted} not found; looked in: {places}. Nothing is downloaded: get "
        f"the official file from {url} and put it in one of those directories"
    )


def read_bytes(path: str | Path) -> bytes:
    """The content of ``path``, decompressed if it is gzip (recognised by its magic bytes).

    A truncated or corrupt gzip stream (bad deflate data, CRC or length mismatch) raises
    :class:`DataFileError` naming the file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataFileError(
            f"{path}: the gzip data is truncated or corrupt: it starts with the gzip magic bytes "
            f"1f 8b, but decompressing it failed ({type(err).__name__}: {err})"
        ) from None


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def verify_sha256(
    data: bytes,
    path: str | Path,
    expected: str | None,
    known: Mapping[str, str] | None = None,
) -> None:
    """Compare the sha256 of ``data`` (the uncompressed content of ``path``) with ``expected``.

    ``known`` maps the hashes of other official files to their names: content that matches one
    of them is reported as that file (a swapped or mislabelled file), even when ``expected`` is
    None because no official hash is on record for ``path``. Raises :class:`DataFileError`
    naming the file and both hashes, and how to skip the check (``--no-verify`` on the command
    line, ``verify=False`` to the Python loaders).
    """
    got = sha256(data)
    if expected is not None and got == expected:
        return
    other = (known or {}).get(got)
    if expected is None and other is None:
        return
    message = f"{path}: the sha256 of its uncompressed content is {got}"
    if expected is not None:
        message += f", but the official file's is {expected}"
    if other is not None:
        message += f"; this content is the official {other}, a different file"
    else:
        message += "; the file is corrupt, truncated or not the official one"
    raise DataFileError(
        message + ". To use the file anyway, skip the checksum: --no-verify on the command line, "
        "verify=False in Python"
    )


def split_last(
    images: np.ndarray, labels: np.ndarray, n_val: int, source: str
) -> tuple[Split, Split]:
    """``((images[:-n_val], labels[:-n_val]), (images[-n_val:], labels[-n_val:]))``.

    The last ``n_val`` training samples become the validation split (``0 <= n_val < N``).
    """
    n = labels.shape[0]
    if not 0 <= n_val < n:
        raise ValueError(f"cannot hold out {n_val} of the {n} training images of {source}")
    cut = n - n_val
    return (images[:cut], labels[:cut]), (images[cut:], labels[cut:])
