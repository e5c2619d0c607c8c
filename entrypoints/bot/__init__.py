"""The Telegram bot entrypoint: handlers, message catalog, update intake (webhook/polling) and its RQ job, the turn
that writes an update's replies into ``telegram_outbox`` with its change, and the outbox delivery (SPEC 9)."""
