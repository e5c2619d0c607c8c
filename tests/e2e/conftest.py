from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, sqlite_db
from tests.fakes.bot_api import FakeBotApi

_user_ids = itertools.count(700_000_001)


@pytest.fixture(scope="module")
def bot_api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as api:
        yield api


@pytest.fixture(scope="module")
def stack(bot_api: FakeBotApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One `starpromo serve` (SQLite file) per test module; tests keep apart by user id."""
    tmp: Path = tmp_path_factory.mktemp("e2e")
    running = Stack(sqlite_db(tmp, bot_api.url), bot_api, tmp / "serve.log")
    yield running
    log = running.stop()
    assert '"status": 500' not in log, log


@pytest.fixture
def user_id() -> int:
    """A fresh Telegram user (and private chat) id."""
    return next(_user_ids)
