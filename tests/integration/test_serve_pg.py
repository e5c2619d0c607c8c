"""``starpromo serve`` as a real process on a fresh, migrated PostgreSQL database, called over real HTTP
(SPEC 7, SPEC 13): every endpoint family, every redeem outcome a real run can produce, exact capacity
under 100 concurrent clients, and no plaintext code in any table (``pg_dump``) or in the server's log.

Why this file stays whole (a little over 500 lines): its tests share one server process and one database, and
the last test depends on all the others. Every test records the plaintext codes it sends in ``SENT_CODES``, and
the final no-plaintext check reads that list against a ``pg_dump`` of everything the earlier tests wrote and the
server's whole log. Split across modules, the check would see only its own module's traffic (or depend on the
order pytest collects the modules in), which would make the strongest check here weaker without anyone noticing."""

from __future__ import annotations

import itertools
import subprocess
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from adapters.sql.engine import EngineHolder
from domain.codes import hmac_hash, normalize_code
from entrypoints.container import build_container
from entrypoints.settings import Settings
from tests.conftest import required_env
from tests.fakes.bot_api import FakeBotApi
from tests.sql import fresh_pg_database, live_units_mismatch
from tests.unit.http.server import AUTH, PEPPER, Server, migrate

CAMPAIGNS = "/internal/promo/campaigns"
REDEEM = "/internal/promo/redeem"

# Every plaintext code any test here sends to the server (as typed), for the final no-plaintext check.
SENT_CODES: list[str] = []


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_pg_database("starpromo_serve") as url:
        migrate(url)  # `starpromo db upgrade`, as an operator would, before the first start
        yield url


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(database_url, tmp_path_factory.mktemp("serve-pg") / "serve.log")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def engines(database_url: str) -> Iterator[EngineHolder]:
    holder = EngineHolder(database_url, 2)
    try:
        yield holder
    finally:
        holder.dispose()


def _iso(moment: datetime) -> str:
    return moment.isoformat()


_campaign_numbers = itertools.count(1)


def create(server: Server, code: str, **fields: Any) -> dict[str, Any]:
    """A campaign (a numbered name unless ``name`` is given: names are unique, and never carry a code) with
    ``code`` as its first code: the campaign JSON, whose ``code`` member is the code's row."""
    body: dict[str, Any] = {"code": code, "name": fields.pop("name", f"pg smoke {next(_campaign_numbers)}"),
                            "promo_type": "PERCENT_DISCOUNT", "discount_percent": 20}
    if fields.get("promo_type") == "PREMIUM_GRANT":
        body.pop("discount_percent")
    body.update(fields)
    SENT_CODES.append(code)
    r = server.post(CAMPAIGNS, body)
    assert r.status_code == 201, r.text
    campaign: dict[str, Any] = r.json()
    assert campaign["code"]["campaign_id"] == campaign["id"], campaign
    return campaign


def redeem(server: Server, user_id: int, code: str, key: str) -> requests.Response:
    SENT_CODES.append(code)
    return server.post(REDEEM, {"user_id": user_id, "code": code, "idempotency_key": key})


def rejected(response: requests.Response, status: int, result: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"result", "error"}
    assert body["result"] == result and body["error"]["code"] == result and body["error"]["message"]
    return body


def error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert "Traceback" not in response.text
    return dict(body["error"])


def scalar(engines: EngineHolder, sql: str, **params: Any) -> Any:
    with engines.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def end_now(engines: EngineHolder, campaign_id: int) -> None:
    """Time passes: the campaign's ``valid_until`` (and its codes' copies) is a minute ago. The API refuses a
    ``valid_until`` in the past, so a test that needs one moves it in the database."""
    with engines.engine.begin() as conn:
        for table, key in (("promo_campaigns", "id"), ("promo_codes", "campaign_id")):
            conn.execute(sa.text(f"UPDATE {table} SET valid_until = now() - interval '1 minute' WHERE {key} = :id"),
                         {"id": campaign_id})


# --- health ------------------------------------------------------------------------------------------------


def test_healthz_and_readyz_answer_on_a_reachable_database(server: Server) -> None:
    live = server.get("/healthz", headers={})
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = server.get("/readyz", headers={})
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "database": "ok", "redis": "not_configured"}


