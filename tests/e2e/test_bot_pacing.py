"""Telegram's per-chat limit as a real `starpromo serve` keeps it, with the default ``TELEGRAM_CHAT_INTERVAL_SECONDS``
(1 s; the other e2e stacks shorten it, see ``QUICK_CHATS``): a chat's replies go out a turn apart, never two within
the fake Bot API's per-chat window, and none is lost or refused."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.stack import Stack
from tests.fakes.bot_api import FakeBotApi

# The fake refuses (429) a second message to one chat within this many seconds. Below the bot's 1 s turn by a margin
# for HTTP jitter (the fake times a message when it arrives, the bot when its turn is taken), far above QUICK_CHATS.
FAKE_CHAT_WINDOW = 0.75
USER = 880_000_001


def test_one_chats_replies_are_paced_to_its_turn_and_all_delivered(tmp_path: Path, sqlite_url: str) -> None:
    with FakeBotApi(chat_interval=FAKE_CHAT_WINDOW) as api:
        stack = Stack(sqlite_url, api, tmp_path / "serve.log")
        try:
            updates = [stack.updates.promo(USER, None), stack.updates.message(USER, "/promo@starpromo_test_bot"),
                       stack.updates.promo(USER, "NOSUCHCODE"), stack.updates.callback(USER, "promo:open")]
            for update in updates:
                assert stack.deliver(update)["result"] == "processed"
            # Each webhook call waited for its chat's turn and sent its reply itself: all four are there, in order.
            api.wait_for("sendMessage", 4)
        finally:
            log = stack.stop()
        assert api.flood_refusals == 0, [(c.params["chat_id"], c.at) for c in api.calls_to("sendMessage")]
        how_to = "Sende deinen Promo-Code so: /promo DEINCODE (zum Beispiel /promo SOMMER20)."
        assert api.delivered_texts(USER) == [
            how_to, how_to, "Diesen Code kenne ich nicht. Prüfe die Schreibweise und sende /promo CODE erneut.",
            "Schick mir einfach eine Nachricht: /promo DEINCODE"]
        assert len(api.calls_to("sendMessage")) == 4  # no message was tried twice
        assert '"status": 500' not in log
