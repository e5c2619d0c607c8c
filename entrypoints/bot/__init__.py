"""The Telegram bot entrypoint: handlers, message catalog, update intake (webhook/polling) and its RQ job."""
