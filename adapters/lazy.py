"""Package ``__init__`` modules that import their public names on first use (PEP 562).

A package whose ``__init__`` imported every name at once made a light module of it (a constant, the clock) cost
the whole package (telebot, requests, the in-memory repositories). Such a package names its exports under
``if TYPE_CHECKING:`` (so mypy keeps their types and a misspelt name stays an error) and, for run time::

    if not TYPE_CHECKING:
        __getattr__, __dir__ = lazy_exports(__name__, {"package.module": ("Name", ...), ...})
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, modules: Mapping[str, Iterable[str]],
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name of ``modules`` (module -> the names it exports)
    is imported from its module when first read, then kept in the package's namespace (read once)."""
    namespace = sys.modules[package].__dict__
    homes = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *homes})

    return __getattr__, __dir__
