from __future__ import annotations

import importlib
from typing import Any


def resolve(func_path: str) -> Any:
    module_name, _, attr = func_path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class InlineJobQueue:
    """Runs an enqueued callable at once, in-process (the embedded default without Redis)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def enqueue(self, func_path: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((func_path, args, kwargs))
        resolve(func_path)(*args, **kwargs)
