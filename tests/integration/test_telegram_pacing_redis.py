"""Pacing shared through Redis (SPEC 9): the bot's processes share one global budget and one turn per chat."""

from __future__ import annotations

import redis

from adapters.telegram.pacing import MessagePacer, message_pacer
from tests.conftest import redis_database


def _own_db(redis_url: str) -> str:
    url = redis_database(redis_url, 14)  # a database of its own on the shared server
    redis.Redis.from_url(url).flushdb()
    return url


def test_two_processes_share_one_budget_and_one_turn_per_chat(redis_url: str) -> None:
    url = _own_db(redis_url)
    first, second = message_pacer(3, url), message_pacer(3, url)
    assert first.shared and second.shared
    assert [first.take(0), first.take(0), second.take(0), second.take(0), first.take(0)] == [
        True, True, True, False, False]
    assert first.chat_wait(42) == 0.0
    assert 0 < second.chat_wait(42) <= 1.0  # the other process took this chat's turn
    assert second.chat_wait(43) == 0.0


def test_a_wait_for_the_budget_ends_when_the_window_moves_on(redis_url: str) -> None:
    pacer: MessagePacer = message_pacer(2, _own_db(redis_url))
    assert pacer.take(0) and pacer.take(0)
    assert pacer.take(2.0)  # waits for the oldest of the two to leave the one-second window