# --- redeem: every SPEC 7 outcome --------------------------------------------------------------------------


def test_discount_code_is_accepted_with_a_reservation_and_the_same_key_replays_it(
        server: Server, engines: EngineHolder) -> None:
    campaign = create(server, "PGS-DISC-7K2Q", discount_percent=15)
    r = redeem(server, 101, "pgs disc 7k2q", "pg-disc-1")
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["result"] == "ACCEPTED" and first["replayed"] is False
    red = first["redemption"]
    assert (red["promo_code_id"], red["campaign_id"], red["user_id"]) == (campaign["code"]["id"], campaign["id"], 101)
    assert red["status"] == "RESERVED" and red["discount_percent"] == 15 and red["reserved_until"]
    assert red["promo_type"] == "PERCENT_DISCOUNT" and red["discount_stars"] is None
    again = redeem(server, 101, "PGSDISC7K2Q", "pg-disc-1")
    assert again.status_code == 200
    assert again.json() == {**first, "replayed": True}
    assert scalar(engines, "SELECT used_total FROM promo_codes WHERE id = :id", id=campaign["code"]["id"]) == 1
    assert scalar(engines, "SELECT used_total FROM promo_campaigns WHERE id = :id", id=campaign["id"]) == 1
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE idempotency_key = 'pg-disc-1'") == 1


def test_stars_discount_code_is_reserved_with_its_stars_snapshot(server: Server) -> None:
    create(server, "PGS-STAR-40OF", promo_type="STARS_DISCOUNT", discount_percent=None, discount_stars=40)
    r = redeem(server, 112, "PGSSTAR40OF", "pg-stars-1")
    assert r.status_code == 200, r.text
    red = r.json()["redemption"]
    assert (red["promo_type"], red["status"], red["discount_stars"], red["discount_percent"]) == (
        "STARS_DISCOUNT", "RESERVED", 40, None)


def test_grant_code_is_accepted_applied_and_grants_the_entitlement(server: Server, engines: EngineHolder) -> None:
    create(server, "PGS-GIFT-30DY", promo_type="PREMIUM_GRANT", grant_plan_code="PREMIUM", grant_days=30)
    r = redeem(server, 102, "PGSGIFT30DY", "pg-gift-1")
    assert r.status_code == 200, r.text
    red = r.json()["redemption"]
    assert red["status"] == "APPLIED" and red["grant_plan_code"] == "PREMIUM" and red["grant_days"] == 30
    assert scalar(engines, "SELECT count(*) FROM entitlements WHERE user_id = 102") == 1


def test_unknown_and_malformed_codes_are_invalid_404(server: Server) -> None:
    rejected(redeem(server, 103, "PGSNOSUCHCODE9", "pg-inv-1"), 404, "INVALID")
    rejected(redeem(server, 103, "a!", "pg-inv-2"), 404, "INVALID")


def test_paused_campaign_is_422_and_redeems_again_once_resumed(server: Server) -> None:
    c = create(server, "PGS-PAUS-4M8N")
    path = f"{CAMPAIGNS}/{c['id']}/status"
    assert server.post(path, {"status": "PAUSED", "reason": "typo"}).json()["status"] == "PAUSED"
    rejected(redeem(server, 104, "PGSPAUS4M8N", "pg-paused-1"), 422, "PAUSED")
    assert server.post(path, {"status": "ACTIVE"}).json()["status"] == "ACTIVE"
    assert redeem(server, 104, "PGSPAUS4M8N", "pg-paused-2").status_code == 200


def test_past_valid_until_is_expired_422_and_future_valid_from_is_not_applicable_422(
        server: Server, engines: EngineHolder) -> None:
    now = datetime.now(UTC)
    over = create(server, "PGS-OVER-2026", valid_until=_iso(now + timedelta(days=1)))
    end_now(engines, over["id"])
    create(server, "PGS-SOON-2026", valid_from=_iso(now + timedelta(days=1)))
    rejected(redeem(server, 105, "PGSOVER2026", "pg-exp-1"), 422, "EXPIRED")
    rejected(redeem(server, 105, "PGSSOON2026", "pg-na-1"), 422, "NOT_APPLICABLE")


