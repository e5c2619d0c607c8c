from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Where time comes from. The domain never calls ``datetime.now()`` itself."""

    def now(self) -> datetime:
        """The current moment, timezone-aware UTC."""
        ...
