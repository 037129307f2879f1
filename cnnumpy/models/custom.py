"""Models from the user's own code: ``path/to/file.py:function`` or ``package.module:function``.

The function is called as the zoo's builders are (``in_channels``, ``input_size``,
``num_classes``, ``rng`` and any extra keyword arguments) and returns an ``nn.Module``. A
checkpoint records the spec with the file's absolute path and its sha256, so that a file
changed since training can be reported when the model is rebuilt.

Importing the file or module executes it, as ``python file.py`` would: load only code you trust.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from .. import nn


def is_custom(name: str) -> bool:
    """Whether ``name`` names the user's own builder (``SOURCE:function``), not a zoo model."""
    return ":" in name


def _split(spec: str) -> tuple[str, str]:
    source, _, function = spec.rpartition(":")
    if not source or not function.isidentifier():
        raise ValueError(
            f"model {spec!r}: expected path/to/file.py:function or package.module:function"
        )
    return source, function


def _is_file(source: str) -> bool:
    return source.endswith(".py") or "/" in source or "\\" in source


def canonical_spec(spec: str) -> str:
    """``spec`` with a file's path made absolute (what a checkpoint records, so that it can
    be loaded from any directory); a module spec as it is."""
    source, function = _split(spec)
    return f"{Path(source).resolve()}:{function}" if _is_file(source) else spec


def model_label(spec: str) -> str:
    """A short name for run directories and messages: ``file.function`` or the zoo name."""
    if not is_custom(spec):
        return spec
    source, function = _split(spec)
    stem = Path(source).stem if _is_file(source) else source.rpartition(".")[2]
    return f"{stem}.{function}"


def source_file(spec: str) -> Path | None:
    """The file that defines the builder (found without executing it); None when a module has
    no file of its own (a namespace or built-in module)."""
    source, _ = _split(spec)
    if _is_file(source):
        return Path(source).resolve()
    try:
        found = importlib.util.find_spec(source)
    except (ImportError, ValueError) as err:
        raise ValueError(f"model {spec!r}: cannot find module {source!r}: {err}") from None
    if found is None:
        raise ValueError(f"model {spec!r}: no module named {source!r} on the Python path")
    return Path(found.origin) if found.has_location and found.origin else None


def source_sha256(spec: str) -> str | None:
    """The sha256 of the builder's file (hex), None when there is no file to hash."""
    path = source_file(spec)
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as err:
        raise ValueError(f"model {spec!r}: cannot read {path}: {err.strerror or err}") from None


def load_builder(spec: str) -> Callable[..., nn.Module]:
    """The function ``spec`` names, its file or module imported (which executes it).

    Raises ValueError naming the spec when the file or module is missing, fails to import, or
    lacks the function.
    """
    source, function = _split(spec)
    if _is_file(source):
        module = _import_file(spec, Path(source).resolve())
    else:
        try:
            module = importlib.import_module(source)
        except ImportError as err:
            raise ValueError(f"model {spec!r}: cannot import {source!r}: {err}") from None
    builder = getattr(module, function, None)
    if not callable(builder):
        where = getattr(module, "__file__", None) or source
        raise ValueError(f"model {spec!r}: {where} defines no function {function!r}")
    return builder


def _import_file(spec: str, path: Path) -> object:
    if not path.is_file():
        raise ValueError(f"model {spec!r}: no such file {path}")
    # A name of its own per file, so that two files called model.py do not collide.
    name = "cnnumpy_user_model_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ValueError(f"model {spec!r}: {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        loader_spec.loader.exec_module(module)
    except Exception as err:  # the user's code: any failure is theirs to see, named
        del sys.modules[name]
        raise ValueError(f"model {spec!r}: importing {path} failed: "
                         f"{type(err).__name__}: {err}") from err  # fmt: skip
    return module
