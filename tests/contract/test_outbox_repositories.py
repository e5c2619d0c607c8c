"""The ``TelegramOutbox`` port (``telegram_outbox``, the replies the bot owes) on memory, SQLite and PostgreSQL: a
reply is stored once per ``dedup_key``, a claim takes at most the oldest due message of each chat and leases it,
and every change needs the row still PENDING.

Each test states a rule of ports/outbox.py that the delivery (entrypoints/bot/outbox.py) relies on.
"""

from __future__ import annotations

from datetime import timedelta

from domain.outbox import SEND_INVOICE, SEND_MESSAGE, OutboxMessage, OutboxStatus
from tests.builders import Factory
from tests.conftest import T0

LEASE = T0 + timedelta(seconds=30)


def owed(chat_id: int, key: str, text: str = "hi", at: timedelta = timedelta(0)) -> OutboxMessage:
    return OutboxMessage.owed(chat_id, key, SEND_MESSAGE, {"text": text}, T0 + at)


def add(uow_factory: Factory, *messages: OutboxMessage) -> list[int]:
    ids = []
    with uow_factory() as uow:
        for message in messages:
            stored = uow.telegram_outbox.add(message)
            assert stored is not None and stored.id is not None
            ids.append(stored.id)
        uow.commit()
    return ids


def test_a_reply_is_stored_once_per_dedup_key_with_its_payload(uow_factory: Factory) -> None:
    invoice = {"title": "Premium 30 Tage", "description": "d", "payload": "purchase:7", "label": "l", "amount": 120}
    with uow_factory() as uow:
        stored = uow.telegram_outbox.add(OutboxMessage.owed(5, "update:1:0", SEND_INVOICE, invoice, T0))
        assert uow.telegram_outbox.add(OutboxMessage.owed(5, "update:1:0", SEND_MESSAGE, {"text": "x"}, T0)) is None
        uow.commit()
    assert stored is not None
    with uow_factory() as uow:
        [row] = uow.telegram_outbox.list(None, 10)
    assert (row.id, row.chat_id, row.method, dict(row.payload), row.status, row.attempts) == (
        stored.id, 5, SEND_INVOICE, invoice, OutboxStatus.PENDING, 0)
    assert (row.next_attempt_at, row.created_at, row.leased_until, row.sent_at) == (T0, T0, None, None)


def test_a_claim_takes_the_oldest_due_message_of_each_chat_and_leases_it(uow_factory: Factory) -> None:
    first_a, second_a, first_b, later_c = add(uow_factory, owed(1, "a1"), owed(1, "a2"), owed(2, "b1"),
                                              owed(3, "c1", at=timedelta(minutes=5)))
    with uow_factory() as uow:
        claimed = uow.telegram_outbox.claim_due(T0, LEASE, 10)
        uow.commit()
    assert [m.id for m in claimed] == [first_a, first_b]  # one per chat; chat 3 is not due yet
    assert all(m.leased_until == LEASE and m.attempts == 1 for m in claimed)
    with uow_factory() as uow:
        # Leased heads hold their chats: the second message of chat 1 waits behind its first.
        assert uow.telegram_outbox.claim_due(T0, LEASE, 10) == []
        assert uow.telegram_outbox.mark_sent(first_a, 9001, T0) is True
        uow.commit()
    with uow_factory() as uow:
        assert [m.id for m in uow.telegram_outbox.claim_due(T0, LEASE, 10)] == [second_a]
        # five minutes on, chat 3 is due, and the leases taken above have run out
        later = uow.telegram_outbox.claim_due(T0 + timedelta(minutes=5), T0 + timedelta(minutes=6), 10)
    assert {m.id for m in later} == {second_a, first_b, later_c}


def test_a_lease_that_ran_out_is_claimed_again(uow_factory: Factory) -> None:
    [message_id] = add(uow_factory, owed(1, "a1"))
    with uow_factory() as uow:
        assert len(uow.telegram_outbox.claim_due(T0, LEASE, 10)) == 1
        uow.commit()
    with uow_factory() as uow:
        assert uow.telegram_outbox.claim_due(LEASE - timedelta(seconds=1), LEASE, 10) == []
        [again] = uow.telegram_outbox.claim_due(LEASE, LEASE + timedelta(seconds=30), 10)
    assert (again.id, again.attempts) == (message_id, 2)


def test_a_claim_of_one_chat_leaves_the_others(uow_factory: Factory) -> None:
    _, b = add(uow_factory, owed(1, "a1"), owed(2, "b1"))
    with uow_factory() as uow:
        assert [m.id for m in uow.telegram_outbox.claim_due(T0, LEASE, 10, chat_id=2)] == [b]
        assert [m.chat_id for m in uow.telegram_outbox.claim_due(T0, LEASE, 1)] == [1]


