"""Reading Telegram's Star transactions for the payments jobs (SPEC 6, issues 10 and 17).

Transactions are read 100 per page (the Bot API maximum) until a short page, or — when the pages
come newest first — until a page reaches past the window. Ordering is detected, not assumed. An
invoice payload ``purchase:<id>`` names the purchase a payment was for.

Each transaction is classified by its partner and ``transaction_type`` (:func:`classify`): only an
incoming ``TransactionPartnerUser`` ``invoice_payment`` is a purchase payment, and only an outgoing
one to a user (same id as the payment it gives back) its refund. Everything else — Fragment
withdrawals, Telegram Ads top-ups, paid broadcasts (``telegram_api``), gifts, Premium gifts, affiliate
commissions, paid media, subscription fees, business account transfers, and any partner or type
Telegram adds later — is an *other movement*: counted per kind and direction with its exact Stars
(``nanostar_amount`` kept), never compared with purchases, never a difference.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import attrs

from domain.errors import DomainError
from domain.model import MovementTotal, StarMovement, StarTransaction

if TYPE_CHECKING:
    from ports.payments import PaymentGateway

PAGE_SIZE = 100  # getStarTransactions: limit 1..100
MAX_PAGES = 2_000  # 200,000 transactions: beyond that the window is too wide for one run
PURCHASE_PAYLOAD_PREFIX = "purchase:"
MAX_INVOICE_PAYLOAD_BYTES = 128  # sendInvoice: payload 1..128 bytes
NANOSTARS_PER_STAR = 1_000_000_000
MAX_KIND = 64  # star_movements.kind

# TransactionPartner types (Bot API) and TransactionPartnerUser.transaction_type values.
PARTNER_USER = "user"
INVOICE_PAYMENT = "invoice_payment"

# The kinds of other movements, by partner type (and direction where it tells them apart) ...
_PARTNER_KINDS = {
    "telegram_ads": "telegram_ads",  # Telegram Ads top-ups (and what comes back from them)
    "telegram_api": "paid_broadcast",  # paid broadcasts: requests beyond the free limits, billed
    "affiliate_program": "affiliate_commission",  # commissions earned from an affiliate program
    "other": "other",
}
# ... and by the user partner's transaction_type.
_USER_KINDS = {
    "paid_media_payment": "paid_media",
    "gift_purchase": "gift",
    "premium_purchase": "premium_gift",
    "business_account_transfer": "business_account_transfer",
}


class Role(enum.Enum):
    """What a Star transaction is for the payments jobs."""

    PAYMENT = "payment"  # an invoice payment by a user: compared with purchases
    REFUND = "refund"  # an invoice payment given back to its user: compared with refunded purchases
    OTHER = "other"  # everything else: an other movement, counted apart, never a difference


@attrs.frozen
class Classified:
    role: Role
    kind: str  # "payment", "refund", or the other movement's kind


def invoice_payload(purchase_id: int) -> str:
    """The ``sendInvoice`` payload naming a purchase (at most 128 bytes, as Telegram requires)."""
    payload = f"{PURCHASE_PAYLOAD_PREFIX}{purchase_id}"
    if purchase_id < 1 or len(payload.encode()) > MAX_INVOICE_PAYLOAD_BYTES:
        raise ValueError(f"purchase id {purchase_id} does not make an invoice payload of 1..128 bytes")
    return payload


def classify(tx: StarTransaction) -> Classified:
    """Purchase payment, its refund, or an other movement of some kind (see the module docstring)."""
    if tx.partner == PARTNER_USER:
        kind_of_type = tx.transaction_type or INVOICE_PAYMENT  # Bot APIs before 8.x sent no type: invoices
        if kind_of_type == INVOICE_PAYMENT:
            if tx.subscription_period is not None:  # a subscription's fee: starpromo sells no subscriptions
                return Classified(Role.OTHER, "subscription")
            return Classified(Role.REFUND, "refund") if tx.outgoing else Classified(Role.PAYMENT, "payment")
        return Classified(Role.OTHER, _USER_KINDS.get(kind_of_type, _clip(f"user_{kind_of_type}")))
    if tx.partner == "fragment":
        # Outgoing: a withdrawal of Stars; incoming: Fragment giving back a failed withdrawal.
        return Classified(Role.OTHER, "withdrawal_returned" if not tx.outgoing else "withdrawal")
    if tx.partner == "chat":
        return Classified(Role.OTHER, "gift" if tx.gift else "chat")
    if tx.partner in _PARTNER_KINDS:
        return Classified(Role.OTHER, _PARTNER_KINDS[tx.partner])
    return Classified(Role.OTHER, _clip(f"partner_{tx.partner}") if tx.partner else "unknown")


def _clip(kind: str) -> str:
    return kind[:MAX_KIND]


def movement(tx: StarTransaction) -> StarMovement:
    """The other movement ``tx`` is (call only for ``Role.OTHER``)."""
    return StarMovement(transaction_id=tx.id, outgoing=tx.outgoing, kind=classify(tx).kind, partner=tx.partner,
                        transaction_type=tx.transaction_type, stars=tx.amount, nanostars=tx.nanostar_amount,
                        occurred_at=tx.date)


def total_movements(movements: Iterable[StarMovement]) -> list[MovementTotal]:
    """Count and exact Stars per kind and direction, sorted by kind (incoming first)."""
    sums: dict[tuple[str, bool], list[int]] = defaultdict(lambda: [0, 0])
    for m in movements:
        entry = sums[(m.kind, m.outgoing)]
        entry[0] += 1
        entry[1] += m.stars * NANOSTARS_PER_STAR + m.nanostars
    return [MovementTotal(kind, outgoing, n, *divmod(total, NANOSTARS_PER_STAR))
            for (kind, outgoing), (n, total) in sorted(sums.items())]


def movements_document(totals: Iterable[MovementTotal]) -> dict[str, Any]:
    """``other_movements`` as the reconcile output and the dashboard show it: how many in all, and per kind and
    direction the count and the Stars (``stars`` whole, ``nanostar_amount`` the billionths on top)."""
    rows = [{"kind": t.kind, "direction": "outgoing" if t.outgoing else "incoming", "count": t.count,
             "stars": t.stars, "nanostar_amount": t.nanostars} for t in totals]
    return {"count": sum(r["count"] for r in rows), "kinds": rows}


def parse_purchase_payload(payload: str | None) -> int | None:
    """The purchase id of an invoice payload ``purchase:<id>``; None for anything else."""
    if payload is None or not payload.startswith(PURCHASE_PAYLOAD_PREFIX):
        return None
    raw = payload[len(PURCHASE_PAYLOAD_PREFIX):]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)



@attrs.frozen
class TransactionScan:
    """Telegram transactions dated at or after ``since``, deduplicated, and how they were read."""

    transactions: tuple[StarTransaction, ...]
    pages: int
    read: int


def fetch_transactions(gateway: PaymentGateway, since: datetime, page_size: int = PAGE_SIZE,
                       max_pages: int = MAX_PAGES) -> TransactionScan:
    """Page through ``getStarTransactions`` (offset/limit) until everything since ``since`` is read.

    Stops at a short page, or — pages coming newest first — at a page whose oldest entry is older
    than ``since``. A transaction seen twice (new ones shift the offsets while we page) counts once.
    More than ``max_pages`` pages is an error: a silently truncated comparison would lie.
    """
    seen: set[tuple[str, bool]] = set()
    kept: list[StarTransaction] = []
    offset = pages = read = 0
    while True:
        if pages >= max_pages:
            raise DomainError(f"more than {max_pages * page_size} Star transactions in the window; "
                              "narrow it (--window-hours)", {"pages": pages})
        page = gateway.get_star_transactions(offset, page_size)
        pages += 1
        read += len(page)
        for tx in page:
            key = (tx.id, tx.outgoing)
            if key not in seen and tx.date >= since:
                seen.add(key)
                kept.append(tx)
        if len(page) < page_size:
            break
        offset += len(page)
        newest_first = page[0].date > page[-1].date and all(a.date >= b.date for a, b in pairwise(page))
        if newest_first and page[-1].date < since:
            break
    return TransactionScan(tuple(kept), pages, read)

