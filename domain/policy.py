"""Tunable limits of the product (SPEC 4-6). Defaults are the SPEC's."""

from __future__ import annotations

from datetime import timedelta

import attrs


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value}")


@attrs.frozen
class PromoPolicy:
    fail_limit: int = attrs.field(default=5, validator=_positive)
    fail_window_hours: int = attrs.field(default=24, validator=_positive)
    block_minutes: int = attrs.field(default=60, validator=_positive)
    reservation_ttl_minutes: int = attrs.field(default=15, validator=_positive)
    invoice_ttl_minutes: int = attrs.field(default=30, validator=_positive)
    guard_window_minutes: int = attrs.field(default=10, validator=_positive)
    guard_min_failures: int = attrs.field(default=20, validator=_positive)
    guard_min_users: int = attrs.field(default=5, validator=_positive)
    guard_prefix_min_failures: int = attrs.field(default=50, validator=_positive)
    job_batch_size: int = attrs.field(default=500, validator=_positive)
    # Payments reliability (issue 10): how far back each job looks, and how old a payment must be
    # before it counts (a payment younger than the grace may still be on its way through the webhook).
    reconciliation_window_hours: int = attrs.field(default=24, validator=_positive)
    reconciliation_grace_minutes: int = attrs.field(default=15, validator=_positive)
    recovery_window_hours: int = attrs.field(default=24, validator=_positive)
    recovery_grace_minutes: int = attrs.field(default=2, validator=_positive)

    @property
    def fail_window(self) -> timedelta:
        return timedelta(hours=self.fail_window_hours)

    @property
    def block(self) -> timedelta:
        return timedelta(minutes=self.block_minutes)

    @property
    def reservation_ttl(self) -> timedelta:
        return timedelta(minutes=self.reservation_ttl_minutes)

    @property
    def invoice_ttl(self) -> timedelta:
        return timedelta(minutes=self.invoice_ttl_minutes)

    @property
    def guard_window(self) -> timedelta:
        return timedelta(minutes=self.guard_window_minutes)
