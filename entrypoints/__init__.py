"""Composition root and the four entrypoints: HTTP API, Telegram bot, RQ worker/scheduler, CLI."""
