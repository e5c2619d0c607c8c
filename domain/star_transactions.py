"""Reading Telegram's Star transactions for the payments jobs (SPEC 6, issue 10).

Transactions are read 100 per page (the Bot API maximum) until a short page, or — when the pages
come newest first — until a page reaches past the window. Ordering is detected, not assumed. An
invoice payload ``purchase:<id>`` names the purchase a payment was for.
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import TYPE_CHECKING

import attrs

from domain.errors import DomainError
from domain.model import StarTransaction

if TYPE_CHECKING:
    from ports.payments import PaymentGateway

PAGE_SIZE = 100  # getStarTransactions: limit 1..100
MAX_PAGES = 2_000  # 200,000 transactions: beyond that the window is too wide for one run
PURCHASE_PAYLOAD_PREFIX = "purchase:"


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

