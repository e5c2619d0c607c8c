"""The ``telegram_outbox`` table: replies the bot owes, written with the change that caused them (SPEC 9)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from domain.outbox import OutboxBacklog, OutboxMessage


class TelegramOutbox(Protocol):
    """Owed messages, delivered in ``id`` order per chat. Every change is conditional on the row still being
    PENDING (a message marked SENT or FAILED stays so)."""

    def add(self, message: OutboxMessage) -> OutboxMessage | None:
        """Insert; None when a message with the same ``dedup_key`` exists (the same reply written again)."""
        ...

    def claim_due(self, now: datetime, lease_until: datetime, limit: int,
                  chat_id: int | None = None) -> list[OutboxMessage]:
        """Lease up to ``limit`` messages, at most one per chat: each the chat's oldest PENDING message, due
        (``next_attempt_at <= now``) and not leased by another claim still running (``leased_until > now``).
        A chat whose oldest PENDING message is not due or is leased gives none: later messages wait behind it.
        Each claimed row gets ``leased_until`` and ``attempts + 1``. Oldest due first; rows another transaction
        is claiming are skipped, not waited for. With ``chat_id``, only that chat."""
        ...

    def mark_sent(self, message_id: int, telegram_message_id: int, now: datetime) -> bool:
        """PENDING -> SENT with Telegram's ``message_id``; False when the row is no longer PENDING."""
        ...

    def reschedule(self, message_id: int, next_attempt_at: datetime, error: str | None, now: datetime) -> bool:
        """Release the lease and make the message due at ``next_attempt_at`` (still PENDING)."""
        ...

    def mark_failed(self, message_id: int, error: str, now: datetime) -> bool:
        """PENDING -> FAILED (Telegram refused it, or it is too old to send)."""
        ...

    def backlog(self) -> int:
        """How many messages are PENDING (the ``starpromo_telegram_outbox_pending`` gauge)."""
        ...

    def next_due_at(self) -> datetime | None:
        """When the next PENDING message may be claimed (its ``next_attempt_at``, or its lease's end if later);
        None when none is PENDING. Reads the PENDING rows only (a delivery thread asks it when idle)."""
        ...

    def summary(self, now: datetime) -> OutboxBacklog:
        """PENDING, due now, FAILED, and when the oldest PENDING message was written."""
        ...

    def list(self, status: str | None, limit: int, after_id: int | None = None) -> list[OutboxMessage]:
        """Messages by id (optionally of one status), starting after ``after_id``."""
        ...

    def redeliver(self, message_ids: Sequence[int] | None, now: datetime) -> int:
        """FAILED -> PENDING, due now, attempts reset (every FAILED one when ``message_ids`` is None); how many."""
        ...

    def delete_sent_before(self, cutoff: datetime, limit: int) -> int:
        """Forget up to ``limit`` messages SENT before ``cutoff`` (housekeeping); how many."""
        ...
