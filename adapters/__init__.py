"""Implementations of the ports: memory, SQL (SQLAlchemy 2), Redis/RQ, Telegram, alert channels."""