def test_used_up_campaign_is_depleted_422(server: Server) -> None:
    create(server, "PGS-ONCE-9X3C", max_total_uses=1)
    assert redeem(server, 106, "PGSONCE9X3C", "pg-dep-1").status_code == 200
    rejected(redeem(server, 107, "PGSONCE9X3C", "pg-dep-2"), 422, "DEPLETED")


def test_a_used_up_code_is_depleted_while_another_code_of_its_campaign_still_redeems(server: Server) -> None:
    c = create(server, "PGS-SOLO-1A2B", code_max_total_uses=1, max_total_uses=2)
    added = server.post(f"{CAMPAIGNS}/{c['id']}/codes", {"code": "PGS-SOLO-3C4D", "max_total_uses": 5})
    assert added.status_code == 201, added.text
    SENT_CODES.append("PGS-SOLO-3C4D")
    assert added.json()["campaign_id"] == c["id"] and added.json()["max_total_uses"] == 5
    assert redeem(server, 113, "PGSSOLO1A2B", "pg-solo-1").status_code == 200
    rejected(redeem(server, 114, "PGSSOLO1A2B", "pg-solo-2"), 422, "DEPLETED")  # the code's own cap
    assert redeem(server, 114, "PGSSOLO3C4D", "pg-solo-3").status_code == 200
    rejected(redeem(server, 115, "PGSSOLO3C4D", "pg-solo-4"), 422, "DEPLETED")  # the campaign's budget
    # The budget raised: the second code redeems again; the first stays at its own cap.
    patched = requests.patch(server.url + f"{CAMPAIGNS}/{c['id']}", json={"max_total_uses": 3}, headers=AUTH,
                             timeout=10)
    assert patched.status_code == 200 and patched.json()["max_total_uses"] == 3, patched.text
    assert redeem(server, 115, "PGSSOLO3C4D", "pg-solo-5").status_code == 200
    rejected(redeem(server, 116, "PGSSOLO1A2B", "pg-solo-6"), 422, "DEPLETED")
    view = server.get(f"{CAMPAIGNS}/{c['id']}").json()
    assert (view["used_total"], view["codes_total"]) == (3, 2)


def test_a_paused_code_is_422_while_its_campaign_and_other_codes_stay_active(server: Server) -> None:
    c = create(server, "PGS-CPAU-5E6F")
    other = server.post(f"{CAMPAIGNS}/{c['id']}/codes", {"code": "PGS-CPAU-7G8H"})
    assert other.status_code == 201, other.text
    SENT_CODES.append("PGS-CPAU-7G8H")
    path = f"/internal/promo/codes/{c['code']['id']}/status"
    paused = server.post(path, {"status": "PAUSED", "reason": "leaked"})
    assert paused.status_code == 200 and paused.json()["status"] == "PAUSED", paused.text
    rejected(redeem(server, 117, "PGSCPAU5E6F", "pg-cpause-1"), 422, "PAUSED")
    assert redeem(server, 117, "PGSCPAU7G8H", "pg-cpause-2").status_code == 200
    assert server.get(f"{CAMPAIGNS}/{c['id']}").json()["status"] == "ACTIVE"
    assert server.post(path, {"status": "ACTIVE"}).json()["status"] == "ACTIVE"


def test_same_user_same_campaign_is_already_used_409_and_a_reused_key_is_409(server: Server) -> None:
    create(server, "PGS-USED-5T7W")
    create(server, "PGS-OTHR-5T7W")
    assert redeem(server, 108, "PGSUSED5T7W", "pg-used-1").status_code == 200
    rejected(redeem(server, 108, "PGSUSED5T7W", "pg-used-2"), 409, "ALREADY_USED")
    rejected(redeem(server, 108, "PGSOTHR5T7W", "pg-used-1"), 409, "IDEMPOTENCY_KEY_REUSED")
    rejected(redeem(server, 109, "PGSUSED5T7W", "pg-used-1"), 409, "IDEMPOTENCY_KEY_REUSED")


