"""In-memory adapters: complete, thread-safe implementations of every port.

The names below are imported on first use (PEP 562), so that a process which only needs the clock
(``adapters.memory.clock``, e.g. every SQL command) does not load the in-memory repositories.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.lazy import lazy_exports

if TYPE_CHECKING:
    from adapters.memory.clock import ManualClock, SystemClock
    from adapters.memory.jobs import InlineJobQueue
    from adapters.memory.notifier import InMemoryNotifier
    from adapters.memory.payments import InMemoryPaymentGateway
    from adapters.memory.repositories import InMemoryUnitOfWork, InMemoryUnitOfWorkFactory, MemoryStore

__all__ = [
    "InMemoryNotifier",
    "InMemoryPaymentGateway",
    "InMemoryUnitOfWork",
    "InMemoryUnitOfWorkFactory",
    "InlineJobQueue",
    "ManualClock",
    "MemoryStore",
    "SystemClock",
]

_HOMES = {
    "adapters.memory.notifier": ("InMemoryNotifier",),
    "adapters.memory.payments": ("InMemoryPaymentGateway",),
    "adapters.memory.repositories": ("InMemoryUnitOfWork", "InMemoryUnitOfWorkFactory", "MemoryStore"),
    "adapters.memory.jobs": ("InlineJobQueue",),
    "adapters.memory.clock": ("ManualClock", "SystemClock"),
}

if not TYPE_CHECKING:  # mypy sees the imports above; a misspelt name stays an error for it
    __getattr__, __dir__ = lazy_exports(__name__, _HOMES)
