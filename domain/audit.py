"""The audit log (SPEC 7 "Audit"): one entry per change, written in the change's own transaction.

Who: ``actor`` is the console operator's name, ``api`` (or the request's ``X-Actor``), ``cli:<login name>``,
or ``job:<job name>``. What: ``action`` (the names below), ``target_type`` + ``target_id``, and ``details``
(JSON; never a plaintext code — details carry ids, prefixes and hashes only). Entries are never changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from domain.errors import ValidationError
from domain.model import AuditEntry, AuditFilter

if TYPE_CHECKING:
    from ports.repositories import UnitOfWork, UnitOfWorkFactory

MAX_ACTOR = 64
MAX_LIST_LIMIT = 200

# target types
CAMPAIGN = "campaign"
PROMO_CODE = "promo_code"
PURCHASE = "purchase"
PAYMENT_REVIEW = "payment_review"
OPERATOR = "operator"
TARGET_TYPES = (CAMPAIGN, PROMO_CODE, PURCHASE, PAYMENT_REVIEW, OPERATOR)

# actions
CAMPAIGN_CREATED = "campaign.created"
CAMPAIGN_CHANGED = "campaign.changed"
CAMPAIGN_PAUSED = "campaign.paused"
CAMPAIGN_RESUMED = "campaign.resumed"
CAMPAIGN_AUTO_PAUSED = "campaign.auto_paused"
CODE_CREATED = "code.created"
CODE_PAUSED = "code.paused"
CODE_RESUMED = "code.resumed"
CODE_AUTO_PAUSED = "code.auto_paused"
CODES_GENERATED = "codes.generated"
CODES_IMPORTED = "codes.imported"
PURCHASE_REFUNDED = "purchase.refunded"
REFUND_ROLLED_BACK = "purchase.refund_rolled_back"
PAYMENT_REVIEW_RESOLVED = "payment_review.resolved"
OPERATOR_ADDED = "operator.added"
OPERATOR_PASSWORD_SET = "operator.password_set"  # noqa: S105 (an action name, not a password)
OPERATOR_ROLE_SET = "operator.role_set"
OPERATOR_REMOVED = "operator.removed"
ACTIONS = (CAMPAIGN_CREATED, CAMPAIGN_CHANGED, CAMPAIGN_PAUSED, CAMPAIGN_RESUMED, CAMPAIGN_AUTO_PAUSED, CODE_CREATED,
           CODE_PAUSED, CODE_RESUMED, CODE_AUTO_PAUSED, CODES_GENERATED, CODES_IMPORTED, PURCHASE_REFUNDED,
           REFUND_ROLLED_BACK, PAYMENT_REVIEW_RESOLVED, OPERATOR_ADDED, OPERATOR_PASSWORD_SET, OPERATOR_ROLE_SET,
           OPERATOR_REMOVED)


def job_actor(job_name: str) -> str:
    return f"job:{job_name}"


def validate_actor(actor: object, field: str = "actor") -> str:
    """1..64 printable characters (the ``X-Actor`` header, an operator's name)."""
    if (not isinstance(actor, str) or not 1 <= len(actor) <= MAX_ACTOR or not actor.isprintable()
            or actor != actor.strip()):
        raise ValidationError.single(field, f"must be 1..{MAX_ACTOR} printable characters without surrounding spaces")
    return actor


def record(uow: UnitOfWork, now: datetime, actor: str, action: str, target_type: str, target_id: int | str,
           details: dict[str, Any] | None = None) -> AuditEntry:
    """Append one entry in ``uow`` (the caller commits it with the change)."""
    return uow.audit.add(AuditEntry(id=None, at=now, actor=actor, action=action, target_type=target_type,
                                    target_id=str(target_id), details=dict(details or {})))


def changed_fields(before: object, after: object, fields: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``{field: {"from": old, "to": new}}`` for the fields that differ (datetimes as ISO text)."""
    out: dict[str, dict[str, Any]] = {}
    for name in fields:
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            out[name] = {"from": _plain(old), "to": _plain(new)}
    return out


def _plain(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return getattr(value, "value", value)


@attrs.frozen
class AuditPage:
    items: list[AuditEntry]
    next_cursor: int | None


class AuditService:
    """Reads the audit log, newest first."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow = uow_factory

    def list_entries(self, flt: AuditFilter, limit: int = 50, cursor: int | None = None) -> AuditPage:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValidationError.single("limit", f"must be 1..{MAX_LIST_LIMIT}")
        with self._uow() as uow:
            rows = uow.audit.search(flt, limit + 1, cursor)
        items = rows[:limit]
        return AuditPage(items, items[-1].id if len(rows) > limit and items else None)
