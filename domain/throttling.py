"""Per-user throttling of failed redeem attempts (SPEC 4)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from domain.policy import PromoPolicy

if TYPE_CHECKING:
    from ports.repositories import Attempts


def blocked_until(attempts: Attempts, user_id: int, now: datetime, policy: PromoPolicy) -> datetime | None:
    """When the user's block ends, or None when the user is not blocked.

    Blocked while the failures of the trailing window reach the limit and the latest of them is
    younger than the block duration.
    """
    failures, latest = attempts.failure_stats(user_id, now - policy.fail_window)
    return block_ends(failures, latest, now, policy)


def block_ends(failures: int, latest: datetime | None, now: datetime, policy: PromoPolicy) -> datetime | None:
    """``blocked_until`` from the failure count and latest failure of the trailing window (already read)."""
    if failures < policy.fail_limit or latest is None:
        return None
    ends = latest + policy.block
    return ends if now < ends else None
