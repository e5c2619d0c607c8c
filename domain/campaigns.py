"""Campaigns (SPEC 3): create one (with or without a first code), read and list them, change what may change,
and the admin transitions ACTIVE <-> PAUSED of the whole campaign. Every change writes one audit entry."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from domain import audit
from domain.codes import CodeHasher, code_prefix, parse_code
from domain.errors import (
    CampaignExists,
    CodeExists,
    DuplicateCampaignName,
    DuplicateCodeHash,
    InvalidChange,
    InvalidTransition,
    NotFound,
    ValidationError,
)
from domain.model import (
    UNCHANGED,
    Campaign,
    CampaignChanges,
    CampaignFilter,
    CampaignStatus,
    CampaignTerms,
    PausedReason,
    PromoCode,
    PromoType,
    TargetScope,
)

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.repositories import UnitOfWork, UnitOfWorkFactory

MAX_CAMPAIGN_NAME = 200
MAX_PLAN_CODE = 64
MAX_GRANT_DAYS = 3650
MAX_DISCOUNT_STARS = 1_000_000
MAX_PER_USER_LIMIT = 1000
MAX_USES = 2**31 - 1
MAX_LIST_LIMIT = 200
MAX_REASON = 500
CODE_RULE = "must normalize to 4..32 characters A-Z 0-9"


@attrs.frozen
class CampaignSpec:
    """A new campaign: its name, terms, validity, budget and per-user limit (everything of SPEC 3 a creator
    chooses). ``valid_from`` None: from now."""

    name: str
    promo_type: PromoType
    grant_plan_code: str | None = None
    grant_days: int | None = None
    discount_percent: int | None = None
    discount_stars: int | None = None
    applicable_products: tuple[str, ...] = ()
    target_scope: TargetScope = TargetScope.ALL
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_total_uses: int | None = None
    per_user_limit: int = 1

    def terms(self) -> CampaignTerms:
        return CampaignTerms(
            promo_type=self.promo_type, grant_plan_code=self.grant_plan_code, grant_days=self.grant_days,
            discount_percent=self.discount_percent, discount_stars=self.discount_stars,
            applicable_products=tuple(self.applicable_products), target_scope=self.target_scope,
        )


def _bad(errors: list[dict[str, str]], field: str, message: str) -> None:
    errors.append({"field": field, "message": message})


def validate_terms(terms: CampaignTerms, known_products: Collection[str] | None = None) -> list[dict[str, str]]:
    """One ``{"field", "message"}`` per problem of the terms; empty when they are valid."""
    errors: list[dict[str, str]] = []
    kind = terms.promo_type
    if kind is PromoType.PREMIUM_GRANT:
        if not terms.grant_plan_code or len(terms.grant_plan_code) > MAX_PLAN_CODE:
            _bad(errors, "grant_plan_code", f"required for PREMIUM_GRANT, 1..{MAX_PLAN_CODE} characters")
        if terms.grant_days is None or not 1 <= terms.grant_days <= MAX_GRANT_DAYS:
            _bad(errors, "grant_days", f"required for PREMIUM_GRANT, 1..{MAX_GRANT_DAYS}")
    else:
        if terms.grant_plan_code is not None:
            _bad(errors, "grant_plan_code", "only for PREMIUM_GRANT")
        if terms.grant_days is not None:
            _bad(errors, "grant_days", "only for PREMIUM_GRANT")
    if kind is PromoType.PERCENT_DISCOUNT:
        if terms.discount_percent is None or not 1 <= terms.discount_percent <= 99:
            _bad(errors, "discount_percent", "required for PERCENT_DISCOUNT, 1..99")
    elif terms.discount_percent is not None:
        _bad(errors, "discount_percent", "only for PERCENT_DISCOUNT")
    if kind is PromoType.STARS_DISCOUNT:
        if terms.discount_stars is None or not 1 <= terms.discount_stars <= MAX_DISCOUNT_STARS:
            _bad(errors, "discount_stars", f"required for STARS_DISCOUNT, 1..{MAX_DISCOUNT_STARS:,} Stars")
    elif terms.discount_stars is not None:
        _bad(errors, "discount_stars", "only for STARS_DISCOUNT")
    if known_products is not None:
        unknown = [p for p in terms.applicable_products if p not in known_products]
        if unknown:
            _bad(errors, "applicable_products", f"unknown product(s): {', '.join(unknown)}")
    if len(set(terms.applicable_products)) != len(terms.applicable_products):
        _bad(errors, "applicable_products", "duplicates")
    return errors


def validate_name(name: object, errors: list[dict[str, str]], field: str = "name") -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_CAMPAIGN_NAME or not name.isprintable():
        _bad(errors, field, f"must be 1..{MAX_CAMPAIGN_NAME} printable characters")


def validate_budget(value: int | None, errors: list[dict[str, str]], field: str = "max_total_uses") -> None:
    if value is not None and not 1 <= value <= MAX_USES:
        _bad(errors, field, f"must be 1..{MAX_USES} or null (unlimited)")


def validate_per_user_limit(value: int, errors: list[dict[str, str]], field: str = "per_user_limit") -> None:
    if not 1 <= value <= MAX_PER_USER_LIMIT:
        _bad(errors, field, f"must be 1..{MAX_PER_USER_LIMIT}")


def validate_spec(spec: CampaignSpec, now: datetime, known_products: Collection[str] | None = None,
                  name_field: str = "name", budget_field: str = "max_total_uses") -> list[dict[str, str]]:
    """One ``{"field", "message"}`` per problem of a new campaign; empty when it is valid."""
    errors: list[dict[str, str]] = []
    validate_name(spec.name, errors, name_field)
    errors += validate_terms(spec.terms(), known_products)
    for field in ("valid_from", "valid_until"):
        value = getattr(spec, field)
        if value is not None and value.utcoffset() is None:
            _bad(errors, field, "must carry a timezone")
    aware = all(v is None or v.utcoffset() is not None for v in (spec.valid_from, spec.valid_until))
    if aware and spec.valid_until is not None:
        if spec.valid_until <= now:
            _bad(errors, "valid_until", "must be in the future")
        elif spec.valid_from is not None and spec.valid_until <= spec.valid_from:
            _bad(errors, "valid_until", "must be after valid_from")
    validate_budget(spec.max_total_uses, errors, budget_field)
    validate_per_user_limit(spec.per_user_limit, errors)
    return errors


def terms_conflicts(spec: CampaignSpec, campaign: Campaign, given: Collection[str]) -> list[dict[str, str]]:
    """Where ``spec`` disagrees with an existing campaign of that name (codes added to it must carry its terms).
    The type and its discount or grant are always compared (they are required to describe any campaign); the
    products, scope, validity, budget and per-user limit only when ``given`` names them (a flag or a column the
    caller actually set)."""
    errors: list[dict[str, str]] = []
    fields = ["promo_type", "grant_plan_code", "grant_days", "discount_percent", "discount_stars"]
    fields += [f for f in ("applicable_products", "target_scope", "valid_from", "valid_until", "max_total_uses",
                           "per_user_limit") if f in given]
    for field in fields:
        mine, theirs = getattr(spec, field), getattr(campaign, field)
        if field == "applicable_products":
            mine, theirs = tuple(mine), tuple(theirs)
        if mine != theirs:
            _bad(errors, field, f"differs from campaign {campaign.id} ({campaign.name!r}), which has {_shown(theirs)}")
    return errors


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(value) if value else "(every product)"
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None:
        return "none"
    return str(getattr(value, "value", value))


def build_campaign(spec: CampaignSpec, now: datetime) -> Campaign:
    return Campaign(
        id=None, name=spec.name, promo_type=spec.promo_type, grant_plan_code=spec.grant_plan_code,
        grant_days=spec.grant_days, discount_percent=spec.discount_percent, discount_stars=spec.discount_stars,
        applicable_products=tuple(spec.applicable_products), target_scope=spec.target_scope,
        status=CampaignStatus.ACTIVE, paused_reason=None, valid_from=spec.valid_from or now,
        valid_until=spec.valid_until, max_total_uses=spec.max_total_uses, per_user_limit=spec.per_user_limit,
        used_total=0, created_at=now, updated_at=now,
    )


def build_code(campaign: Campaign, code_hash: str, prefix: str, max_total_uses: int | None, now: datetime
               ) -> PromoCode:
    """A new ACTIVE code of ``campaign`` (stored: it has an id) with its copies of the campaign's fields."""
    assert campaign.id is not None
    return PromoCode(
        id=None, campaign_id=campaign.id, code_hash=code_hash, code_prefix=prefix, status=CampaignStatus.ACTIVE,
        paused_reason=None, max_total_uses=max_total_uses, used_total=0, created_at=now, updated_at=now,
        campaign_name=campaign.name, promo_type=campaign.promo_type, target_scope=campaign.target_scope,
        valid_from=campaign.valid_from, valid_until=campaign.valid_until,
    )


