"""The application under test, wired through the real composition root against a bench database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from adapters.sql import code_counts
from bench.core import PEPPER, TOKEN, libpq_url
from domain.campaigns import CampaignSpec
from domain.code_files import CodeTerms, GeneratedRow, ReportRow
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings

ACTOR = "cli:bench"


def container_for(database_url: str) -> Container:
    settings = Settings(database_url=database_url, promo_secret_pepper=PEPPER, internal_api_token=TOKEN)
    return build_container(settings)


def close(container: Container) -> None:
    """Release the container's resources and close its pooled connections (a database with open
    sessions can be neither dropped nor used as a template)."""
    container.shutdown_resources()
    container.sql_engines().dispose()


class CollectingSink:
    """A report sink that keeps (promo_code_id, code) pairs in memory."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str]] = []

    def write(self, rows: Sequence[ReportRow]) -> None:
        self.rows.extend((int(r["promo_code_id"]), r["code"]) for r in rows)

    def write_generated(self, shared: ReportRow, rows: Sequence[GeneratedRow]) -> None:
        self.rows.extend((int(r[0]), r[1]) for r in rows)

    def close(self) -> None:
        pass


def seed_codes(container: Container, spec: CampaignSpec, count: int, code_cap: int | None = None
               ) -> tuple[int, list[tuple[int, str]]]:
    """``count`` codes (each with its own cap ``code_cap``) of ONE campaign ``spec`` through the bulk service
    (``BatchService.generate``, as ``codes generate`` does): (campaign id, [(promo_code_id, plaintext code)] in id
    order)."""
    sink = CollectingSink()
    result = container.batch_service().generate(CodeTerms(spec, code_cap, frozenset()), count, sink, actor=ACTOR)
    assert result.campaign is not None and result.campaign.id is not None
    return result.campaign.id, sorted(sink.rows)


def recount_codes(conn: psycopg.Connection[Any]) -> None:
    """``promo_code_counts`` rebuilt from the codes, after codes were added, moved or changed with plain SQL (the
    app keeps the counts on every change it makes itself; migration 0010 fills them the same way)."""
    for statement in code_counts.RECOUNT:
        conn.execute(statement)


def seed_campaigns(container: Container, spec: CampaignSpec, count: int, code_cap: int | None = None
                   ) -> list[tuple[int, str]]:
    """``count`` codes, each the only code of a campaign of its own (distinct campaigns: no two codes share a
    campaign row). The codes come from the bulk service into one campaign ``spec``; then one set-based statement
    gives each its own copy of that campaign (named ``<name>#<code id>``, created in code id order, so that
    campaign id - code id is the same for every code: see ``campaign_offset``) and the emptied campaign is
    deleted. [(promo_code_id, plaintext code)] in id order."""
    campaign_id, codes = seed_codes(container, spec, count, code_cap)
    url = container.settings().database_url
    cols = ("promo_type, grant_plan_code, grant_days, discount_percent, discount_stars, applicable_products, "
            "target_scope, status, paused_reason, valid_from, valid_until, max_total_uses, per_user_limit, "
            "used_total, created_at, updated_at")
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(f"""
            INSERT INTO promo_campaigns (name, {cols})
            SELECT c.name || '#' || p.id, {', '.join('c.' + x.strip() for x in cols.split(','))}
            FROM promo_codes p JOIN promo_campaigns c ON c.id = p.campaign_id
            WHERE p.campaign_id = %s ORDER BY p.id""", [campaign_id])
        conn.execute("""
            UPDATE promo_codes p SET campaign_id = c.id, campaign_name = c.name
            FROM promo_campaigns c, promo_campaigns old
            WHERE old.id = %s AND p.campaign_id = old.id AND c.name = old.name || '#' || p.id""", [campaign_id])
        recount_codes(conn)
        conn.execute("DELETE FROM promo_campaigns WHERE id = %s", [campaign_id])
    return codes


def campaign_offset(database_url: str, first_code_id: int, last_code_id: int) -> int | None:
    """campaign id - code id when it is the same for every code in the id range (``seed_campaigns`` makes it so),
    else None."""
    rows = query(database_url, "SELECT min(campaign_id - id), max(campaign_id - id), count(*), "
                               "count(DISTINCT campaign_id) FROM promo_codes WHERE id BETWEEN %s AND %s",
                 [first_code_id, last_code_id])
    lo, hi, n, campaigns = rows[0]
    return int(lo) if lo is not None and lo == hi and n == campaigns else None


def query(database_url: str, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute(sql, params).fetchall()


def execute(database_url: str, sql: str, params: Sequence[Any] | None = None) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(sql, params)
