"""Campaign creation, lookup and admin status transitions (SPEC 3)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from domain.codes import CodeHasher, code_prefix, parse_code
from domain.errors import CodeExists, DuplicateCodeHash, InvalidTransition, NotFound, ValidationError
from domain.model import Campaign, CampaignFilter, CampaignStatus, PausedReason, PromoType, TargetScope

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.repositories import UnitOfWorkFactory

MAX_CAMPAIGN_NAME = 200
MAX_PLAN_CODE = 64
MAX_GRANT_DAYS = 3650
MAX_LIST_LIMIT = 200


@attrs.frozen
class CampaignSpec:
    """The fields of a new campaign (everything of SPEC 3 that a creator chooses)."""

    campaign_name: str
    promo_type: PromoType
    grant_plan_code: str | None = None
    grant_days: int | None = None
    discount_percent: int | None = None
    applicable_products: tuple[str, ...] = ()
    target_scope: TargetScope = TargetScope.ALL
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_total_uses: int | None = None


def validate_spec(spec: CampaignSpec, known_products: Collection[str] | None = None) -> list[dict[str, str]]:
    """One ``{"field", "message"}`` per problem; empty when the spec is valid."""
    errors: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    name = spec.campaign_name
    if not name.strip() or len(name) > MAX_CAMPAIGN_NAME:
        bad("campaign_name", f"must be 1..{MAX_CAMPAIGN_NAME} characters")
    if spec.promo_type is PromoType.PREMIUM_GRANT:
        if not spec.grant_plan_code or len(spec.grant_plan_code) > MAX_PLAN_CODE:
            bad("grant_plan_code", f"required for PREMIUM_GRANT, 1..{MAX_PLAN_CODE} characters")
        if spec.grant_days is None or not 1 <= spec.grant_days <= MAX_GRANT_DAYS:
            bad("grant_days", f"required for PREMIUM_GRANT, 1..{MAX_GRANT_DAYS}")
        if spec.discount_percent is not None:
            bad("discount_percent", "only for PERCENT_DISCOUNT")
    else:
        if spec.discount_percent is None or not 1 <= spec.discount_percent <= 99:
            bad("discount_percent", "required for PERCENT_DISCOUNT, 1..99")
        if spec.grant_plan_code is not None:
            bad("grant_plan_code", "only for PREMIUM_GRANT")
        if spec.grant_days is not None:
            bad("grant_days", "only for PREMIUM_GRANT")
    if known_products is not None:
        unknown = [p for p in spec.applicable_products if p not in known_products]
        if unknown:
            bad("applicable_products", f"unknown product(s): {', '.join(unknown)}")
    if len(set(spec.applicable_products)) != len(spec.applicable_products):
        bad("applicable_products", "duplicates")
    for field in ("valid_from", "valid_until"):
        value = getattr(spec, field)
        if value is not None and value.utcoffset() is None:
            bad(field, "must carry a timezone")
    if (
        spec.valid_from is not None
        and spec.valid_until is not None
        and spec.valid_from.utcoffset() is not None
        and spec.valid_until.utcoffset() is not None
        and spec.valid_until <= spec.valid_from
    ):
        bad("valid_until", "must be after valid_from")
    if spec.max_total_uses is not None and spec.max_total_uses < 1:
        bad("max_total_uses", "must be >= 1 or null")
    return errors


def validate_code(raw: str) -> str:
    """The normalized code or a ValidationError naming ``code``."""
    code = parse_code(raw)
    if code is None:
        raise ValidationError.single("code", "must normalize to 4..32 characters A-Z 0-9")
    return code


def build_campaign(spec: CampaignSpec, code_hash: str, prefix: str, now: datetime) -> Campaign:
    return Campaign(
        id=None,
        campaign_name=spec.campaign_name,
        code_hash=code_hash,
        code_prefix=prefix,
        promo_type=spec.promo_type,
        grant_plan_code=spec.grant_plan_code,
        grant_days=spec.grant_days,
        discount_percent=spec.discount_percent,
        applicable_products=tuple(spec.applicable_products),
        target_scope=spec.target_scope,
        status=CampaignStatus.ACTIVE,
        paused_reason=None,
        valid_from=spec.valid_from or now,
        valid_until=spec.valid_until,
        max_total_uses=spec.max_total_uses,
        used_total=0,
        created_at=now,
        updated_at=now,
    )


@attrs.frozen
class CampaignPage:
    items: list[Campaign]
    next_cursor: int | None


class CampaignService:
    """Create campaigns and drive the admin transitions ACTIVE <-> PAUSED."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        hasher: CodeHasher,
        known_products: Collection[str] | None = None,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._hasher = hasher
        self._known_products = known_products

    def create(self, spec: CampaignSpec, code: str) -> Campaign:
        errors = validate_spec(spec, self._known_products)
        normalized = parse_code(code)
        if normalized is None:
            errors.insert(0, {"field": "code", "message": "must normalize to 4..32 characters A-Z 0-9"})
        if errors:
            raise ValidationError(errors)
        assert normalized is not None
        now = self._clock.now()
        campaign = build_campaign(spec, self._hasher.hash(normalized), code_prefix(normalized), now)
        with self._uow() as uow:
            if uow.promo_codes.existing_hashes(self._hasher.lookup_hashes(normalized)):
                raise CodeExists("a campaign with this code already exists")
            try:
                stored = uow.promo_codes.add(campaign)
            except DuplicateCodeHash:
                raise CodeExists("a campaign with this code already exists") from None
            uow.commit()
        return stored

    def get(self, promo_code_id: int) -> Campaign:
        with self._uow() as uow:
            campaign = uow.promo_codes.get(promo_code_id)
        if campaign is None:
            raise NotFound(f"campaign {promo_code_id} not found")
        return campaign

    def list_campaigns(self, flt: CampaignFilter, limit: int = 50, cursor: int | None = None) -> CampaignPage:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValidationError.single("limit", f"must be 1..{MAX_LIST_LIMIT}")
        with self._uow() as uow:
            rows = uow.promo_codes.search(flt, limit + 1, cursor)
        items = rows[:limit]
        next_cursor = items[-1].id if len(rows) > limit and items else None
        return CampaignPage(items=items, next_cursor=next_cursor)

    def set_status(self, promo_code_id: int, status: CampaignStatus) -> Campaign:
        """Admin transition. Same state is a no-op; only ACTIVE <-> PAUSED is allowed."""
        if status not in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
            raise ValidationError.single("status", "must be ACTIVE or PAUSED")
        # A conditional update can lose to a concurrent writer; re-read and decide again.
        for _ in range(5):
            now = self._clock.now()
            with self._uow() as uow:
                current = uow.promo_codes.get(promo_code_id)
                if current is None:
                    raise NotFound(f"campaign {promo_code_id} not found")
                if current.status is status:
                    return current
                if current.status in (CampaignStatus.DEPLETED, CampaignStatus.EXPIRED):
                    raise InvalidTransition(
                        f"campaign is {current.status.value}; it cannot become {status.value}",
                        {"from": current.status.value, "to": status.value},
                    )
                if status is CampaignStatus.ACTIVE:
                    if current.is_past_validity(now):
                        raise InvalidTransition("campaign is past valid_until", {"from": "PAUSED",
                                                                                 "to": "ACTIVE"})
                    if current.capacity_used_up():
                        raise InvalidTransition("campaign capacity is used up", {"from": "PAUSED",
                                                                                 "to": "ACTIVE"})
                    updated = uow.promo_codes.set_status(
                        promo_code_id, [CampaignStatus.PAUSED], CampaignStatus.ACTIVE, None, now
                    )
                else:
                    updated = uow.promo_codes.set_status(
                        promo_code_id, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED, PausedReason.MANUAL, now
                    )
                if updated is not None:
                    uow.commit()
                    return updated
        raise InvalidTransition("campaign status keeps changing; try again")


def campaign_ids(campaigns: Sequence[Campaign]) -> list[int]:
    return [c.id for c in campaigns if c.id is not None]
