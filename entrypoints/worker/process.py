"""One container per process.

RQ's ``Worker`` forks a child per job; a child must not reuse database connections inherited from its
parent. The container (and with it every engine and connection pool) is therefore built lazily and
cached per process id: a forked child builds its own, a long-lived process (``SimpleWorker``, the
in-process timer, ``jobs run``) reuses one.
"""

from __future__ import annotations

import os
import threading

from entrypoints.container import Container, build_container

_lock = threading.Lock()
_cached: tuple[int, Container] | None = None


def process_container() -> Container:
    global _cached
    with _lock:
        if _cached is None or _cached[0] != os.getpid():
            _cached = (os.getpid(), build_container())
        return _cached[1]


def use_container(container: Container | None) -> None:
    """Make ``container`` this process's container (tests, the in-process timer); ``None`` forgets it."""
    global _cached
    with _lock:
        _cached = None if container is None else (os.getpid(), container)
