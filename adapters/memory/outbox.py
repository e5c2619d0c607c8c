"""``telegram_outbox`` in memory (port ``ports.outbox.TelegramOutbox``): the same claim and conditional rules as the
SQL adapter, under the store's lock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from adapters.memory.store import MemoryTable
from domain.outbox import MAX_ERROR, OutboxBacklog, OutboxMessage, OutboxStatus


class InMemoryTelegramOutbox(MemoryTable):
    def add(self, message: OutboxMessage) -> OutboxMessage | None:
        if message.dedup_key in self._s.telegram_outbox_keys:
            return None
        stored = attrs.evolve(message, id=self._s.next_id("telegram_outbox"), payload=dict(message.payload))
        self._u.set(self._s.telegram_outbox_keys, message.dedup_key, stored.id)
        return self._write(self._s.telegram_outbox, stored.id, stored)

    def _pending_heads(self) -> dict[int, OutboxMessage]:
        heads: dict[int, OutboxMessage] = {}
        for message in sorted(self._s.telegram_outbox.values(), key=lambda m: m.id or 0):
            if message.status is OutboxStatus.PENDING and message.chat_id not in heads:
                heads[message.chat_id] = message
        return heads

    def claim_due(self, now: datetime, lease_until: datetime, limit: int,
                  chat_id: int | None = None) -> list[OutboxMessage]:
        due = [m for m in self._pending_heads().values()
               if (chat_id is None or m.chat_id == chat_id) and m.next_attempt_at <= now
               and (m.leased_until is None or m.leased_until <= now)]
        due.sort(key=lambda m: (m.next_attempt_at, m.id or 0))
        claimed = []
        for message in due[:limit]:
            assert message.id is not None
            claimed.append(self._write(self._s.telegram_outbox, message.id, attrs.evolve(
                message, leased_until=lease_until, attempts=message.attempts + 1, updated_at=now)))
        return claimed

    def _change(self, message_id: int, **changes: Any) -> bool:
        message = self._s.telegram_outbox.get(message_id)
        if message is None or message.status is not OutboxStatus.PENDING:
            return False
        self._write(self._s.telegram_outbox, message_id, attrs.evolve(message, **changes))
        return True

    def mark_sent(self, message_id: int, telegram_message_id: int, now: datetime) -> bool:
        return self._change(message_id, status=OutboxStatus.SENT, telegram_message_id=telegram_message_id,
                            sent_at=now, leased_until=None, updated_at=now)

    def reschedule(self, message_id: int, next_attempt_at: datetime, error: str | None, now: datetime) -> bool:
        return self._change(message_id, next_attempt_at=next_attempt_at, leased_until=None, updated_at=now,
                            last_error=error[:MAX_ERROR] if error is not None else None)

    def mark_failed(self, message_id: int, error: str, now: datetime) -> bool:
        return self._change(message_id, status=OutboxStatus.FAILED, leased_until=None, updated_at=now,
                            last_error=error[:MAX_ERROR])

    def backlog(self) -> int:
        return sum(1 for m in self._s.telegram_outbox.values() if m.status is OutboxStatus.PENDING)

    def next_due_at(self) -> datetime | None:
        return min((max(m.next_attempt_at, m.leased_until or m.next_attempt_at)
                    for m in self._s.telegram_outbox.values() if m.status is OutboxStatus.PENDING), default=None)

    def summary(self, now: datetime) -> OutboxBacklog:
        pending = [m for m in self._s.telegram_outbox.values() if m.status is OutboxStatus.PENDING]
        failed = sum(1 for m in self._s.telegram_outbox.values() if m.status is OutboxStatus.FAILED)
        return OutboxBacklog(pending=len(pending), due=sum(1 for m in pending if m.next_attempt_at <= now),
                             failed=failed, oldest_pending_at=min((m.created_at for m in pending), default=None),
                             next_due_at=self.next_due_at())

    def list(self, status: str | None, limit: int, after_id: int | None = None) -> list[OutboxMessage]:
        rows = sorted(self._s.telegram_outbox.values(), key=lambda m: m.id or 0)
        return [m for m in rows if (status is None or m.status == status)
                and (after_id is None or (m.id or 0) > after_id)][:limit]

    def redeliver(self, message_ids: Sequence[int] | None, now: datetime) -> int:
        wanted = None if message_ids is None else set(message_ids)
        count = 0
        for message in list(self._s.telegram_outbox.values()):
            if message.status is OutboxStatus.FAILED and (wanted is None or message.id in wanted):
                assert message.id is not None
                self._write(self._s.telegram_outbox, message.id, attrs.evolve(
                    message, status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, leased_until=None,
                    updated_at=now))
                count += 1
        return count

    def delete_sent_before(self, cutoff: datetime, limit: int) -> int:
        old = sorted((m for m in self._s.telegram_outbox.values()
                      if m.status is OutboxStatus.SENT and m.sent_at is not None and m.sent_at < cutoff),
                     key=lambda m: m.id or 0)[:limit]
        for message in old:
            self._u.delete(self._s.telegram_outbox, message.id)
            self._u.delete(self._s.telegram_outbox_keys, message.dedup_key)
        return len(old)