def test_five_failures_block_the_user_with_429_and_retry_after(server: Server) -> None:
    create(server, "PGS-RATE-8H6J")
    for i in range(5):
        rejected(redeem(server, 110, f"PGSWRONG{i}CODE", f"pg-rate-{i}"), 404, "INVALID")
    r = redeem(server, 110, "PGSRATE8H6J", "pg-rate-last")
    body = rejected(r, 429, "RATE_LIMITED")
    retry_after = int(r.headers["Retry-After"])
    assert 3500 < retry_after <= 3600 and body["error"]["details"] == {"retry_after_seconds": retry_after}
    assert redeem(server, 111, "PGSRATE8H6J", "pg-rate-other").status_code == 200  # other users are not blocked


def test_bad_redeem_input_is_400_naming_each_field(server: Server) -> None:
    err = error(server.post(REDEEM, {"code": "PGSX1234"}), 400, "VALIDATION_ERROR")
    assert {d["field"] for d in err["details"]} == {"user_id", "idempotency_key"}
    err = error(server.post(REDEEM, {"user_id": -1, "code": "PGSX1234", "idempotency_key": "k"}), 400,
                "VALIDATION_ERROR")
    assert [d["field"] for d in err["details"]] == ["user_id"]
    SENT_CODES.append("PGSX1234")
    error(requests.post(server.url + REDEEM, data=b"{not json", headers={**AUTH, "Content-Type": "application/json"},
                        timeout=10), 400, "VALIDATION_ERROR")
    error(server.post(REDEEM, {"user_id": 1, "code": "PGSX1234", "idempotency_key": "k"}, headers={}),
          401, "UNAUTHORIZED")


# --- campaigns ---------------------------------------------------------------------------------------------