def add_campaign(uow: UnitOfWork, spec: CampaignSpec, now: datetime, actor: str | None = None) -> Campaign:
    """Insert a validated campaign; ``CampaignExists`` when the name is taken. With ``actor`` the creation is its
    own audit entry (without, it is part of a change that writes its own: codes generated or imported)."""
    try:
        stored = uow.campaigns.add(build_campaign(spec, now))
    except DuplicateCampaignName:
        raise CampaignExists(f"a campaign named {spec.name!r} exists", {"field": "name"}) from None
    assert stored.id is not None
    if actor is not None:
        audit.record(uow, now, actor, audit.CAMPAIGN_CREATED, audit.CAMPAIGN, stored.id,
                     {"name": stored.name, "promo_type": stored.promo_type.value,
                      "max_total_uses": stored.max_total_uses, "per_user_limit": stored.per_user_limit})
    return stored


def add_code(uow: UnitOfWork, hasher: CodeHasher, campaign: Campaign, normalized: str, max_total_uses: int | None,
             now: datetime) -> PromoCode:
    """Insert one chosen code into ``campaign``; ``CodeExists`` when it is stored already (under any pepper)."""
    if uow.promo_codes.existing_hashes(hasher.lookup_hashes(normalized)):
        raise CodeExists("this code exists already", {"field": "code"})
    try:
        return uow.promo_codes.add(build_code(campaign, hasher.hash(normalized), code_prefix(normalized),
                                              max_total_uses, now))
    except DuplicateCodeHash:
        raise CodeExists("this code exists already", {"field": "code"}) from None


