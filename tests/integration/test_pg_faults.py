"""SPEC 13 faults on real PostgreSQL: the connection killed (``pg_terminate_backend``) in the middle of a
redeem leaves no partial redemption or capacity claim, and the error is reported cleanly (HTTP 503 JSON)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from dependency_injector import providers

from adapters.memory import ManualClock
from adapters.sql.engine import EngineHolder
from adapters.sql.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory
from domain.campaigns import CampaignService, CampaignSpec
from domain.codes import CodeHasher
from domain.errors import StorageUnavailable
from domain.model import PromoType, RedeemResult
from domain.redemption import RedemptionService
from entrypoints.container import build_container
from entrypoints.http import create_app
from entrypoints.settings import Settings
from tests.conftest import PEPPER, T0, required_env
from tests.sql import live_units_mismatch, pg_engines

TOKEN = "fault-test-token-0123456789"


@pytest.fixture
def engines() -> Iterator[EngineHolder]:
    with pg_engines("starpromo_fault") as holder:
        yield holder


class _KillingUnitOfWork(SqlUnitOfWork):
    def __init__(self, engine: sa.Engine, factory: KillAfterClaim) -> None:
        super().__init__(engine)
        self._factory = factory

    def __enter__(self) -> _KillingUnitOfWork:
        super().__enter__()
        pid = self.connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        factory = self._factory

        def kill() -> None:
            if factory.armed:
                with factory.admin.connect() as admin:
                    admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                factory.kills += 1

        def then_die(write: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(*args: Any) -> Any:
                result = write(*args)
                kill()
                return result
            return wrapped

        def die_first(write: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(*args: Any) -> Any:
                kill()
                return write(*args)
            return wrapped

        # A grant's claim is one write among several of its transaction: the connection dies after it. A
        # reservation's redemption, attempt and claim are one statement, whole or absent: it dies before it.
        self.promo_codes.claim_capacity = then_die(self.promo_codes.claim_capacity)  # type: ignore[method-assign]
        self.redemptions.add_and_claim = die_first(self.redemptions.add_and_claim)  # type: ignore[method-assign]
        return self


class KillAfterClaim(SqlUnitOfWorkFactory):
    """Units of work whose connection the server terminates in the middle of a redeem, as long as ``armed`` is
    set: right after a grant's capacity claim (the claim ran, the commit has not), right before a
    reservation's one-statement write (the read ran, the write has not)."""

    def __init__(self, engines: EngineHolder) -> None:
        super().__init__(engines)
        self.armed = True
        self.kills = 0
        self.admin = sa.create_engine(required_env("STARPROMO_TEST_PG_ADMIN_URL"), isolation_level="AUTOCOMMIT")

    def __call__(self) -> SqlUnitOfWork:
        return _KillingUnitOfWork(self.engines.engine, self)

    def close(self) -> None:
        self.admin.dispose()


def counts(engines: EngineHolder) -> tuple[int, int, int, int, int]:
    """Units claimed from codes, units claimed from campaigns, redemptions, entitlements, ledger entries."""
    with engines.engine.connect() as conn:
        return tuple(int(conn.execute(sa.text(sql)).scalar_one()) for sql in (  # type: ignore[return-value]
            "SELECT coalesce(sum(used_total), 0) FROM promo_codes",
            "SELECT coalesce(sum(used_total), 0) FROM promo_campaigns",
            "SELECT count(*) FROM promo_redemptions",
            "SELECT count(*) FROM entitlements",
            "SELECT count(*) FROM entitlement_ledger",
        ))


def attempts(engines: EngineHolder) -> int:
    with engines.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM promo_attempts")).scalar_one())


def test_connection_killed_mid_redeem_leaves_nothing_half_written_and_the_retry_succeeds(
    engines: EngineHolder,
) -> None:
    clock = ManualClock(T0)
    hasher = CodeHasher(PEPPER)
    CampaignService(SqlUnitOfWorkFactory(engines), clock, hasher).create(
        CampaignSpec(name="fault", promo_type=PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM", grant_days=7,
                     max_total_uses=3),
        actor="test", code="FAULTCODE1", code_max_total_uses=2)
    killing = KillAfterClaim(engines)
    try:
        service = RedemptionService(killing, clock, hasher)
        assert service.redeem(1, "FAULTCODE9", "fault-0").result is RedeemResult.INVALID  # no claim: not killed
        assert attempts(engines) == 1
        with pytest.raises(StorageUnavailable):
            service.redeem(1, "FAULTCODE1", "fault-1")
        assert killing.kills == 1
        assert counts(engines) == (0, 0, 0, 0, 0)  # no claim (code or campaign), no redemption, no grant
        assert attempts(engines) == 1  # the earlier attempt is kept; the killed one wrote nothing
        killing.armed = False
        out = service.redeem(1, "FAULTCODE1", "fault-1")  # the client retries with the same key
        assert out.result is RedeemResult.ACCEPTED and not out.replayed
        assert counts(engines) == (1, 1, 1, 1, 1)
        assert attempts(engines) == 2
        assert service.redeem(1, "FAULTCODE1", "fault-1").replayed
        assert live_units_mismatch(engines) == []
    finally:
        killing.close()


def test_connection_killed_mid_redeem_over_http_is_a_503_json_error_and_the_api_recovers(
    engines: EngineHolder,
) -> None:
    settings = Settings.from_env({"DATABASE_URL": engines.url, "PROMO_SECRET_PEPPER": PEPPER,
                                  "INTERNAL_API_TOKEN": TOKEN})
    container = build_container(settings)
    killing = KillAfterClaim(engines)
    container.uow_factory.override(providers.Object(killing))
    try:
        client = create_app(container).test_client()
        headers = {"X-Internal-Token": TOKEN}
        created = client.post("/internal/promo/campaigns", headers=headers, json={
            "code": "HTTPFAULT1", "name": "fault", "promo_type": "PERCENT_DISCOUNT",
            "discount_percent": 10, "max_total_uses": 2, "code_max_total_uses": 2})
        assert created.status_code == 201, created.json
        body = {"user_id": 5, "code": "HTTPFAULT1", "idempotency_key": "h-1"}
        r = client.post("/internal/promo/redeem", headers=headers, json=body)
        assert r.status_code == 503
        assert r.is_json and r.json is not None and r.json["error"]["code"] == "STORAGE_UNAVAILABLE"
        assert "Traceback" not in r.get_data(as_text=True)
        assert counts(engines) == (0, 0, 0, 0, 0)
        killing.armed = False
        r = client.post("/internal/promo/redeem", headers=headers, json=body)
        assert r.status_code == 200 and r.json is not None and r.json["result"] == "ACCEPTED"
        assert live_units_mismatch(engines) == []
    finally:
        killing.close()
