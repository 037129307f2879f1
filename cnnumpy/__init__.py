"""cnnumpy: convolutional neural networks in NumPy, every backward pass derived by hand.

``import cnnumpy as cn`` gives the layers of the library, bottom to top:

- ``cn.functional``: the kernels, ``NAME_forward(x, ...) -> (out, cache)`` and
  ``NAME_backward(dout, cache) -> (dx, dparams...)``, with loop references beside the fast ones;
- ``cn.nn``: stateful layers and containers with PyTorch's names (``Conv2d``, ``Sequential``);
- ``cn.init``, ``cn.optim``, ``cn.models``: initialisers, optimisers and schedules, the zoo;
- ``cn.data``: the data sets, the mini-batch loader and augmentation;
- ``cn.train``: the ``Trainer`` and its callbacks; ``cn.inspect``: summaries, gradient checks,
  analysis and figures of a model;
- ``cn.onnx.export`` / ``cn.onnx.load``: models to and from ONNX (the ``onnx`` extra);
  ``cn.save_weights`` / ``cn.load_weights``: a state dict as safetensors (the ``weights`` extra);
- ``cn.distributed``: communicators for data-parallel training on K processes (MPI) or
  threads;
- ``cn.set_num_threads`` / ``cn.get_num_threads``: the threads of cnnumpy's own kernels;
- ``cn.load(checkpoint)``: a trained model ready to classify new images (``cn.predict``).
"""

from importlib.metadata import PackageNotFoundError, version

from . import (
    backend,
    data,
    distributed,
    functional,
    init,
    inspect,
    models,
    nn,
    onnx,
    optim,
    predict,
    train,
)
from .backend import get_num_threads, set_num_threads
from .predict import load
from .weights import load_weights, save_weights

try:
    __version__ = version("cnnumpy")  # one place: pyproject.toml
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "backend",
    "data",
    "distributed",
    "functional",
    "get_num_threads",
    "init",
    "inspect",
    "load",
    "load_weights",
    "models",
    "nn",
    "onnx",
    "optim",
    "predict",
    "save_weights",
    "set_num_threads",
    "train",
]
