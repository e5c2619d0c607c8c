"""Domain services with their metrics recorded around them (SPEC 15): the domain itself stays free of them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from domain.errors import ValidationError
from domain.redemption import RedeemOutcome, RedemptionService

if TYPE_CHECKING:
    from domain.codes import CodeHasher
    from domain.outbox import OutcomeRecorder
    from domain.policy import PromoPolicy
    from ports.clock import Clock
    from ports.metrics import Metrics
    from ports.repositories import UnitOfWorkFactory

# Not a SPEC 4 result: the redeem raised (the database away, a bug). Counted so an error rate can see it.
REDEEM_ERROR = "ERROR"


class MeteredRedemptionService(RedemptionService):
    """``RedemptionService`` that records each decision's result and duration, whoever calls it (HTTP, the bot)."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock, hasher: CodeHasher, policy: PromoPolicy,
                 metrics: Metrics) -> None:
        super().__init__(uow_factory, clock, hasher, policy)
        self._metrics = metrics

    def redeem(self, user_id: int, code: str, idempotency_key: str,
               recorder: OutcomeRecorder[RedeemOutcome] | None = None) -> RedeemOutcome:
        started = time.perf_counter()
        try:
            outcome = super().redeem(user_id, code, idempotency_key, recorder)
        except ValidationError:
            raise  # refused input is not a redeem: the request metrics count those (400)
        except Exception:
            self._metrics.redeem_finished(REDEEM_ERROR, time.perf_counter() - started)
            raise
        self._metrics.redeem_finished(outcome.result.value, time.perf_counter() - started)
        return outcome
