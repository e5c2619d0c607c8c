from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import QUICK_CHATS, Stack, migrated_sqlite, sqlite_db
from tests.fakes.bot_api import FakeBotApi

_user_ids = itertools.count(700_000_001)


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``starpromo db upgrade`` per run; every stack starts from a copy of its database."""
    return migrated_sqlite(tmp_path_factory.mktemp("migrated"))


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_db: Path) -> str:
    """A fresh SQLite database of the test's own, at the newest schema."""
    return sqlite_db(tmp_path, migrated_db)


@pytest.fixture(scope="module")
def bot_api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as api:
        yield api


@pytest.fixture(scope="module")
def stack(bot_api: FakeBotApi, tmp_path_factory: pytest.TempPathFactory, migrated_db: Path) -> Iterator[Stack]:
    """One `starpromo serve` (SQLite file) per test module; tests keep apart by user id. A chat's turn comes every
    0.05 s instead of Telegram's second (``QUICK_CHATS``)."""
    tmp: Path = tmp_path_factory.mktemp("e2e")
    running = Stack(sqlite_db(tmp, migrated_db), bot_api, tmp / "serve.log", **QUICK_CHATS)
    yield running
    log = running.stop()
    assert '"status": 500' not in log, log


@pytest.fixture
def user_id() -> int:
    """A fresh Telegram user (and private chat) id."""
    return next(_user_ids)
