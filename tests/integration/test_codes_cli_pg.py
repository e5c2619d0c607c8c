"""SPEC 10 on real PostgreSQL, through the installed ``starpromo`` command: a giveaway of 20,000 generated codes
(COPY) is one campaign whose codes are unique, absent from the database in plaintext, paused and resumed as a whole
and held once per user; generation into a campaign with other terms and a CSV import are all-or-nothing."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.model import RedeemResult
from domain.redemption import RedeemOutcome
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


def count_rows(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one())
    finally:
        engine.dispose()


def count_codes(url: str) -> int:
    return count_rows(url, "promo_codes")


def leaked(codes: set[str], text: str, length: int) -> list[str]:
    """The codes that appear in ``text``: every window of ``length`` characters looked up in the set (a substring
    search per code would take minutes for 20,000 codes in a dump of megabytes)."""
    return [w for w in (text[i:i + length] for i in range(len(text) - length + 1)) if w in codes]


def redeem_all(redeem: Callable[[int, str, str], RedeemOutcome], codes: list[str], first_user: int, key: str
               ) -> Counter[RedeemResult]:
    """Each code redeemed by its own user (so throttling never decides), eight at a time."""
    def one(i: int) -> RedeemResult:
        return redeem(first_user + i, codes[i], f"{key}-{i}").result

    with ThreadPoolExecutor(max_workers=8) as pool:
        return Counter(pool.map(one, range(len(codes))))


GIVEAWAY = 20_000
CODE_LENGTH = 12


def test_a_giveaway_of_20000_codes_is_one_campaign_paused_and_resumed_as_a_whole(
    database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "giveaway.csv"
    proc = starpromo(database_url, "codes", "generate", "--campaign-name", "giveaway", "--count", str(GIVEAWAY),
                     "--max-total-uses", "1", "--per-user-limit", "1", "--prefix", "GIVE", "--length",
                     str(CODE_LENGTH), "--type", "PERCENT_DISCOUNT", "--discount-percent", "50", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # not a terminal: no progress bar
    # (ids come from sequences, which may skip a value: the campaign's id is read, not assumed)
    created = re.fullmatch(rf"inserted {GIVEAWAY} codes into new campaign (\d+) 'giveaway'; report: \S+\n",
                           proc.stdout)
    assert created is not None, proc.stdout
    campaign_id = created.group(1)
    rows = read_report(out)
    codes = [r["code"] for r in rows]
    assert len(set(codes)) == len({r["promo_code_id"] for r in rows}) == GIVEAWAY
    assert {r["campaign_id"] for r in rows} == {campaign_id}
    assert count_codes(database_url) == GIVEAWAY and count_rows(database_url, "promo_campaigns") == 1

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
    code_set = set(codes)
    assert leaked(code_set, "\n".join(stored_text), CODE_LENGTH) == []
    pg_dump = Path(required_env("STARPROMO_TEST_PG_BIN")) / "pg_dump"
    dump = subprocess.run([str(pg_dump), "--dbname", database_url.replace("+psycopg", ""), "--data-only"],
                          capture_output=True, text=True, timeout=120, check=True).stdout
    assert "GIVE" in dump  # the dump has the rows (code_prefix) ...
    assert leaked(code_set, dump, CODE_LENGTH) == []  # ... but no code

    listed = starpromo(database_url, "campaigns", "list")
    assert listed.returncode == 0, listed.stderr
    assert [line.split() for line in listed.stdout.splitlines()[1:]] == [
        [campaign_id, "giveaway", "PERCENT_DISCOUNT", "ACTIVE", str(GIVEAWAY), "0/-", "1"]]

    container = build_container(Settings.from_env({"DATABASE_URL": database_url, "PROMO_SECRET_PEPPER": PEPPER}))
    redeem = container.redemption_service().redeem
    paused = starpromo(database_url, "campaigns", "pause", campaign_id, "--reason", "draw postponed")
    assert paused.returncode == 0, paused.stderr
    assert redeem_all(redeem, codes, 100_000, "paused") == Counter({RedeemResult.PAUSED: GIVEAWAY})

    resumed = starpromo(database_url, "campaigns", "resume", campaign_id)
    assert resumed.returncode == 0, resumed.stderr
    assert redeem(1, codes[0].lower(), "user-1-first").result is RedeemResult.ACCEPTED
    assert redeem(1, codes[1], "user-1-second").result is RedeemResult.ALREADY_USED
    # Every code answered PAUSED above; back ACTIVE, every tenth code across the batch is enough to show it.
    sample = codes[2::10]
    assert redeem_all(redeem, sample, 200_000, "resumed") == Counter({RedeemResult.ACCEPTED: len(sample)})

    shown = starpromo(database_url, "campaigns", "list", "--json")
    [item] = json.loads(shown.stdout)["items"]
    assert (item["used_total"], item["codes_total"]) == (1 + len(sample), GIVEAWAY)
    audit = json.loads(starpromo(database_url, "audit", "--json").stdout)["items"]
    assert [(e["actor"].startswith("cli:"), e["action"]) for e in audit] == [
        (True, "campaign.resumed"), (True, "campaign.paused"), (True, "codes.generated")]


def test_generate_into_the_campaign_with_other_terms_inserts_nothing(database_url: str, tmp_path: Path) -> None:
    base = ["codes", "generate", "--campaign-name", "spring", "--type", "PERCENT_DISCOUNT", "--count", "50"]
    proc = starpromo(database_url, *base, "--discount-percent", "20", "--out", str(tmp_path / "a.csv"))
    assert proc.returncode == 0, proc.stderr
    proc = starpromo(database_url, *base, "--discount-percent", "30", "--out", str(tmp_path / "b.csv"))
    assert proc.returncode != 0 and proc.stdout == ""
    assert re.fullmatch(r"error: --discount-percent: differs from campaign \d+ \('spring'\), which has 20\n",
                        proc.stderr), proc.stderr
    assert count_codes(database_url) == 50 and not (tmp_path / "b.csv").exists()
    proc = starpromo(database_url, *base, "--discount-percent", "20", "--out", str(tmp_path / "c.csv"))
    assert proc.returncode == 0, proc.stderr
    assert count_codes(database_url) == 100 and count_rows(database_url, "promo_campaigns") == 1


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
    clean.write_text("\n".join([HEADER, *good, "GIFT-PG-0001,pg gift,PREMIUM_GRANT,,PREMIUM,30,1"]) + "\n")
    out = tmp_path / "clean-r.csv"
    proc = starpromo(database_url, "codes", "import", "--csv", str(clean), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = read_report(out)
    assert len(rows) == 301 and count_codes(database_url) == 301
    assert count_rows(database_url, "promo_campaigns") == 2
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
