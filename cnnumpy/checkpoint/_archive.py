"""The file itself: atomic writes, and reading an ``.npz`` archive without ever unpickling.

:func:`read_archive` tells what a file is before treating it as a zip archive, so that a PNG,
a text file or ``history.json`` is named as such instead of failing deep inside NumPy, and reads
each member's ``.npy`` header first, so that an object (pickled) array is refused by name.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

_TMP_SUFFIX = ".tmp"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a member's header; an empty archive's end record
_MAGICS = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\x93NUMPY", "a single NumPy array (.npy)"),
)
_SNIFF_BYTES = 4096
_JSON_LIMIT = 16 << 20  # larger text files are only called text, not parsed
_MAX_PROBLEMS = 6  # shown in one error; the rest are counted
# What a damaged archive raises while it is opened and read (never OSError: a disk or
# permission error is reported as itself).
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, NotImplementedError,
            RuntimeError)  # fmt: skip


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint: not an archive, corrupt, of another format
    version, or with metadata or arrays that do not fit the schema. The message names the file,
    what was expected and what came."""


def refuse(path: Path, problems: list[str]) -> None:
    """Raise one :class:`CheckpointError` listing ``problems`` (on one line); no-op when empty."""
    if not problems:
        return
    if len(problems) == 1:
        raise CheckpointError(f"checkpoint {path}: {problems[0]}")
    shown = "; ".join(problems[:_MAX_PROBLEMS])
    more = len(problems) - _MAX_PROBLEMS
    tail = f"; and {more} more" if more > 0 else ""
    raise CheckpointError(f"checkpoint {path} has {len(problems)} problems: {shown}{tail}")


# -- atomic writes ------------------------------------------------------------------------------
def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then move it onto ``path``.

    The temporary file is flushed and fsync'ed before ``os.replace``, and the directory is
    fsync'ed after it. If ``write`` raises, the temporary file is removed and ``path`` is left
    as it was.
    """
    path = Path(path)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644  # mkstemp's is 0o600
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    try:
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that interrupted :func:`atomic_write` calls for ``path`` left."""
    path = Path(path)
    stale = [p for p in path.parent.glob(f".{path.name}.*{_TMP_SUFFIX}") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


# -- reading ------------------------------------------------------------------------------------
def read_archive(path: Path) -> dict[str, np.ndarray]:
    """Every member of the ``.npz`` at ``path`` by name (``"model/0.weight"``, ``"meta"``).

    FileNotFoundError when there is no file; :class:`CheckpointError` when the path is a
    directory or the file is not a zip archive (naming what it is instead), is damaged, has a
    member that is not a ``.npy`` array, or holds an object array (whose loading would
    unpickle).
    """
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a directory, not a checkpoint (a run directory holds best.npz and last.npz)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head.startswith(_ZIP_MAGICS):
        raise CheckpointError(
            f"{path} is not a cnnumpy checkpoint (it is {_describe(path, head)}, "
            "not an .npz archive)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            return dict(_member(path, archive, info) for info in archive.infolist())
    except CheckpointError:
        raise
    except _DAMAGED as e:
        reason = str(e).split(". ")[0]  # never numpy's advice to load with allow_pickle=True
        raise CheckpointError(
            f"checkpoint {path} is unreadable or corrupt (a damaged or truncated archive; "
            f"{type(e).__name__}: {reason})"
        ) from None


def _member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, np.ndarray]:
    name = info.filename
    if not name.endswith(".npy"):
        raise CheckpointError(
            f"{path} is not a cnnumpy checkpoint (a zip archive whose member {name!r} is not "
            "a NumPy array)"
        )
    name = name[: -len(".npy")]
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        header = {(1, 0): np.lib.format.read_array_header_1_0,
                  (2, 0): np.lib.format.read_array_header_2_0}.get(version)  # fmt: skip
        if header is not None and header(f)[2].hasobject:
            raise CheckpointError(
                f"checkpoint {path}: entry {name!r} is an object array (pickled Python "
                "objects), which cnnumpy neither writes nor loads"
            )
        f.seek(0)
        return name, np.lib.format.read_array(f, allow_pickle=False)


def _describe(path: Path, head: bytes) -> str:
    """What a file that is not a zip archive looks like, from its first bytes."""
    if not head:
        return "an empty file"
    for magic, kind in _MAGICS:
        if head.startswith(magic):
            return kind
    if head.startswith(b"\x80") and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle"
    if b"\x00" in head or not _is_utf8(head):
        return "unrecognised binary data"
    return _describe_text(path)


def _is_utf8(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3  # a character cut by the sniffing window is still text
    return True


def _describe_text(path: Path) -> str:
    if path.stat().st_size > _JSON_LIMIT:
        return "a text file"
    try:
        value = json.loads(path.read_bytes())
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return "a text file"
    if isinstance(value, dict) and isinstance(value.get("loss"), list):
        return "a JSON file holding a training history, like history.json"
    return "a JSON file"
