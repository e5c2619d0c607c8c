"""The application under test, wired through the real composition root against a bench database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from bench.core import PEPPER, TOKEN, libpq_url
from domain.batch import GeneratedRow, ReportRow
from domain.campaigns import CampaignSpec
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings


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


def seed_campaigns(container: Container, spec: CampaignSpec, count: int) -> list[tuple[int, str]]:
    """``count`` codes of ``spec`` through the bulk service; (id, plaintext code) in id order."""
    sink = CollectingSink()
    container.batch_service().generate(spec, count, sink)
    return sorted(sink.rows)


def query(database_url: str, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute(sql, params).fetchall()


def execute(database_url: str, sql: str, params: Sequence[Any] | None = None) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(sql, params)
