"""The ``ProcessedUpdates`` port (``processed_updates``, the bot's intake dedup) on memory, SQLite and PostgreSQL:
an update id is taken in once until it is pruned.

Each test states a rule of the ports (ports/repositories.py) that the domain relies on.
"""

from __future__ import annotations

from datetime import timedelta

from tests.builders import Factory
from tests.conftest import T0


def test_an_update_id_is_taken_in_once(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        assert uow.processed_updates.add(10, T0) is True
        assert uow.processed_updates.add(10, T0) is False
        uow.processed_updates.add(11, T0 + timedelta(days=2))
        uow.commit()
    with uow_factory() as uow:
        assert uow.processed_updates.add(10, T0) is False
        assert uow.processed_updates.delete_before(T0 + timedelta(days=1), 100) == 1
        assert uow.processed_updates.add(10, T0) is True
        assert uow.processed_updates.add(11, T0) is False


def test_seen_reads_without_recording(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        assert uow.processed_updates.seen(20) is False
        uow.processed_updates.add(20, T0)
        uow.commit()
    with uow_factory() as uow:
        assert uow.processed_updates.seen(20) is True
        assert uow.processed_updates.seen(21) is False
        assert uow.processed_updates.add(21, T0) is True
