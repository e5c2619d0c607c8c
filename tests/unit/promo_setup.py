"""Set-up shared by the redeem, campaign and code tests: campaign specs, a campaign with its codes through the
services, states only a job reaches (rollover, guard) put directly into the in-memory store, and what a refused
change is checked against."""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain.campaigns import CampaignService, CampaignSpec
from domain.errors import ValidationError
from domain.maintenance import MaintenanceService
from domain.model import AuditEntry, Campaign, CampaignStatus, PausedReason, PromoCode, PromoType, Redemption
from domain.promo_codes import CodeService

ACTOR = "ops:alice"
DISCOUNT = CampaignSpec(name="spring", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=20)
GRANT = CampaignSpec(name="gift", promo_type=PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM", grant_days=30)
STARS = CampaignSpec(name="stars", promo_type=PromoType.STARS_DISCOUNT, discount_stars=40)
_SERIAL = itertools.count(1)
ACTIVE, PAUSED, EXPIRED, DEPLETED = (CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.EXPIRED,
                                     CampaignStatus.DEPLETED)


def create(campaigns: CampaignService, code: str, spec: CampaignSpec = DISCOUNT, *, code_cap: int | None = None,
           **changes: Any) -> tuple[Campaign, PromoCode]:
    """A campaign of ``spec`` (changed by ``changes``) with ``code`` as its first code (own cap ``code_cap``).
    Unless a name is given the campaign gets a fresh one (never the code: no row may hold it), so that a test may
    create many."""
    changes.setdefault("name", f"{spec.name} {next(_SERIAL)}")
    campaign, first = campaigns.create(attrs.evolve(spec, **changes), actor=ACTOR, code=code,
                                       code_max_total_uses=code_cap)
    assert first is not None
    return campaign, first


def add_codes(codes: CodeService, campaign: Campaign, *plain: str, cap: int | None = None) -> list[PromoCode]:
    """More codes of ``campaign``, each with its own cap ``cap``."""
    assert campaign.id is not None
    return [codes.add(campaign.id, code, cap, actor=ACTOR) for code in plain]


def force_campaign(store: MemoryStore, campaign: Campaign, status: CampaignStatus, **changes: Any) -> None:
    """Put a campaign into a state the way a job (rollover, guard) would, its codes left as they are."""
    assert campaign.id is not None
    reason = PausedReason.AUTO_BRUTEFORCE if status is CampaignStatus.PAUSED else None
    with store.lock:
        store.campaigns[campaign.id] = attrs.evolve(store.campaigns[campaign.id], status=status,
                                                    paused_reason=reason, **changes)


def force_code(store: MemoryStore, code: PromoCode, status: CampaignStatus, **changes: Any) -> None:
    """Put one code into a state the way a job would, its campaign left as it is."""
    assert code.id is not None
    reason = PausedReason.AUTO_BRUTEFORCE if status is CampaignStatus.PAUSED else None
    with store.lock:
        store.codes[code.id] = attrs.evolve(store.codes[code.id], status=status, paused_reason=reason, **changes)


def expire_reservations(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> int:
    """Run the reservation expiry job now; how many reservations it expired."""
    return MaintenanceService(uow_factory, clock).expire_reservations().expired


def revoke(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, redemption: Redemption | None) -> None:
    """What a refund does to the redemption it paid with: REVOKED, its unit kept (audit-conservative)."""
    assert redemption is not None and redemption.id is not None
    with uow_factory() as uow:
        assert uow.redemptions.revoke(redemption.id, clock.now()) is not None
        uow.commit()


def audit_since(store: MemoryStore, before: int) -> list[AuditEntry]:
    """The audit entries written after the first ``before`` ones."""
    return list(store.audit[before:])


def field_errors(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    """The fields a validation error names."""
    return {e["field"] for e in exc.value.errors}


def campaign_tables(store: MemoryStore) -> tuple[object, ...]:
    """Everything a refused campaign change must leave as it was."""
    return (dict(store.campaigns), dict(store.campaign_names), dict(store.codes), dict(store.code_hashes),
            list(store.audit))
