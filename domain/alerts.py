"""Alert events and their routing (SPEC 8)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs


@attrs.frozen
class RoutedAlert:
    """An alert with its routing decided: what happened, how bad, who, and through which channels."""

    event: str
    severity: str
    tier: str
    channels: tuple[str, ...]
    summary: str
    details: dict[str, Any]
    occurred_at: datetime
    dedup_key: str
