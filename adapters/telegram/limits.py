"""Telegram's defaults that settings reads without loading telebot, requests or redis (one home for each).

:mod:`adapters.telegram.client` and :mod:`adapters.telegram.pacing` use them from here.
"""

from __future__ import annotations

DEFAULT_API_URL = "https://api.telegram.org"
DEFAULT_MESSAGES_PER_SECOND = 30  # Telegram's documented broadcast limit for a bot
CHAT_INTERVAL_SECONDS = 1.0
