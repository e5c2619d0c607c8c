"""Replies the bot owes (SPEC 9): the ``telegram_outbox`` row, its delivery rules, and the hook that writes
it in the transaction of the state change that caused it.

A reply is written in the same unit of work as the redemption, purchase or payment that caused it
(``OutcomeRecorder``), so either both exist or neither does. A delivery process claims the oldest due
message of each chat for a short lease, sends it, and only after Telegram's ok marks it ``SENT`` with
Telegram's ``message_id``. A 429 puts it back for ``retry_after``; a 5xx or an unreachable Bot API backs
off; a refusal (400, 403) marks it ``FAILED``. A process that dies mid-send leaves a lease that runs out,
and the message is taken again.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

if TYPE_CHECKING:
    from ports.repositories import UnitOfWork

SEND_MESSAGE = "sendMessage"
SEND_INVOICE = "sendInvoice"
METHODS = (SEND_MESSAGE, SEND_INVOICE)
MAX_DEDUP_KEY = 128
MAX_ERROR = 300
# A claim's lease: longer than one Bot API call may take (connect 5 s + read 15 s).
DEFAULT_LEASE_SECONDS = 30


class OutboxStatus(enum.StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


@attrs.frozen
class OutboxMessage:
    """One message owed to one chat: a ``sendMessage`` or ``sendInvoice`` with its parameters (``payload``).

    ``dedup_key`` is unique: the same reply written twice is one row. Messages of one chat are delivered in
    ``id`` order, one at a time."""

    id: int | None
    chat_id: int
    dedup_key: str
    method: str
    payload: Mapping[str, Any]
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    leased_until: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None
    telegram_message_id: int | None = None
    last_error: str | None = None

    @classmethod
    def owed(cls, chat_id: int, dedup_key: str, method: str, payload: Mapping[str, Any],
             now: datetime) -> OutboxMessage:
        """A new PENDING message, due now."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}")
        if not 1 <= len(dedup_key) <= MAX_DEDUP_KEY:
            raise ValueError(f"dedup_key must be 1..{MAX_DEDUP_KEY} characters")
        return cls(id=None, chat_id=chat_id, dedup_key=dedup_key, method=method, payload=dict(payload),
                   status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, leased_until=None,
                   created_at=now, updated_at=now)


@attrs.frozen
class OutboxBacklog:
    """What ops look at: how many replies wait, how old the oldest is, how many failed for good."""

    pending: int
    due: int
    failed: int
    oldest_pending_at: datetime | None
    # When the next PENDING message may be claimed (its ``next_attempt_at``, or its lease's end if later).
    next_due_at: datetime | None = None

    def as_dict(self, now: datetime) -> dict[str, Any]:
        age = (now - self.oldest_pending_at).total_seconds() if self.oldest_pending_at is not None else 0.0
        return {"pending": self.pending, "due": self.due, "failed": self.failed,
                "oldest_pending_age_seconds": round(max(age, 0.0), 1)}


@attrs.frozen
class DeliveryPolicy:
    """How long a claim lasts, how 5xx and network failures back off, and when a reply is too old to send.

    ``lease`` must outlast one Bot API call (connect + read timeouts): a longer call may see its message
    taken again by another process, and sent twice."""

    lease: timedelta = timedelta(seconds=DEFAULT_LEASE_SECONDS)
    first_backoff: timedelta = timedelta(seconds=2)
    max_backoff: timedelta = timedelta(minutes=5)
    # A reply nobody could deliver for a day answers a question the user no longer has.
    max_age: timedelta = timedelta(hours=24)

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed try (5xx, network): doubling, capped."""
        exponent = min(max(attempts - 1, 0), 20)
        return min(self.first_backoff * (1 << exponent), self.max_backoff)

    def too_old(self, message: OutboxMessage, now: datetime) -> bool:
        return now - message.created_at >= self.max_age


def permanent_refusal(error_code: int | None) -> bool:
    """Telegram refused the message itself (400 bad request, 403 blocked by the user): sending it again gets the
    same answer. 429, 5xx, other codes and an unreachable Bot API are worth another try."""
    return error_code in (400, 403)


OutcomeT_contra = TypeVar("OutcomeT_contra", contravariant=True)


class OutcomeRecorder(Protocol[OutcomeT_contra]):
    """The caller's writes that belong in the transaction recording a use case's outcome (the bot: its update
    marked taken, and the replies it owes).

    A service given a recorder calls ``begin(uow)`` first in every transaction that may commit an outcome,
    and ``record(uow, outcome)`` in it before the commit, exactly once in the transaction that commits. A
    transaction that does not commit keeps neither; when one that recorded is rolled back after all (the claim
    that followed found no unit), ``record`` is called again with the outcome that does commit. ``begin`` may
    raise to abandon the transaction (a duplicate delivery): the error leaves the service as it is, with
    nothing written."""

    def begin(self, uow: UnitOfWork) -> None: ...

    def record(self, uow: UnitOfWork, outcome: OutcomeT_contra) -> None: ...
