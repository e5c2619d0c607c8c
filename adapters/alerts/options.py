"""Delivery options of the HTTP alert channels, in a module settings can read without loading ``requests``."""

from __future__ import annotations

import attrs


@attrs.frozen
class DeliveryOptions:
    """Per-channel timeout (seconds, for connect and for read) and retry budget."""

    timeout_seconds: float = 5.0
    max_retries: int = 3
    backoff_seconds: float = 0.5
