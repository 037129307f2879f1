"""The ``onnx`` package, imported only when a model is exported or loaded, so that
``import cnnumpy`` works without it; and the element types both directions understand."""

from __future__ import annotations

from types import ModuleType

import numpy as np

OPSET = 17  # the default opset of exported files, and the lowest one export accepts
FLOAT_TYPES = (np.float32, np.float64)


def require_onnx() -> ModuleType:
    """The ``onnx`` module, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "cnnumpy.onnx needs the onnx package: pip install 'cnnumpy[onnx]' (or onnx>=1.16)"
        ) from err
    return onnx


def tensor_type(dtype: np.dtype) -> int:
    """ONNX's ``TensorProto`` element type for a NumPy dtype (float32, float64, int64)."""
    onnx = require_onnx()
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
