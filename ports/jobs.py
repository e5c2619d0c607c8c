from __future__ import annotations

from typing import Any, Protocol


class JobQueue(Protocol):
    """Runs work in the background: a queue when Redis is configured, in-process otherwise."""

    def enqueue(self, func_path: str, *args: Any, **kwargs: Any) -> None:
        """Enqueue a callable by its import path (``package.module:function``)."""
        ...
