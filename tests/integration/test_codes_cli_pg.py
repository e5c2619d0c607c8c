"""SPEC 10 on real PostgreSQL, through the installed ``starpromo`` command: bulk generation (COPY) whose
codes are unique, redeemable and absent from the database in plaintext; all-or-nothing CSV import."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.model import RedeemResult
from entrypoints.container import build_container
from entrypoints.settings import Settings
from tests.conftest import required_env

PEPPER = "integration-pepper"
STARPROMO = str(Path(sys.executable).parent / "starpromo")


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh, migrated database of its own (parallel test files never share one)."""
    admin_url = required_env("STARPROMO_TEST_PG_ADMIN_URL")
    name = f"starpromo_codes_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        proc = starpromo(url, "db", "upgrade")
        assert proc.returncode == 0, proc.stderr
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def starpromo(url: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "PROMO_SECRET_PEPPER": PEPPER}
    env.pop("REDIS_URL", None)
    return subprocess.run([STARPROMO, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def count_codes(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM promo_codes")).scalar_one())
    finally:
        engine.dispose()


def test_generate_2000_codes_unique_redeemable_and_never_stored_in_plaintext(
    database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.csv"
    proc = starpromo(database_url, "codes", "generate", "--campaign-name", "pg bulk", "--count", "2000",
                     "--prefix", "PGB", "--type", "PREMIUM_GRANT", "--grant-plan-code", "PREMIUM", "--grant-days",
                     "7", "--max-total-uses", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # not a terminal: no progress bar
    rows = read_report(out)
    assert len(rows) == 2000
    codes = [r["code"] for r in rows]
    assert len(set(codes)) == 2000
    assert len({r["promo_code_id"] for r in rows}) == 2000
    assert count_codes(database_url) == 2000

    # no plaintext anywhere in the database: neither in any text column nor in a full dump
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            text_columns = conn.execute(sa.text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'character', "
                "'json', 'jsonb', 'ARRAY')")).all()
            assert ("promo_codes", "code_hash") in {(t, c) for t, c in text_columns}
            stored_text = []
            for table, column in text_columns:
                stored_text += [str(v) for (v,) in conn.execute(
                    sa.text(f'SELECT "{column}"::text FROM "{table}" WHERE "{column}" IS NOT NULL'))]
    finally:
        engine.dispose()
    blob = "\n".join(stored_text)
    assert not [c for c in codes if c in blob]
    pg_dump = Path(required_env("STARPROMO_TEST_PG_BIN")) / "pg_dump"
    dump = subprocess.run([str(pg_dump), "--dbname", database_url.replace("+psycopg", ""), "--data-only"],
                          capture_output=True, text=True, timeout=120, check=True).stdout
    assert "PGB" in dump  # the dump has the rows (code_prefix) ...
    assert not [c for c in codes if c in dump]  # ... but no code

    # every code redeems through the domain service on the same database
    container = build_container(Settings.from_env({"DATABASE_URL": database_url, "PROMO_SECRET_PEPPER": PEPPER}))
    service = container.redemption_service()
    for i, row in enumerate(rows):
        outcome = service.redeem(10_000 + i, row["code"].lower(), f"pg-bulk-{i}")
        assert outcome.result is RedeemResult.ACCEPTED, row
        assert outcome.campaign is not None and outcome.campaign.id == int(row["promo_code_id"])


HEADER = "code,campaign_name,promo_type,discount_percent,grant_plan_code,grant_days,max_total_uses"


def test_import_with_one_bad_row_inserts_nothing_and_a_clean_file_inserts_all(
    database_url: str, tmp_path: Path
) -> None:
    good = [f"IMPORT-{i:04d},pg import,PERCENT_DISCOUNT,10,,,5" for i in range(300)]
    bad_file = tmp_path / "bad.csv"
    bad_file.write_text("\n".join([HEADER, *good[:150], "IMPORT-BAD1,pg import,PREMIUM_GRANT,,,30,", *good[150:]])
                        + "\n")
    proc = starpromo(database_url, "codes", "import", "--csv", str(bad_file), "--out", str(tmp_path / "bad-r.csv"))
    assert proc.returncode == 1
    assert f"{bad_file}:line 152: grant_plan_code: required for PREMIUM_GRANT" in proc.stderr
    assert "nothing was inserted" in proc.stderr
    assert count_codes(database_url) == 0
    assert not (tmp_path / "bad-r.csv").exists()

    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join([HEADER, *good, "GIFT-PG-0001,pg import,PREMIUM_GRANT,,PREMIUM,30,1"]) + "\n")
    out = tmp_path / "clean-r.csv"
    proc = starpromo(database_url, "codes", "import", "--csv", str(clean), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = read_report(out)
    assert len(rows) == 301 and count_codes(database_url) == 301
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            ids = {int(i) for (i,) in conn.execute(sa.text("SELECT id FROM promo_codes"))}
    finally:
        engine.dispose()
    assert {int(r["promo_code_id"]) for r in rows} == ids

    # the same file again: every row is already stored, nothing changes
    proc = starpromo(database_url, "codes", "import", "--csv", str(clean), "--out", str(tmp_path / "again.csv"))
    assert proc.returncode == 1
    assert "line 2: code: already stored" in proc.stderr and "import rejected: 301 problem(s)" in proc.stderr
    assert count_codes(database_url) == 301
