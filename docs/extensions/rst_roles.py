"""A griffe extension for the API reference: Sphinx roles in docstrings become code spans.

Some docstrings name other objects the Sphinx way, ``:class:`Module``` or
``:func:`check_model_gradients```. mkdocstrings renders the docstrings as Markdown, where the
role would show up as literal text before the code span; this keeps the code span alone.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:attr|class|data|exc|func|meth|mod|obj):(`[^`]+`)")


class RstRoles(griffe.Extension):
    """Rewrite ``:role:`target``` as ```target``` in every docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(r"\1", obj.docstring.value)
