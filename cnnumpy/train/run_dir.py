"""Run directories: where a run of ``cnnumpy train`` writes, and the rules that keep every run's
files safe.

* A run never writes into a directory that holds another run (any of :data:`RUN_FILES`)
  unless told to continue it (``--resume``) or to replace it (``--overwrite``).
* Without ``--out`` every new run gets a fresh directory, as Lightning's versioned folders:
  ``runs/MODEL-DATA``, then ``runs/MODEL-DATA-2``, ``-3``, ... (the first that does not exist).
* Before training the directory is created and a probe file written and removed, so a read-only
  or missing file system fails in seconds, not after the first epoch; and its free space is
  compared with what the checkpoints will need.
* Temporary files that an interrupted atomic write left behind are removed when a run starts.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from ..checkpoint import load_checkpoint, remove_stale_temporaries
from .errors import ResumeError, RunDirectoryError

RUN_FILES = (
    "last.npz", "best.npz", "history.json", "metrics.jsonl", "result.json", "learning_curves.png",
)  # fmt: skip
"""What a run writes; a directory holding any of them holds a run."""
PROBE_PREFIX = ".cnnumpy-probe-"


def run_files(directory: Path) -> list[str]:
    """The names of :data:`RUN_FILES` present in ``directory`` (none when it does not exist)."""
    return [name for name in RUN_FILES if (directory / name).exists()]


def fresh_run_dir(root: Path, name: str) -> Path:
    """``root/name``, or ``root/name-2``, ``-3``, ...: the first that does not exist yet, which
    is created now (atomically, so two runs started together get two directories)."""
    n = 1
    while True:
        candidate = root / (name if n == 1 else f"{name}-{n}")
        try:
            root.mkdir(parents=True, exist_ok=True)
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
        except OSError as err:
            raise RunDirectoryError(
                f"cannot create the run directory {candidate}: {err.strerror or err}"
            ) from None


def latest_run_dir(root: Path, name: str) -> Path | None:
    """The highest-numbered of ``root/name``, ``root/name-2``, ... that holds a run, or None."""
    pattern = re.compile(rf"{re.escape(name)}(?:-(\d+))?")
    found = []
    for path in root.glob(f"{name}*") if root.is_dir() else ():
        match = pattern.fullmatch(path.name)
        if match and run_files(path):
            found.append((int(match.group(1) or 1), path))
    return max(found)[1] if found else None


def refuse_other_run(directory: Path) -> None:
    """RunDirectoryError when ``directory`` holds a run: a new run may not replace it unasked."""
    present = run_files(directory)
    if present:
        raise RunDirectoryError(
            f"{directory} holds a run already ({', '.join(present)}); nothing was changed. "
            "Continue it with --resume, replace it with --overwrite, or choose another --out"
        )


def prepare(directory: Path) -> bool:
    """Create ``directory`` (and its parents) if needed, write and remove a probe file in it,
    and remove the temporary files of interrupted writes; return whether it was created.
    RunDirectoryError naming the directory and the system's reason when it cannot be written."""
    existed = directory.is_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirectoryError(
            f"cannot create the run directory {directory}: {err.strerror or err}"
        ) from None
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=PROBE_PREFIX) as probe:
            probe.write(b"probe")
            probe.flush()
    except OSError as err:
        if not existed:
            remove_if_empty(directory)
        raise RunDirectoryError(
            f"cannot write into the run directory {directory}: creating a file there failed "
            f"({err.strerror or err})"
        ) from None
    for name in RUN_FILES:
        remove_stale_temporaries(directory / name)
    for probe in directory.glob(f"{PROBE_PREFIX}*"):  # left by a run killed while probing
        probe.unlink(missing_ok=True)
    return not existed


def clear(directory: Path) -> list[str]:
    """Remove the run files in ``directory`` (``--overwrite``); return their names."""
    present = run_files(directory)
    for name in present:
        (directory / name).unlink()
    return present


def check_free_space(directory: Path, needed: int) -> None:
    """RunDirectoryError when ``directory``'s file system has less than ``needed`` bytes free."""
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise RunDirectoryError(
            f"the run directory {directory} has {_mb(free)} free, and its checkpoints need "
            f"about {_mb(needed)}: free some space or choose another --out"
        )


def resume_checkpoint(directory: Path) -> Path:
    """``directory/last.npz``, or ResumeError saying why there is none and what to do."""
    last, best = directory / "last.npz", directory / "best.npz"
    if last.is_file():
        return last
    if not directory.is_dir():
        raise ResumeError(f"--resume: {directory} does not exist; there is no run to resume")
    if best.is_file():
        try:
            epoch = f" (epoch {load_checkpoint(best)['epoch']})"
        except (OSError, ValueError):
            epoch = ""
        raise ResumeError(
            f"--resume: {directory} has no last.npz but has best.npz{epoch}: the run was "
            "stopped before last.npz was first written, or it was removed. best.npz holds the "
            f"whole training state of its epoch: to continue from there, copy it (cp {best} "
            f"{last}) and resume again; to start the run again, use --overwrite instead"
        )
    raise ResumeError(
        f"--resume: no checkpoint in {directory} (no last.npz): the run stopped before its "
        "first epoch ended. Start it again with --overwrite instead of --resume"
    )


def remove_if_empty(directory: Path) -> None:
    """Remove ``directory`` if it is empty (a run that never started leaves nothing)."""
    try:
        directory.rmdir()
    except OSError:
        pass


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
