"""Telegram's rules for the webhook set-up (Bot API ``setWebhook``), checked before Telegram is asked (issue 17).

``secret_token``: 1..256 characters, only ``A-Z``, ``a-z``, ``0-9``, ``_`` and ``-`` (Telegram refuses anything
else, so a ``+`` in ``TELEGRAM_WEBHOOK_SECRET`` would "work" locally and fail at ``setWebhook``). ``url``: Telegram
delivers updates over HTTPS only.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

WEBHOOK_SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")
MAX_WEBHOOK_SECRET = 256


def check_webhook_secret(value: str) -> str:
    """``value`` when Telegram accepts it as ``secret_token``; else ValueError saying the rule (never the value)."""
    if not WEBHOOK_SECRET_PATTERN.fullmatch(value):
        raise ValueError(f"must be 1..{MAX_WEBHOOK_SECRET} characters of A-Z a-z 0-9 _ - (Telegram's secret_token "
                         f"rule); got {len(value)} characters"
                         + ("" if len(value) > MAX_WEBHOOK_SECRET else " with others than those"))
    return value


def check_webhook_url(url: str) -> str:
    """``url`` when it is an ``https://`` URL with a host; else ValueError saying why."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise ValueError("must be an https:// URL (Telegram delivers webhooks over HTTPS only)")
    if not parts.hostname:
        raise ValueError("must name a host: https://HOST/webhook/telegram")
    return url
