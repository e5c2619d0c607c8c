"""In-memory ``promo_campaigns``, ``promo_codes`` and ``audit_log`` (ports ``Campaigns``, ``PromoCodes``, ``AuditLog``).

The database's rules hold here too: a unique campaign ``name`` and ``code_hash`` on insert, and every counter or
status change conditional on the state it expects (``None`` when another writer got there first). A capacity
claim takes one unit from a code *and* its campaign, or from neither.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from adapters.memory.store import MemoryTable
from domain.errors import ConstraintViolation, DuplicateCampaignName, DuplicateCodeHash
from domain.model import (
    AuditEntry,
    AuditFilter,
    Campaign,
    CampaignChanges,
    CampaignFilter,
    CampaignStatus,
    CodeFilter,
    PausedReason,
    PromoCode,
    RedemptionStatus,
)

_LIVE_STATES = (CampaignStatus.ACTIVE, CampaignStatus.PAUSED)


def _with_status(row: Any, status: CampaignStatus, paused_reason: PausedReason | None, now: datetime) -> Any:
    # ``paused_reason`` is null whenever the status is not PAUSED (a CHECK constraint in the database).
    reason = paused_reason if status is CampaignStatus.PAUSED else None
    return attrs.evolve(row, status=status, paused_reason=reason, updated_at=now)


def _by_id(rows: Any) -> list[Any]:
    return sorted(rows, key=lambda row: row.id or 0)


class InMemoryCampaigns(MemoryTable):
    """The ``promo_campaigns`` table (port ``Campaigns``)."""

    def add(self, campaign: Campaign) -> Campaign:
        """Insert; returns the row with its id. Raises ``DuplicateCampaignName``."""
        if campaign.name in self._s.campaign_names:
            raise DuplicateCampaignName(campaign.name)
        new_id = self._s.next_id("promo_campaigns")
        stored = self._write(self._s.campaigns, new_id, attrs.evolve(campaign, id=new_id))
        self._u.set(self._s.campaign_names, stored.name, new_id)
        return stored

    def get(self, campaign_id: int) -> Campaign | None:
        return self._s.campaigns.get(campaign_id)

    def get_by_name(self, name: str) -> Campaign | None:
        campaign_id = self._s.campaign_names.get(name)
        return None if campaign_id is None else self._s.campaigns[campaign_id]

    def get_many(self, campaign_ids: Sequence[int]) -> dict[int, Campaign]:
        return {i: self._s.campaigns[i] for i in campaign_ids if i in self._s.campaigns}

    def search(self, flt: CampaignFilter, limit: int, before_id: int | None) -> list[Campaign]:
        """Campaigns matching ``flt``, newest first (by id, descending), starting below ``before_id``.
        ``name_contains`` is a case-insensitive substring, taken literally (``%`` and ``_`` are no wildcards)."""
        needle = flt.name_contains.lower() if flt.name_contains else None
        found = [
            c for c in self._s.campaigns.values()
            if (before_id is None or (c.id or 0) < before_id)
            and (flt.status is None or c.status is flt.status)
            and (flt.promo_type is None or c.promo_type is flt.promo_type)
            and (needle is None or needle in c.name.lower())
        ]
        return _by_id(found)[::-1][:max(limit, 0)]

    def set_status(
        self,
        campaign_id: int,
        expected: Sequence[CampaignStatus],
        status: CampaignStatus,
        paused_reason: PausedReason | None,
        now: datetime,
    ) -> Campaign | None:
        """Move to ``status`` only from one of ``expected``; None when the row is elsewhere."""
        c = self._s.campaigns.get(campaign_id)
        if c is None or c.status not in expected:
            return None
        updated: Campaign = _with_status(c, status, paused_reason, now)
        return self._write(self._s.campaigns, campaign_id, updated)

    def change(self, campaign_id: int, changes: CampaignChanges, now: datetime) -> Campaign | None:
        """The given fields in one conditional update: None, and nothing changed, when the campaign is missing or
        a new ``max_total_uses`` lies below ``used_total``. A ``name`` another campaign has raises
        ``DuplicateCampaignName`` (only once the condition held: a refused change never clashes)."""
        c = self._s.campaigns.get(campaign_id)
        if c is None:
            return None
        fields = changes.changed()
        budget = fields.get("max_total_uses")
        if budget is not None and budget < c.used_total:
            return None
        name = fields.get("name", c.name)
        owner = self._s.campaign_names.get(name)
        if owner is not None and owner != campaign_id:
            raise DuplicateCampaignName(name)
        if name != c.name:
            self._u.delete(self._s.campaign_names, c.name)
            self._u.set(self._s.campaign_names, name, campaign_id)
        return self._write(self._s.campaigns, campaign_id, attrs.evolve(c, **fields, updated_at=now))

    def release_capacity_many(self, units: Mapping[int, int], now: datetime) -> None:
        """``used_total - units`` for many campaigns (never below zero)."""
        for campaign_id in sorted(units):
            c = self._s.campaigns.get(campaign_id)
            if c is not None and c.used_total > 0 and units[campaign_id] > 0:
                left = max(0, c.used_total - units[campaign_id])
                self._write(self._s.campaigns, campaign_id, attrs.evolve(c, used_total=left, updated_at=now))

    def due_for_expiry(self, now: datetime, limit: int) -> list[Campaign]:
        """ACTIVE or PAUSED campaigns whose ``valid_until`` has passed, by id."""
        due = [c for c in self._s.campaigns.values() if c.status in _LIVE_STATES and c.is_past_validity(now)]
        return _by_id(due)[:limit]

    def due_for_depletion(self, limit: int) -> list[Campaign]:
        """ACTIVE campaigns whose budget is used up and none of whose codes has a RESERVED redemption, by id."""
        reserving = {r.campaign_id for r in self._s.redemptions.values() if r.status is RedemptionStatus.RESERVED}
        due = [
            c for c in self._s.campaigns.values()
            if c.status is CampaignStatus.ACTIVE and c.capacity_used_up() and c.id not in reserving
        ]
        return _by_id(due)[:limit]

    def active_with_code_prefix(self, code_prefix: str) -> list[Campaign]:
        """ACTIVE campaigns that have a code (in any status) whose ``code_prefix`` starts with ``code_prefix``."""
        owners = {code.campaign_id for code in self._s.codes.values() if code.code_prefix.startswith(code_prefix)}
        return _by_id(c for c in self._s.campaigns.values() if c.status is CampaignStatus.ACTIVE and c.id in owners)

    def count_paused(self, since: datetime | None = None) -> int:
        """PAUSED campaigns; with ``since``, only those whose last change (the pause) is at or after it."""
        return sum(
            1 for c in self._s.campaigns.values()
            if c.status is CampaignStatus.PAUSED and (since is None or c.updated_at >= since)
        )

    def code_counts(self, campaign_ids: Sequence[int]) -> dict[int, dict[CampaignStatus, int]]:
        """Codes per status of each asked campaign, every status present (zeros for a campaign without codes)."""
        counts = {campaign_id: dict.fromkeys(CampaignStatus, 0) for campaign_id in campaign_ids}
        for code in self._s.codes.values():
            if code.campaign_id in counts:
                counts[code.campaign_id][code.status] += 1
        return counts


class InMemoryPromoCodes(MemoryTable):
    """The ``promo_codes`` table (port ``PromoCodes``)."""

    def add(self, code: PromoCode) -> PromoCode:
        """Insert; returns the row with its id. Raises ``DuplicateCodeHash``; a code of a campaign that does not
        exist is refused like the database's foreign key refuses it (``ConstraintViolation``)."""
        if code.code_hash in self._s.code_hashes:
            raise DuplicateCodeHash(code.code_hash)
        if code.campaign_id not in self._s.campaigns:
            raise ConstraintViolation(f"no campaign {code.campaign_id}")
        new_id = self._s.next_id("promo_codes")
        stored = self._write(self._s.codes, new_id, attrs.evolve(code, id=new_id))
        self._u.set(self._s.code_hashes, stored.code_hash, new_id)
        return stored

    def add_many(self, codes: Sequence[PromoCode]) -> list[int]:
        """Bulk insert, all or nothing; returns the ids in input order. Raises ``DuplicateCodeHash`` for a hash
        stored already or repeated in ``codes``."""
        batch = [c.code_hash for c in codes]
        if len(set(batch)) != len(batch) or any(h in self._s.code_hashes for h in batch):
            raise DuplicateCodeHash("duplicate code hash in bulk insert")
        missing = {c.campaign_id for c in codes} - self._s.campaigns.keys()
        if missing:
            raise ConstraintViolation(f"no campaign {sorted(missing)}")
        ids: list[int] = []
        for code in codes:
            stored = self.add(code)
            assert stored.id is not None
            ids.append(stored.id)
        return ids

    def get(self, promo_code_id: int) -> PromoCode | None:
        return self._s.codes.get(promo_code_id)

    def get_many(self, promo_code_ids: Sequence[int]) -> dict[int, PromoCode]:
        return {i: self._s.codes[i] for i in promo_code_ids if i in self._s.codes}

    def get_by_hashes(self, code_hashes: Sequence[str]) -> PromoCode | None:
        """The code whose ``code_hash`` is any of ``code_hashes`` (the first hash that matches wins)."""
        for h in code_hashes:
            promo_code_id = self._s.code_hashes.get(h)
            if promo_code_id is not None:
                return self._s.codes[promo_code_id]
        return None

    def existing_hashes(self, code_hashes: Sequence[str]) -> set[str]:
        return {h for h in code_hashes if h in self._s.code_hashes}

    def search(self, flt: CodeFilter, limit: int, after_id: int | None) -> list[PromoCode]:
        """Codes matching ``flt`` by id, starting after ``after_id``: ``campaign_id`` and ``status`` equal, the
        code's ``code_prefix`` starting with ``flt.code_prefix`` (1..4 characters)."""
        found = [
            c for c in self._s.codes.values()
            if (after_id is None or (c.id or 0) > after_id)
            and (flt.campaign_id is None or c.campaign_id == flt.campaign_id)
            and (flt.status is None or c.status is flt.status)
            and (flt.code_prefix is None or c.code_prefix.startswith(flt.code_prefix))
        ]
        return _by_id(found)[:max(limit, 0)]

    def set_status(
        self,
        promo_code_id: int,
        expected: Sequence[CampaignStatus],
        status: CampaignStatus,
        paused_reason: PausedReason | None,
        now: datetime,
    ) -> PromoCode | None:
        """Move to ``status`` only from one of ``expected``; None when the row is elsewhere."""
        code = self._s.codes.get(promo_code_id)
        if code is None or code.status not in expected:
            return None
        updated: PromoCode = _with_status(code, status, paused_reason, now)
        return self._write(self._s.codes, promo_code_id, updated)

    def expire_for_campaign(self, campaign_id: int, now: datetime) -> int:
        """The campaign's ACTIVE and PAUSED codes -> EXPIRED; returns how many."""
        due = [c for c in self._s.codes.values() if c.campaign_id == campaign_id and c.status in _LIVE_STATES]
        for code in due:
            self._write(self._s.codes, code.id, _with_status(code, CampaignStatus.EXPIRED, None, now))
        return len(due)

    def copy_campaign_fields(self, campaign_id: int, name: str, valid_until: datetime | None, now: datetime) -> int:
        """The campaign's ``name`` and ``valid_until`` onto the copies of every code of it (``updated_at = now``);
        returns how many codes the campaign has."""
        mine = [code for code in self._s.codes.values() if code.campaign_id == campaign_id]
        for code in mine:
            self._write(self._s.codes, code.id,
                        attrs.evolve(code, campaign_name=name, valid_until=valid_until, updated_at=now))
        return len(mine)

    def claim_capacity(self, promo_code_id: int, now: datetime) -> tuple[PromoCode, Campaign] | None:
        """One unit from the code's cap and its campaign's budget together: both ``used_total + 1`` while both are
        ACTIVE and below their ``max_total_uses``, or neither (None)."""
        code = self._s.codes.get(promo_code_id)
        if code is None or code.status is not CampaignStatus.ACTIVE or code.capacity_used_up():
            return None
        campaign = self._s.campaigns.get(code.campaign_id)
        if campaign is None or campaign.status is not CampaignStatus.ACTIVE or campaign.capacity_used_up():
            return None
        claimed_code = self._write(self._s.codes, promo_code_id,
                                   attrs.evolve(code, used_total=code.used_total + 1, updated_at=now))
        claimed_campaign = self._write(self._s.campaigns, code.campaign_id,
                                       attrs.evolve(campaign, used_total=campaign.used_total + 1, updated_at=now))
        return claimed_code, claimed_campaign

    def release_capacity_many(self, units: Mapping[int, int], now: datetime) -> None:
        """``used_total - units`` for many codes (never below zero). Their campaigns are not touched:
        ``Campaigns.release_capacity_many`` gives the campaigns' units back."""
        for promo_code_id in sorted(units):
            code = self._s.codes.get(promo_code_id)
            if code is not None and code.used_total > 0 and units[promo_code_id] > 0:
                left = max(0, code.used_total - units[promo_code_id])
                self._write(self._s.codes, promo_code_id, attrs.evolve(code, used_total=left, updated_at=now))

    def due_for_depletion(self, limit: int) -> list[PromoCode]:
        """ACTIVE codes that reached their own cap and have no RESERVED redemption, by id."""
        reserving = {r.promo_code_id for r in self._s.redemptions.values() if r.status is RedemptionStatus.RESERVED}
        due = [
            c for c in self._s.codes.values()
            if c.status is CampaignStatus.ACTIVE and c.capacity_used_up() and c.id not in reserving
        ]
        return _by_id(due)[:limit]

    def active_with_hashes(self, code_hashes: Sequence[str]) -> list[PromoCode]:
        """ACTIVE codes (whatever their campaign's status) with one of ``code_hashes``, by id."""
        ids = {self._s.code_hashes[h] for h in code_hashes if h in self._s.code_hashes}
        return _by_id(c for c in (self._s.codes[i] for i in ids) if c.status is CampaignStatus.ACTIVE)

    def count_paused(self, since: datetime | None = None) -> int:
        """Codes PAUSED on their own; with ``since``, only those whose last change is at or after it."""
        return sum(
            1 for c in self._s.codes.values()
            if c.status is CampaignStatus.PAUSED and (since is None or c.updated_at >= since)
        )


class InMemoryAuditLog(MemoryTable):
    """The ``audit_log`` table (port ``AuditLog``): append only; an entry rolls back with its change."""

    def add(self, entry: AuditEntry) -> AuditEntry:
        # The details are copied: a caller changing its dict afterwards must not rewrite history.
        return self._append(self._s.audit, attrs.evolve(entry, id=self._s.next_id("audit_log"),
                                                        details=copy.deepcopy(entry.details)))

    def search(self, flt: AuditFilter, limit: int, before_id: int | None) -> list[AuditEntry]:
        """Entries matching ``flt`` (each given field equal), newest first (by id), starting below ``before_id``."""
        found = [
            e for e in self._s.audit
            if (before_id is None or (e.id or 0) < before_id)
            and (flt.actor is None or e.actor == flt.actor)
            and (flt.action is None or e.action == flt.action)
            and (flt.target_type is None or e.target_type == flt.target_type)
            and (flt.target_id is None or e.target_id == flt.target_id)
        ]
        return _by_id(found)[::-1][:max(limit, 0)]
