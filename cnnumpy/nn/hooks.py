"""Forward hooks: ``Module.register_forward_hook`` and the handle that removes one."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

# ``hook(module, inputs, output)``; a non-None result replaces the output.
ForwardHook = Callable[[Any, tuple[Any, ...], Any], Any]


class RemovableHandle:
    """What ``register_forward_hook`` returns: ``remove()`` unregisters the hook (twice is fine).

    Also a context manager, which removes the hook on exit.
    """

    _next_id = itertools.count()

    def __init__(self, hooks: dict[int, ForwardHook]) -> None:
        self._hooks = hooks
        self.id = next(RemovableHandle._next_id)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()
