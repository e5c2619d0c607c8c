"""Payment review items (SPEC 6, issue 10): what the payments jobs could not settle or found different,
worked through by a human (``starpromo payments reviews`` / ``payments resolve``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from domain import audit
from domain.dashboard import iso
from domain.errors import InvalidPurchaseState, NotFound, ValidationError
from domain.model import PaymentReview

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.repositories import UnitOfWorkFactory

log = logging.getLogger("starpromo.payments")

MAX_REVIEW_PAGE = 500
MAX_RESOLUTION_NOTE = 500


class PaymentReviewService:
    """The review items a human works through (``starpromo payments reviews`` / ``payments resolve``)."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow_factory
        self._clock = clock

    def list(self, open_only: bool = True, limit: int = 50, after_id: int | None = None) -> list[PaymentReview]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_REVIEW_PAGE:
            raise ValidationError.single("limit", f"must be an integer 1..{MAX_REVIEW_PAGE}")
        with self._uow() as uow:
            return uow.payment_reviews.list(open_only, limit, after_id)

    def count_open(self) -> int:
        with self._uow() as uow:
            return uow.payment_reviews.count_open()

    def resolve(self, review_id: int, note: str | None = None, *, actor: str) -> PaymentReview:
        """Mark a review resolved. Resolving one that is already resolved is an error saying when."""
        if note is not None and len(note) > MAX_RESOLUTION_NOTE:
            raise ValidationError.single("note", f"must be at most {MAX_RESOLUTION_NOTE} characters")
        with self._uow() as uow:
            now = self._clock.now()
            done = uow.payment_reviews.resolve(review_id, note, now)
            if done is None:
                current = uow.payment_reviews.get(review_id)
                if current is None:
                    raise NotFound(f"payment review {review_id} not found")
                raise InvalidPurchaseState(
                    f"payment review {review_id} was already resolved at {iso(current.resolved_at)}"
                    if current.resolved_at else f"payment review {review_id} cannot be resolved",
                    {"resolved_at": iso(current.resolved_at) if current.resolved_at else None})
            audit.record(uow, now, actor, audit.PAYMENT_REVIEW_RESOLVED, audit.PAYMENT_REVIEW, review_id,
                         {"kind": done.kind, "purchase_id": done.purchase_id, "note": note})
            uow.commit()
        log.info("payment review resolved", extra={"event": "payment_review_resolved", "review_id": review_id,
                                                    "kind": done.kind})
        return done
