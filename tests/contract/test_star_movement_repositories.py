"""The ``StarMovements`` port (``star_movements``, issue 17) on memory, SQLite and PostgreSQL: one row per Telegram
transaction id and direction however often the reconciliation job sees it, and exact totals per kind and direction
over a window (``since <= occurred_at < end``, billionths of a Star carried into whole Stars)."""

from __future__ import annotations

from datetime import timedelta

from domain.model import MovementTotal, StarMovement
from tests.builders import Factory
from tests.conftest import T0


def _movement(tx_id: str, kind: str, stars: int, nanostars: int = 0, outgoing: bool = True,
              minutes: int = 0) -> StarMovement:
    return StarMovement(transaction_id=tx_id, outgoing=outgoing, kind=kind, partner="telegram_api",
                        transaction_type=None, stars=stars, nanostars=nanostars,
                        occurred_at=T0 + timedelta(minutes=minutes))


def test_a_movement_is_recorded_once_per_transaction_and_direction(uow_factory: Factory) -> None:
    first = [_movement("tx-1", "withdrawal", 5000), _movement("tx-1", "withdrawal_returned", 5000, outgoing=False),
             _movement("tx-2", "paid_broadcast", 0, 100_000_000)]
    with uow_factory() as uow:
        assert uow.star_movements.add_many(first) == 3
        uow.commit()
    with uow_factory() as uow:
        assert uow.star_movements.add_many([*first, _movement("tx-3", "telegram_ads", 7)]) == 1
        assert uow.star_movements.add_many([]) == 0
        uow.commit()
    with uow_factory() as uow:
        assert len(uow.star_movements.totals(T0, T0 + timedelta(seconds=1))) == 4


def test_totals_per_kind_and_direction_are_exact_inside_the_window(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        uow.star_movements.add_many([
            _movement("b-1", "paid_broadcast", 0, 600_000_000),
            _movement("b-2", "paid_broadcast", 2, 700_000_000, minutes=5),
            _movement("a-1", "affiliate_commission", 12, outgoing=False, minutes=10),
            _movement("w-1", "withdrawal", 5000, minutes=-1),  # before the window
            _movement("w-2", "withdrawal", 300, minutes=60),  # at its end: outside
        ])
        uow.commit()
    with uow_factory() as uow:
        assert uow.star_movements.totals(T0, T0 + timedelta(minutes=60)) == [
            MovementTotal("affiliate_commission", False, 1, 12, 0),
            MovementTotal("paid_broadcast", True, 2, 3, 300_000_000),
        ]
        assert uow.star_movements.totals(T0 - timedelta(days=1), T0 - timedelta(hours=1)) == []
