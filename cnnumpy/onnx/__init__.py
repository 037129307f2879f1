"""Models in and out as ONNX: ``export(model, example_input, path)`` and ``load(path)``.

``export`` writes any model built from the library's layers (the whole zoo, and the
``nn.Graph`` that ``load`` builds) as standard ONNX operators, opset 17 by default, with a
dynamic batch axis; ``load`` turns an ONNX file into a trainable :class:`~cnnumpy.nn.Graph`
whose nodes are library layers where one exists. The operator tables are in
:mod:`.ops_export`, :mod:`.ops_export_composite` and :mod:`.ops_export_graph` (out), and
:mod:`.ops_import` and :mod:`.ops_import_tensor` (in).

The ``onnx`` package is imported only when a function here runs (``pip install
'cnnumpy[onnx]'``), so ``import cnnumpy`` works without it.
"""

from .context import UnsupportedOperatorError
from .export import ExportError, export
from .load import load

__all__ = ["ExportError", "UnsupportedOperatorError", "export", "load"]
