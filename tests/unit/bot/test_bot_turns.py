"""An update's handling is one transaction with its reply (SPEC 9, issue 17): a failure before the commit leaves
neither the redemption nor the reply nor the update's mark, so the update is handled again -- not dropped with its
reply lost; a second delivery of a handled update is dropped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dependency_injector import providers

from adapters.memory import ManualClock
from adapters.memory.outbox import InMemoryTelegramOutbox
from adapters.telegram.pacing import MessagePacer
from domain.campaigns import CampaignSpec
from domain.errors import StorageUnavailable
from domain.model import PromoType
from entrypoints.bot.intake import Intake, UpdateIntake
from entrypoints.container import Container, build_container
from entrypoints.http import create_app
from entrypoints.settings import Settings
from tests.conftest import T0
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.telegram_updates import Updates

TOKEN = "4242:turn-token"
USER = 5550002


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def container(api: FakeBotApi) -> Container:
    settings = Settings(database_url="memory://", promo_secret_pepper="unit-pepper", telegram_bot_token=TOKEN,
                        telegram_webhook_secret="s", telegram_api_url=api.url, internal_api_token="t" * 32)
    c = build_container(settings)
    c.clock.override(providers.Object(ManualClock(T0)))
    c.telegram_pacer.override(providers.Object(MessagePacer(30, chat_interval=0)))
    c.campaign_service().create(CampaignSpec(name="TURN", promo_type=PromoType.PERCENT_DISCOUNT,
                                             discount_percent=10), actor="alice", code="TURN10")
    return c


def counts(container: Container) -> dict[str, int]:
    store: Any = container.memory_store()
    return {"redemptions": len(store.redemptions), "attempts": len(store.attempts),
            "updates": len(store.processed_updates), "replies": len(store.telegram_outbox)}


def drop_the_database_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next reply written to the outbox meets a database that went away (mid-transaction)."""
    original = InMemoryTelegramOutbox.add
    calls = {"n": 0}

    def add(self: InMemoryTelegramOutbox, message: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StorageUnavailable("database connection lost")
        return original(self, message)

    monkeypatch.setattr(InMemoryTelegramOutbox, "add", add)


def test_an_update_whose_handling_failed_before_its_commit_is_handled_again_with_one_redemption_and_one_reply(
        container: Container, api: FakeBotApi, monkeypatch: pytest.MonkeyPatch) -> None:
    intake: UpdateIntake = container.telegram_intake()
    update = Updates().promo(USER, "TURN10")
    drop_the_database_once(monkeypatch)
    with pytest.raises(StorageUnavailable):
        intake.take(update)
    # Nothing of it was kept: no redemption, no attempt, no reply, and the update is not marked taken.
    assert counts(container) == {"redemptions": 0, "attempts": 0, "updates": 0, "replies": 0}
    assert api.calls_to("sendMessage") == []
    assert intake.take(update) is Intake.PROCESSED  # Telegram delivers it again
    assert counts(container) == {"redemptions": 1, "attempts": 1, "updates": 1, "replies": 1}
    assert [t[:16] for t in api.delivered_texts(USER)] == ["Code angenommen:"]
    assert intake.take(update) is Intake.DUPLICATE
    assert len(api.delivered_texts(USER)) == 1


def test_the_webhook_answers_503_so_that_telegram_delivers_the_update_again(
        container: Container, api: FakeBotApi, monkeypatch: pytest.MonkeyPatch) -> None:
    client = create_app(container).test_client()
    update = Updates().promo(USER, "TURN10")
    drop_the_database_once(monkeypatch)
    headers = {"X-Telegram-Bot-Api-Secret-Token": "s"}
    assert client.post("/webhook/telegram", json=update, headers=headers).status_code == 503
    assert client.post("/webhook/telegram", json=update, headers=headers).json == {"ok": True, "result": "processed"}
    assert counts(container)["redemptions"] == 1 and len(api.delivered_texts(USER)) == 1


def test_a_bot_api_refusal_after_the_commit_leaves_the_reply_owed_not_the_update_lost(
        container: Container, api: FakeBotApi) -> None:
    api.fail("sendMessage", "Internal Server Error", 500, times=None)
    intake: UpdateIntake = container.telegram_intake()
    assert intake.take(Updates().promo(USER, "TURN10")) is Intake.PROCESSED
    assert counts(container) == {"redemptions": 1, "attempts": 1, "updates": 1, "replies": 1}
    with container.uow_factory()() as uow:
        assert uow.telegram_outbox.backlog() == 1  # owed: the delivery sends it once Telegram answers again
    api.clear_failures()
    clock = container.clock()
    assert isinstance(clock, ManualClock)
    clock.advance(minutes=1)
    container.telegram_outbox_delivery().drain()
    assert len(api.delivered_texts(USER)) == 1


def test_a_handler_bug_is_answered_with_the_error_text_and_the_update_is_not_retried_forever(
        container: Container, api: FakeBotApi, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(container.telegram_bot(), "_redeem_answer", broken)
    intake: UpdateIntake = container.telegram_intake()
    update = Updates().promo(USER, "TURN10")
    assert intake.take(update) is Intake.PROCESSED
    assert api.delivered_texts(USER) == ["Da ist etwas schiefgelaufen. Bitte versuche es in ein paar Minuten noch "
                                         "einmal."]
    assert counts(container)["redemptions"] == 0  # the reply could not be rendered: nothing was redeemed
    assert intake.take(update) is Intake.DUPLICATE