def test_reschedule_releases_the_lease_and_delays_the_chat(uow_factory: Factory) -> None:
    first, _second = add(uow_factory, owed(1, "a1"), owed(1, "a2"))
    later = T0 + timedelta(seconds=3)
    with uow_factory() as uow:
        uow.telegram_outbox.claim_due(T0, LEASE, 10)
        assert uow.telegram_outbox.reschedule(first, later, "429: Too Many Requests", T0) is True
        uow.commit()
    with uow_factory() as uow:
        assert uow.telegram_outbox.claim_due(T0 + timedelta(seconds=2), LEASE, 10) == []  # order kept per chat
        [message] = uow.telegram_outbox.claim_due(later, LEASE, 10)
    assert (message.id, message.last_error, message.attempts) == (first, "429: Too Many Requests", 2)


def test_sent_and_failed_are_final(uow_factory: Factory) -> None:
    sent, failed = add(uow_factory, owed(1, "a1"), owed(2, "b1"))
    with uow_factory() as uow:
        assert uow.telegram_outbox.mark_sent(sent, 77, T0) is True
        assert uow.telegram_outbox.mark_failed(failed, "400: Bad Request: chat not found", T0) is True
        uow.commit()
    with uow_factory() as uow:
        assert uow.telegram_outbox.mark_sent(sent, 78, T0) is False
        assert uow.telegram_outbox.mark_sent(failed, 79, T0) is False
        assert uow.telegram_outbox.reschedule(sent, T0, None, T0) is False
        assert uow.telegram_outbox.mark_failed(sent, "x", T0) is False
        by_id = {m.id: m for m in uow.telegram_outbox.list(None, 10)}
    assert (by_id[sent].status, by_id[sent].telegram_message_id, by_id[sent].sent_at) == (OutboxStatus.SENT, 77, T0)
    assert (by_id[failed].status, by_id[failed].last_error) == (OutboxStatus.FAILED, "400: Bad Request: chat not found")


def test_the_backlog_counts_pending_and_failed_ones_can_be_redelivered(uow_factory: Factory) -> None:
    a, b, c = add(uow_factory, owed(1, "a1", at=timedelta(seconds=-60)), owed(2, "b1"),
                  owed(3, "c1", at=timedelta(minutes=5)))
    with uow_factory() as uow:
        uow.telegram_outbox.mark_failed(b, "403: Forbidden", T0)
        uow.commit()
    with uow_factory() as uow:
        assert uow.telegram_outbox.backlog() == 2
        summary = uow.telegram_outbox.summary(T0)
        assert (summary.pending, summary.due, summary.failed) == (2, 1, 1)
        assert summary.oldest_pending_at == T0 - timedelta(seconds=60)
        assert summary.next_due_at == T0 - timedelta(seconds=60)
        assert summary.as_dict(T0)["oldest_pending_age_seconds"] == 60.0
        assert [m.id for m in uow.telegram_outbox.list("FAILED", 10)] == [b]
        assert uow.telegram_outbox.redeliver(None, T0 + timedelta(minutes=1)) == 1
        uow.commit()
    with uow_factory() as uow:
        assert uow.telegram_outbox.backlog() == 3
        claimed = {m.id: m for m in uow.telegram_outbox.claim_due(T0 + timedelta(minutes=1), LEASE, 10)}
    assert set(claimed) == {a, b} and claimed[b].attempts == 1
    assert c not in claimed


def test_sent_messages_are_forgotten_after_the_cutoff_in_bounded_batches(uow_factory: Factory) -> None:
    ids = add(uow_factory, *(owed(chat, f"k{chat}") for chat in range(1, 5)))
    with uow_factory() as uow:
        for i, message_id in enumerate(ids[:3]):
            uow.telegram_outbox.mark_sent(message_id, 100 + i, T0 + timedelta(days=i))
        uow.commit()
    with uow_factory() as uow:
        assert uow.telegram_outbox.delete_sent_before(T0 + timedelta(days=2), 1) == 1
        assert uow.telegram_outbox.delete_sent_before(T0 + timedelta(days=2), 10) == 1
        uow.commit()
    with uow_factory() as uow:
        assert [m.id for m in uow.telegram_outbox.list(None, 10)] == ids[2:]
        # a forgotten key may be written again
        assert uow.telegram_outbox.add(owed(1, "k1")) is not None


def test_the_next_due_time_counts_a_running_lease(uow_factory: Factory) -> None:
    add(uow_factory, owed(1, "a1"), owed(2, "b1", at=timedelta(minutes=2)))
    with uow_factory() as uow:
        uow.telegram_outbox.claim_due(T0, LEASE, 1)  # chat 1's message, leased until T0 + 30 s
        uow.commit()
    with uow_factory() as uow:
        assert uow.telegram_outbox.summary(T0).next_due_at == LEASE
        assert uow.telegram_outbox.next_due_at() == LEASE
    with uow_factory() as uow:
        assert uow.telegram_outbox.summary(T0).due == 1  # due, though leased
