"""Single codes of a campaign (SPEC 3): add a chosen code, read and list codes, pause or resume one code, and the
support lookup of a typed code (which writes no attempt and never keeps the plaintext)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from domain import audit
from domain.campaigns import CODE_RULE, MAX_LIST_LIMIT, add_code, transition, validate_budget, validate_reason
from domain.codes import MAX_RAW_CODE_LENGTH, CodeHasher, parse_code
from domain.errors import InvalidTransition, NotFound, ValidationError
from domain.model import Campaign, CampaignStatus, CodeFilter, PromoCode, Redemption

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.repositories import UnitOfWorkFactory

MAX_PREFIX_FILTER = 4


@attrs.frozen
class CodePage:
    items: list[PromoCode]
    next_cursor: int | None


@attrs.frozen
class RedemptionPage:
    """One code's redemptions, newest first; ``next_cursor`` is the id the next page starts below."""

    items: list[Redemption]
    next_cursor: int | None


@attrs.frozen
class CodeLookup:
    """A typed code's row and its campaign (support)."""

    code: PromoCode
    campaign: Campaign


class CodeService:
    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock, hasher: CodeHasher) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._hasher = hasher

    def add(self, campaign_id: int, code: str, max_total_uses: int | None = None, *, actor: str) -> PromoCode:
        """One chosen code into an existing campaign (``CodeExists`` when stored already)."""
        normalized = parse_code(code)
        errors: list[dict[str, str]] = []
        if normalized is None:
            errors.append({"field": "code", "message": CODE_RULE})
        validate_budget(max_total_uses, errors)
        if errors:
            raise ValidationError(errors)
        assert normalized is not None
        now = self._clock.now()
        with self._uow() as uow:
            campaign = uow.campaigns.get(campaign_id)
            if campaign is None:
                raise NotFound(f"campaign {campaign_id} not found")
            if campaign.status is CampaignStatus.EXPIRED:
                raise InvalidTransition("the campaign has expired; no codes can be added", {"status": "EXPIRED"})
            stored = add_code(uow, self._hasher, campaign, normalized, max_total_uses, now)
            assert stored.id is not None
            audit.record(uow, now, actor, audit.CODE_CREATED, audit.PROMO_CODE, stored.id,
                         {"campaign_id": campaign_id, "code_prefix": stored.code_prefix,
                          "max_total_uses": max_total_uses})
            uow.commit()
        return stored

    def get(self, promo_code_id: int) -> PromoCode:
        with self._uow() as uow:
            code = uow.promo_codes.get(promo_code_id)
        if code is None:
            raise NotFound(f"code {promo_code_id} not found")
        return code

    def get_with_campaign(self, promo_code_id: int) -> CodeLookup:
        """The code row and its campaign, by the code's id (the campaign's row only: no counting of its codes)."""
        with self._uow() as uow:
            code = uow.promo_codes.get(promo_code_id)
            campaign = uow.campaigns.get(code.campaign_id) if code is not None else None
        if code is None or campaign is None:
            raise NotFound(f"code {promo_code_id} not found")
        return CodeLookup(code, campaign)

    def redemptions(self, promo_code_id: int, limit: int = 50, cursor: int | None = None) -> RedemptionPage:
        """The code's redemptions, newest first (support: who used this code, and what became of it)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValidationError.single("limit", f"must be 1..{MAX_LIST_LIMIT}")
        if cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 1):
            raise ValidationError.single("cursor", "must be a positive integer")
        with self._uow() as uow:
            if uow.promo_codes.get(promo_code_id) is None:
                raise NotFound(f"code {promo_code_id} not found")
            rows = uow.redemptions.for_code(promo_code_id, limit + 1, cursor)
        items = rows[:limit]
        return RedemptionPage(items, items[-1].id if len(rows) > limit and items else None)

    def list_codes(self, flt: CodeFilter, limit: int = 50, cursor: int | None = None) -> CodePage:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValidationError.single("limit", f"must be 1..{MAX_LIST_LIMIT}")
        if flt.code_prefix is not None:
            prefix = flt.code_prefix.upper()
            if not 1 <= len(prefix) <= MAX_PREFIX_FILTER or not prefix.isascii() or not prefix.isalnum():
                raise ValidationError.single("code_prefix", "1..4 characters A-Z 0-9")
            flt = attrs.evolve(flt, code_prefix=prefix)
        with self._uow() as uow:
            rows = uow.promo_codes.search(flt, limit + 1, cursor)
        items = rows[:limit]
        return CodePage(items, items[-1].id if len(rows) > limit and items else None)

    def set_status(self, promo_code_id: int, status: CampaignStatus, *, actor: str, reason: str | None = None
                   ) -> PromoCode:
        """Admin transition of one code (its campaign is untouched). Same state is a no-op."""
        validate_reason(reason)
        code: PromoCode = transition(self._uow, self._clock, "code", promo_code_id, status, actor, reason)
        return code

    def lookup(self, raw: str) -> CodeLookup:
        """The code row and campaign of a typed code, by hash (current and previous peppers). Writes nothing."""
        if not isinstance(raw, str) or len(raw) > MAX_RAW_CODE_LENGTH:
            raise ValidationError.single("code", f"must be a string of at most {MAX_RAW_CODE_LENGTH} characters")
        normalized = parse_code(raw)
        if normalized is None:
            raise ValidationError.single("code", CODE_RULE)
        with self._uow() as uow:
            code = uow.promo_codes.get_by_hashes(self._hasher.lookup_hashes(normalized))
            campaign = uow.campaigns.get(code.campaign_id) if code is not None else None
        if code is None or campaign is None:
            raise NotFound("no code matches")
        return CodeLookup(code, campaign)