def validate_reason(reason: str | None) -> None:
    if reason is not None and (len(reason) > MAX_REASON or not reason.isprintable()):
        raise ValidationError.single("reason", f"at most {MAX_REASON} printable characters")


@attrs.frozen
class CampaignView:
    """A campaign with its codes counted by status (the campaign JSON of SPEC 7)."""

    campaign: Campaign
    codes_by_status: dict[CampaignStatus, int]

    @property
    def codes_total(self) -> int:
        return sum(self.codes_by_status.values())


@attrs.frozen
class CampaignPage:
    items: list[CampaignView]
    next_cursor: int | None


class CampaignService:
    """Create, read, list and change campaigns; pause and resume a whole campaign."""

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

    def create(self, spec: CampaignSpec, *, actor: str, code: str | None = None,
               code_max_total_uses: int | None = None) -> tuple[Campaign, PromoCode | None]:
        """A new campaign, and with ``code`` its first (chosen) code, in one transaction: ``CampaignExists`` /
        ``CodeExists`` leave nothing behind."""
        now = self._clock.now()
        errors = validate_spec(spec, now, self._known_products)
        normalized = parse_code(code) if code is not None else None
        if code is not None and normalized is None:
            errors.insert(0, {"field": "code", "message": CODE_RULE})
        validate_budget(code_max_total_uses, errors, "code_max_total_uses")
        if errors:
            raise ValidationError(errors)
        with self._uow() as uow:
            campaign = add_campaign(uow, spec, now, actor)
            stored_code = None
            if normalized is not None:
                stored_code = add_code(uow, self._hasher, campaign, normalized, code_max_total_uses, now)
                assert stored_code.id is not None
                audit.record(uow, now, actor, audit.CODE_CREATED, audit.PROMO_CODE, stored_code.id,
                             {"campaign_id": campaign.id, "code_prefix": stored_code.code_prefix,
                              "max_total_uses": code_max_total_uses})
            uow.commit()
        return campaign, stored_code

    def get(self, campaign_id: int) -> CampaignView:
        with self._uow() as uow:
            campaign = uow.campaigns.get(campaign_id)
            if campaign is None:
                raise NotFound(f"campaign {campaign_id} not found")
            counts = uow.campaigns.code_counts([campaign_id])
        return CampaignView(campaign, counts.get(campaign_id, dict.fromkeys(CampaignStatus, 0)))

    def list_campaigns(self, flt: CampaignFilter, limit: int = 50, cursor: int | None = None) -> CampaignPage:
        """Newest first; ``cursor`` is the id the next page starts below."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValidationError.single("limit", f"must be 1..{MAX_LIST_LIMIT}")
        with self._uow() as uow:
            rows = uow.campaigns.search(flt, limit + 1, cursor)
            items = rows[:limit]
            counts = uow.campaigns.code_counts([c.id for c in items if c.id is not None])
        views = [CampaignView(c, counts.get(c.id or 0, dict.fromkeys(CampaignStatus, 0))) for c in items]
        return CampaignPage(views, items[-1].id if len(rows) > limit and items else None)

    def change(self, campaign_id: int, changes: CampaignChanges, *, actor: str) -> Campaign:
        """Change ``name``, ``valid_until`` (not into the past), the budget (not below ``used_total``) or the
        per-user limit (lowering it revokes nothing). ``InvalidChange`` names the field and changes nothing."""
        errors: list[dict[str, str]] = []
        if changes.name is not UNCHANGED:
            validate_name(changes.name, errors)
        if changes.max_total_uses is not UNCHANGED:
            validate_budget(changes.max_total_uses, errors)
        if changes.per_user_limit is not UNCHANGED:
            validate_per_user_limit(changes.per_user_limit, errors)
        if changes.valid_until not in (UNCHANGED, None):
            assert isinstance(changes.valid_until, datetime)
            if changes.valid_until.utcoffset() is None:
                _bad(errors, "valid_until", "must carry a timezone")
        if errors:
            raise ValidationError(errors)
        if not changes.changed():
            return self.get(campaign_id).campaign
        now = self._clock.now()
        with self._uow() as uow:
            current = uow.campaigns.get(campaign_id)
            if current is None:
                raise NotFound(f"campaign {campaign_id} not found")
            self._check_change(current, changes, now)
            name = current.name if changes.name is UNCHANGED else changes.name
            until = current.valid_until if changes.valid_until is UNCHANGED else changes.valid_until
            assert isinstance(name, str) and not isinstance(until, type(UNCHANGED))
            if (name, until) != (current.name, current.valid_until):
                # The codes' copies first: every writer takes code rows before campaign rows (no deadlock).
                uow.promo_codes.copy_campaign_fields(campaign_id, name, until, now)
            try:
                updated = uow.campaigns.change(campaign_id, changes, now)
            except DuplicateCampaignName:
                raise InvalidChange(f"a campaign named {name!r} exists", {"field": "name"}) from None
            if updated is None:
                latest = uow.campaigns.get(campaign_id)
                raise InvalidChange("max_total_uses is below the units used", {
                    "field": "max_total_uses", "used_total": latest.used_total if latest else None})
            fields = tuple(changes.changed())
            audit.record(uow, now, actor, audit.CAMPAIGN_CHANGED, audit.CAMPAIGN, campaign_id,
                         {"changes": audit.changed_fields(current, updated, fields)})
            uow.commit()
        return updated

    @staticmethod
    def _check_change(current: Campaign, changes: CampaignChanges, now: datetime) -> None:
        until = changes.valid_until
        if until is not UNCHANGED:
            if current.status is CampaignStatus.EXPIRED:
                raise InvalidChange("the campaign has expired; its validity cannot change", {"field": "valid_until"})
            if isinstance(until, datetime) and until <= now:
                raise InvalidChange("valid_until must be in the future", {"field": "valid_until"})
            if isinstance(until, datetime) and until <= current.valid_from:
                raise InvalidChange("valid_until must be after valid_from", {"field": "valid_until"})
        budget = changes.max_total_uses
        if isinstance(budget, int) and budget < current.used_total:
            raise InvalidChange(f"max_total_uses {budget} is below the {current.used_total} units used",
                                {"field": "max_total_uses", "used_total": current.used_total})

    def set_status(self, campaign_id: int, status: CampaignStatus, *, actor: str, reason: str | None = None
                   ) -> Campaign:
        """Admin transition of the whole campaign (its codes answer PAUSED while it is). Same state is a no-op."""
        validate_reason(reason)
        campaign: Campaign = transition(self._uow, self._clock, "campaign", campaign_id, status, actor, reason)
        return campaign


def transition(uow_factory: UnitOfWorkFactory, clock: Clock, level: str, target_id: int, status: CampaignStatus,
               actor: str, reason: str | None) -> Any:
    """The SPEC 3 admin transition at either level (``campaign`` or ``code``): only ACTIVE <-> PAUSED, same state a
    no-op, PAUSED -> ACTIVE refused past ``valid_until`` or with the capacity used up. Returns the row."""
    if status not in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
        raise ValidationError.single("status", "must be ACTIVE or PAUSED")
    what = "campaign" if level == "campaign" else "code"
    # A conditional update can lose to a concurrent writer; re-read and decide again.
    for _ in range(5):
        now = clock.now()
        with uow_factory() as uow:
            repo: Any = uow.campaigns if level == "campaign" else uow.promo_codes
            current = repo.get(target_id)
            if current is None:
                raise NotFound(f"{what} {target_id} not found")
            if current.status is status:
                return current
            if current.status in (CampaignStatus.DEPLETED, CampaignStatus.EXPIRED):
                raise InvalidTransition(f"{what} is {current.status.value}; it cannot become {status.value}",
                                        {"from": current.status.value, "to": status.value})
            if status is CampaignStatus.ACTIVE:
                if current.is_past_validity(now):
                    raise InvalidTransition(f"{what} is past valid_until", {"from": "PAUSED", "to": "ACTIVE"})
                if current.capacity_used_up():
                    raise InvalidTransition(f"{what} capacity is used up", {"from": "PAUSED", "to": "ACTIVE"})
                updated = repo.set_status(target_id, [CampaignStatus.PAUSED], CampaignStatus.ACTIVE, None, now)
            else:
                updated = repo.set_status(target_id, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED,
                                          PausedReason.MANUAL, now)
            if updated is not None:
                paused = status is CampaignStatus.PAUSED
                if level == "campaign":
                    action = audit.CAMPAIGN_PAUSED if paused else audit.CAMPAIGN_RESUMED
                    details: dict[str, Any] = {}
                else:
                    action = audit.CODE_PAUSED if paused else audit.CODE_RESUMED
                    details = {"campaign_id": updated.campaign_id, "code_prefix": updated.code_prefix}
                if current.status is CampaignStatus.PAUSED and current.paused_reason is not None:
                    details["previous_paused_reason"] = current.paused_reason.value
                if reason is not None:
                    details["reason"] = reason
                audit.record(uow, now, actor, action, audit.CAMPAIGN if level == "campaign" else audit.PROMO_CODE,
                             target_id, details)
                uow.commit()
                return updated
    raise InvalidTransition(f"{what} status keeps changing; try again")