def test_campaign_create_list_get_and_status_over_http(server: Server, engines: EngineHolder) -> None:
    c = create(server, "PGS-Camp-A1b2", name="pg catalogue spring", discount_percent=30,
               applicable_products=["PREMIUM_30D"], max_total_uses=10, per_user_limit=2)
    code = c["code"]
    assert code["code_hash"] == hmac_hash(PEPPER, "PGSCAMPA1B2") and code["code_prefix"] == "PGSC"
    assert "code" not in code and code["campaign_name"] == "pg catalogue spring"
    assert c["status"] == "ACTIVE" and c["applicable_products"] == ["PREMIUM_30D"] and c["used_total"] == 0
    assert (c["name"], c["max_total_uses"], c["per_user_limit"], c["codes_total"]) == (
        "pg catalogue spring", 10, 2, 1)
    assert "PGSCAMPA1B2" not in server.get(f"{CAMPAIGNS}/{c['id']}").text.upper()
    SENT_CODES.append("pgs camp a1b2")
    error(server.post(CAMPAIGNS, {"code": "pgs camp a1b2", "name": "dup", "promo_type": "PERCENT_DISCOUNT",
                                  "discount_percent": 5}), 409, "CODE_EXISTS")
    # A taken name: nothing is created, so the code sent with it is still free afterwards.
    SENT_CODES.append("PGS-Camp-N0n0")
    error(server.post(CAMPAIGNS, {"code": "PGS-Camp-N0n0", "name": "pg catalogue spring",
                                  "promo_type": "PERCENT_DISCOUNT", "discount_percent": 5}), 409, "CAMPAIGN_EXISTS")
    assert not server.get(CAMPAIGNS + "?name=dup").json()["items"]
    err = error(server.post(CAMPAIGNS, {"code": "x", "name": "", "promo_type": "PERCENT_DISCOUNT",
                                        "discount_percent": 120}), 400, "VALIDATION_ERROR")
    assert {d["field"] for d in err["details"]} == {"code", "name", "discount_percent"}
    g = create(server, "PGS-Camp-G7h8", name="pg catalogue gift", promo_type="PREMIUM_GRANT",
               grant_plan_code="PREMIUM", grant_days=7)
    p = create(server, "PGS-Camp-P5q6", name="pg catalogue partners")
    create(server, "PGS-Camp-N0n0", name="pg elsewhere")

    # get one / unknown
    assert server.get(f"{CAMPAIGNS}/{c['id']}").json() == {k: v for k, v in c.items() if k != "code"}
    error(server.get(f"{CAMPAIGNS}/987654"), 404, "NOT_FOUND")

    # status transitions: pause (idempotent), resume, refused resume, unknown campaign
    path = f"{CAMPAIGNS}/{p['id']}/status"
    paused = server.post(path, {"status": "PAUSED", "reason": "audit"})
    assert paused.status_code == 200 and paused.json()["paused_reason"] == "MANUAL"
    assert server.post(path, {"status": "PAUSED"}).json() == paused.json()
    stale = create(server, "PGS-Camp-S3t4", name="pg catalogue stale",
                   valid_until=_iso(datetime.now(UTC) + timedelta(days=1)))
    end_now(engines, stale["id"])
    assert server.post(f"{CAMPAIGNS}/{stale['id']}/status", {"status": "PAUSED"}).status_code == 200
    error(server.post(f"{CAMPAIGNS}/{stale['id']}/status", {"status": "ACTIVE"}), 409, "INVALID_TRANSITION")
    error(server.post(f"{CAMPAIGNS}/987654/status", {"status": "PAUSED"}), 404, "NOT_FOUND")

    # list: filters, then every page of a cursor walk
    def ids(query: str) -> list[int]:
        r = server.get(CAMPAIGNS + query)
        assert r.status_code == 200 and set(r.json()) == {"items", "next_cursor"}, r.text
        return [item["id"] for item in r.json()["items"]]

    # newest first
    assert ids("?name=CATALOGUE") == [stale["id"], p["id"], g["id"], c["id"]]
    assert ids("?name=catalogue&status=PAUSED") == [stale["id"], p["id"]]
    assert ids("?name=catalogue&promo_type=PREMIUM_GRANT") == [g["id"]]
    everything = ids("?limit=200")
    walked: list[int] = []
    cursor = None
    while True:
        r = server.get(CAMPAIGNS + "?limit=3" + (f"&cursor={cursor}" if cursor is not None else ""))
        assert r.status_code == 200
        walked += [item["id"] for item in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert walked == everything and len(walked) >= 5
    error(server.get(CAMPAIGNS + "?limit=201"), 400, "VALIDATION_ERROR")


# --- dashboard, refund rollback, openapi -------------------------------------------------------------------


def test_dashboard_counts_what_postgresql_holds(server: Server, engines: EngineHolder) -> None:
    create(server, "PGS-DASH-3R5T")
    assert redeem(server, 120, "PGSDASH3R5T", "pg-dash-1").status_code == 200
    assert redeem(server, 120, "PGSDASH3R5T", "pg-dash-2").status_code == 409
    r = server.get("/internal/promo/dashboard?window_hours=2")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["window"]["hours"] == 2
    conv = body["conversion"]
    assert conv["attempts_total"] == scalar(engines, "SELECT count(*) FROM promo_attempts")
    assert conv["attempts_accepted"] == scalar(engines, "SELECT count(*) FROM promo_attempts WHERE result = 'ACCEPTED'")
    assert conv["attempts_total"] >= 2 and 0 < conv["acceptance_rate"] <= 1
    assert body["failures"]["by_result"]["ALREADY_USED"] == scalar(
        engines, "SELECT count(*) FROM promo_attempts WHERE result = 'ALREADY_USED'") >= 1
    assert set(body["guard"]) == {"candidate_abusive_hashes", "paused_campaigns_total", "paused_codes_total",
                                  "paused_campaigns_recent"}
    assert server.get("/internal/promo/dashboard").json()["window"]["hours"] == 24
    error(server.get("/internal/promo/dashboard?window_hours=721"), 400, "VALIDATION_ERROR")


def test_refund_rollback_of_an_unknown_purchase_is_404_and_openapi_is_served(server: Server) -> None:
    error(server.post("/internal/promo/refund-rollback", {"purchase_id": 987654}), 404, "NOT_FOUND")
    doc = server.get("/internal/openapi.json")
    assert doc.status_code == 200 and doc.json()["openapi"].startswith("3.1")
    assert REDEEM in doc.json()["paths"]


# --- concurrency -------------------------------------------------------------------------------------------


def test_100_concurrent_redeems_on_a_capped_campaign_give_exact_capacity(
        server: Server, engines: EngineHolder) -> None:
    c = create(server, "PGS-RUSH-6Y4U", max_total_uses=25)

    def one(user: int) -> int:
        with requests.Session() as session:
            return session.post(server.url + REDEEM, headers=AUTH, timeout=60, json={
                "user_id": 5000 + user, "code": "PGSRUSH6Y4U", "idempotency_key": f"pg-rush-{user}"}).status_code

    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = Counter(pool.map(one, range(100)))
    assert statuses == Counter({200: 25, 422: 75})
    assert scalar(engines, "SELECT used_total FROM promo_codes WHERE id = :id", id=c["code"]["id"]) == 25
    assert scalar(engines, "SELECT used_total FROM promo_campaigns WHERE id = :id", id=c["id"]) == 25
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE campaign_id = :id", id=c["id"]) == 25
    assert scalar(engines, "SELECT count(*) FROM promo_attempts WHERE normalized_code_hash = :h AND result = "
                           "'DEPLETED'", h=c["code"]["code_hash"]) == 75
    assert live_units_mismatch(engines) == []


def test_one_key_racing_itself_over_http_makes_one_redemption(server: Server, engines: EngineHolder) -> None:
    create(server, "PGS-SELF-2W9E")

    def one(_: int) -> tuple[int, int]:
        r = requests.post(server.url + REDEEM, headers=AUTH, timeout=60,
                          json={"user_id": 130, "code": "PGSSELF2W9E", "idempotency_key": "pg-self-1"})
        return r.status_code, r.json()["redemption"]["id"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    assert {status for status, _ in results} == {200}
    assert len({rid for _, rid in results}) == 1
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE idempotency_key = 'pg-self-1'") == 1
    SENT_CODES.append("PGSSELF2W9E")


def test_the_largest_ids_are_answered_by_postgresql_not_a_500(server: Server) -> None:
    biggest = 2**63 - 1  # PostgreSQL bigint's limit, the largest id the API accepts
    create(server, "PGS-BIGU-4G5H")
    r = redeem(server, biggest, "PGSBIGU4G5H", "pg-big-1")
    assert r.status_code == 200 and r.json()["redemption"]["user_id"] == biggest
    error(server.get(f"{CAMPAIGNS}/{biggest}"), 404, "NOT_FOUND")
    error(server.post(f"{CAMPAIGNS}/{biggest}/status", {"status": "PAUSED"}), 404, "NOT_FOUND")
    error(server.post("/internal/promo/refund-rollback", {"purchase_id": biggest}), 404, "NOT_FOUND")
    err = error(server.post(REDEEM, {"user_id": biggest + 1, "code": "PGSBIGU4G5H", "idempotency_key": "pg-big-2"}),
                400, "VALIDATION_ERROR")
    assert err["details"][0]["field"] == "user_id"


def test_payments_refund_and_refund_rollback_over_http_on_postgresql(
        database_url: str, engines: EngineHolder, tmp_path: Path) -> None:
    """With a bot token the payments refund route is served too: Telegram ``refundStarPayment`` (a fake Bot API
    over real HTTP), then the refund rollback revokes the promo redemption without giving its unit back."""
    checkout = build_container(Settings.from_env({"DATABASE_URL": database_url,
                                                  "PROMO_SECRET_PEPPER": PEPPER})).checkout_service()

    def paid(user_id: int, redemption_id: int | None) -> int:
        purchase = checkout.init(user_id, "PREMIUM_30D", redemption_id)
        assert purchase.id is not None
        checkout.mark_invoice_sent(purchase.id)
        checkout.successful_payment(purchase.id, f"pg-charge-{purchase.id}", purchase.final_stars_amount)
        return purchase.id

    with FakeBotApi() as bot_api:
        server = Server(database_url, tmp_path / "serve-bot.log", TELEGRAM_BOT_TOKEN="123456789:pg-serve-bot",
                        TELEGRAM_API_URL=bot_api.url, TELEGRAM_WEBHOOK_SECRET="pg-serve-secret")
        try:
            c = create(server, "PGS-REFD-8P3L", discount_percent=20, max_total_uses=5)
            red = redeem(server, 150, "PGSREFD8P3L", "pg-refund-1").json()["redemption"]
            with_promo = paid(150, red["id"])
            without_promo = paid(151, None)
            not_refunded = paid(152, None)
            open_purchase = checkout.init(153, "PREMIUM_7D").id

            error(server.post("/internal/promo/refund-rollback", {"purchase_id": with_promo}), 409,
                  "PURCHASE_NOT_REFUNDED")
            r = server.post(f"/internal/payments/{with_promo}/refund", {})
            assert r.status_code == 200 and r.json()["status"] == "REFUNDED", r.text
            assert bot_api.last("refundStarPayment").params == {
                "user_id": "150", "telegram_payment_charge_id": f"pg-charge-{with_promo}"}
            assert server.post(f"/internal/payments/{with_promo}/refund", {}).json()["status"] == "REFUNDED"
            assert len(bot_api.calls_to("refundStarPayment")) == 1  # idempotent: Telegram is asked once
            error(server.post(f"/internal/payments/{open_purchase}/refund", {}), 409, "INVALID_PURCHASE_STATE")
            error(server.post("/internal/payments/987654/refund", {}), 404, "NOT_FOUND")

            rolled = server.post("/internal/promo/refund-rollback", {"purchase_id": with_promo})
            assert rolled.status_code == 200, rolled.text
            assert rolled.json() == {"purchase_id": with_promo, "redemption_id": red["id"], "status": "REVOKED",
                                     "replayed": False}
            assert server.post("/internal/promo/refund-rollback", {"purchase_id": with_promo}).json()["replayed"]

            assert server.post(f"/internal/payments/{without_promo}/refund", {}).status_code == 200
            error(server.post("/internal/promo/refund-rollback", {"purchase_id": without_promo}), 409,
                  "NO_PROMO_REDEMPTION")
            error(server.post("/internal/promo/refund-rollback", {"purchase_id": not_refunded}), 409,
                  "PURCHASE_NOT_REFUNDED")
        finally:
            log = server.stop()
    assert scalar(engines, "SELECT used_total FROM promo_codes WHERE id = :id", id=c["code"]["id"]) == 1  # kept
    assert scalar(engines, "SELECT used_total FROM promo_campaigns WHERE id = :id", id=c["id"]) == 1
    assert live_units_mismatch(engines) == []
    forms = set().union(*(_forms(code) for code in SENT_CODES))
    assert not sorted(f for f in forms if f in log) and "Traceback" not in log


# --- no plaintext anywhere ---------------------------------------------------------------------------------


def _forms(code: str) -> set[str]:
    """The ways a code could leak: as typed, normalized, and normalized lower-case (long enough to mean it)."""
    normalized = normalize_code(code)
    return {f for f in (code, code.upper(), normalized, normalized.lower()) if len(f) >= 8}


def test_no_plaintext_code_in_any_table_or_in_the_server_log(server: Server, database_url: str,
                                                             engines: EngineHolder) -> None:
    # Its own traffic, so the check never runs on an empty database: a create, a grant, a failure.
    create(server, "PGS-LEAK-CHK1", promo_type="PREMIUM_GRANT", grant_plan_code="PREMIUM", grant_days=3)
    assert redeem(server, 140, "pgs-leak-chk1", "pg-leak-1").status_code == 200
    assert redeem(server, 140, "PGSLEAKWRONG2", "pg-leak-2").status_code == 404
    assert scalar(engines, "SELECT count(*) FROM promo_attempts WHERE user_id = 140") == 2

    pg_dump = Path(required_env("STARPROMO_TEST_PG_BIN")) / "pg_dump"
    dump = subprocess.run([str(pg_dump), "--dbname", database_url.replace("+psycopg", ""), "--data-only"],
                          capture_output=True, text=True, timeout=120, check=True).stdout
    assert hmac_hash(PEPPER, "PGSLEAKCHK1") in dump  # the rows are in the dump ...
    assert hmac_hash(PEPPER, "PGSLEAKWRONG2") in dump  # ... the failed attempt's hash too ...
    forms = set().union(*(_forms(c) for c in SENT_CODES))
    assert len(forms) >= 6
    assert not sorted(f for f in forms if f in dump)  # ... but no code, in any form

    log = server.log_path.read_text(encoding="utf-8")
    assert log.count(f'"route": "{REDEEM}"') >= 2  # the access log saw the redeems
    assert not sorted(f for f in forms if f in log)
    assert "Traceback" not in log

