"""Pacing below Telegram's flood limits (SPEC 9), in one process: a chat's turn comes once per interval, the global
budget gives ``per_second`` messages a second, and a Redis that does not answer leaves pacing in-process (logged)."""

from __future__ import annotations

import logging

import pytest

from adapters.telegram.pacing import MessagePacer, message_pacer
from entrypoints.container import build_container
from entrypoints.settings import Settings
from tests.fakes.bot_api import free_port_url


def test_a_chats_turn_comes_once_per_interval_and_other_chats_are_not_held() -> None:
    pacer = MessagePacer(30, chat_interval=1.0)
    assert pacer.chat_wait(1) == 0.0
    wait = pacer.chat_wait(1)
    assert 0.0 < wait <= 1.0
    assert pacer.chat_wait(2) == 0.0


def test_the_global_budget_gives_per_second_messages_without_waiting_then_none() -> None:
    pacer = MessagePacer(3, chat_interval=0)
    assert [pacer.take(0) for _ in range(4)] == [True, True, True, False]


def test_a_redis_that_does_not_answer_leaves_pacing_in_process(caplog: pytest.LogCaptureFixture) -> None:
    pacer = message_pacer(2, free_port_url().replace("http://", "redis://") + "/0")
    with caplog.at_level(logging.WARNING, logger="starpromo.telegram.pacing"):
        assert [pacer.take(0) for _ in range(3)] == [True, True, False]
        assert pacer.chat_wait(5) == 0.0 and pacer.chat_wait(5) > 0
    assert not pacer.shared
    assert [r.__dict__.get("event") for r in caplog.records] == ["telegram_pacing_degraded"]  # once, not per call


def test_a_limit_below_one_message_a_second_is_refused() -> None:
    with pytest.raises(ValueError, match="per_second"):
        MessagePacer(0)


def test_a_processs_pacer_takes_its_chat_interval_from_the_settings() -> None:
    assert build_container(Settings(database_url="memory://")).telegram_pacer().chat_interval == 1.0
    pacer = build_container(Settings(database_url="memory://", telegram_chat_interval_seconds=3.0)).telegram_pacer()
    assert pacer.chat_interval == 3.0
    assert pacer.chat_wait(1) == 0.0 and 1.0 < pacer.chat_wait(1) <= 3.0  # longer than the default turn
