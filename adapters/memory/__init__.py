"""In-memory adapters: complete, thread-safe implementations of every port."""

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
