"""A model's weights as a safetensors file: ``save_weights(model, path)`` and
``load_weights(model, path)``.

The file holds the model's ``state_dict`` (parameters and buffers, keyed ``c1.weight``,
``bn1.running_mean``, ...) in the safetensors format: a JSON header and the raw arrays, read
without executing anything. The same file is read by ``safetensors.torch.load_file``, so
weights move between a cnnumpy model and a PyTorch twin whose ``state_dict`` keys match (see
the README's "Models in and out").

Loading is strict: missing or unexpected keys, and arrays of another shape or dtype, are
reported together in one ValueError before anything changes. Nothing is cast: a float64 file
does not load into a float32 model (cast one of them first, ``model.to(np.float64)``).
``safetensors`` is imported only when these functions run (``pip install
'cnnumpy[weights]'``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType

import numpy as np

from .checkpoint import atomic_write
from .nn.module import Module


def _safetensors() -> ModuleType:
    try:
        import safetensors.numpy
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "weights files need the safetensors package: pip install 'cnnumpy[weights]'"
        ) from err
    return safetensors


def save_weights(
    model: Module, path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``model.state_dict()`` to ``path`` as safetensors, atomically (a crash leaves the
    old file or the new one). ``metadata`` is stored as the header's string-to-string map."""
    st = _safetensors()
    # state_dict's copies are C-contiguous already; ascontiguousarray would make 0-d arrays 1-d.
    state = model.state_dict()
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    data = st.numpy.save(state, metadata=meta or None)
    atomic_write(path, lambda f: f.write(data))


def read_weights(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays of a safetensors file and its metadata; a file that is not one is a
    ValueError naming it (a missing file is FileNotFoundError)."""
    st = _safetensors()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no weights file {os.fspath(path)!r}")
    try:
        arrays = st.numpy.load_file(path)
        with st.safe_open(os.fspath(path), framework="numpy") as handle:
            metadata = dict(handle.metadata() or {})
    except st.SafetensorError as err:
        raise ValueError(f"{path} is not a readable safetensors file: {err}") from None
    return arrays, metadata


def load_weights(model: Module, path: str | os.PathLike) -> dict[str, str]:
    """Copy the weights in ``path`` into ``model``; returns the file's metadata.

    Raises ValueError, changing nothing, listing every missing and unexpected key and every
    array whose shape or dtype differs from the model's.
    """
    arrays, metadata = read_weights(path)
    problems = weight_problems(model.state_dict(), arrays)
    if problems:
        raise ValueError(
            f"weights in {path} do not fit {type(model).__name__}: " + " | ".join(problems)
        )
    model.load_state_dict(arrays)
    return metadata


def weight_problems(expected: Mapping[str, np.ndarray], found: Mapping[str, np.ndarray]):
    """What keeps ``found`` from loading where ``expected`` is: a list of messages."""
    problems = []
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(sorted(unexpected)))
    wrong = [
        f"{k} (file {found[k].shape} {found[k].dtype}, model {v.shape} {v.dtype})"
        for k, v in expected.items()
        if k in found and (found[k].shape != v.shape or found[k].dtype != v.dtype)
    ]
    if wrong:
        problems.append("shape or dtype mismatches: " + "; ".join(wrong))
    return problems
