"""When one rank fails, end every rank: never leave the others waiting in a collective.

A rank that raises stops calling the collectives the others wait in, so without help the job
hangs until someone kills it. As ChainerMN's ``global_except_hook`` does, the failing rank
prints its message (naming its rank) and calls ``MPI.COMM_WORLD.Abort``, which ends every
process of the job; ``mpirun`` then exits with the error code.

:func:`install_except_hook` does this for any exception nobody caught (a bug: the traceback
is printed first); :func:`fail` for an error a program reports itself.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any


def rank_label(comm: Any) -> str:
    """``"rank 1 of 4"``; empty on one process."""
    return "" if comm.size == 1 else f"rank {comm.rank} of {comm.size}"


def fail(comm: Any, message: str, code: int = 1) -> int:
    """Print ``message`` to stderr (prefixed with the rank on several processes) and, on
    several processes, abort the job with ``code``; on one process return ``code``."""
    label = rank_label(comm)
    print(f"[{label}] {message}" if label else message, file=sys.stderr, flush=True)
    if comm.size > 1:
        sys.stdout.flush()
        comm.abort(code)
    return code


def install_except_hook(comm: Any) -> None:
    """On several processes, make an uncaught exception print its traceback (naming the rank)
    and abort the whole job instead of leaving the other ranks hanging."""
    if comm.size == 1:
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        try:
            text = "".join(traceback.format_exception(kind, error, tb))
            sys.stderr.write(f"[{rank_label(comm)}] uncaught exception, ending every rank:\n{text}")
            sys.stderr.flush()
        finally:
            try:
                comm.abort(1)
            except BaseException:  # noqa: BLE001 - fall back on the interpreter's own report
                previous(kind, error, tb)

    sys.excepthook = hook
