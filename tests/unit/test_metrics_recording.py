"""SPEC 15: what each part records through ``ports.metrics.Metrics`` (an in-memory recorder), and the job's
lines carrying the job's name."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import attrs
import pytest
from dependency_injector import providers

from adapters.alerts import RoutingNotifier
from adapters.jsonlog import ContextFieldsFilter, JsonLineFormatter, current_log_context, log_context
from adapters.memory import ManualClock
from adapters.memory.metrics import InMemoryMetrics
from adapters.telegram import TelegramBotApi
from adapters.telegram.client import TelegramApiError
from domain.alerts import RoutedAlert
from domain.campaigns import CampaignSpec
from domain.errors import StorageUnavailable, ValidationError
from domain.model import PromoType
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from entrypoints.worker.jobs import run_job
from tests.conftest import PEPPER, T0
from tests.fakes.bot_api import FakeBotApi, free_port_url

ALERT = RoutedAlert(event="promo_campaign_auto_paused", severity="warning", tier="ops_l1",
                    channels=("slack", "pagerduty"), summary="paused", details={},
                    occurred_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC), dedup_key="paused:1")


class Channel:
    def __init__(self, name: str, ok: bool) -> None:
        self.name = name
        self.ok = ok

    def send(self, alert: RoutedAlert) -> bool:
        return self.ok


@pytest.fixture
def recorder() -> InMemoryMetrics:
    return InMemoryMetrics()


@pytest.fixture
def container(recorder: InMemoryMetrics) -> Container:
    c = build_container(Settings(database_url="memory://", promo_secret_pepper=PEPPER))
    c.metrics.override(providers.Object(recorder))
    c.clock.override(providers.Object(ManualClock(T0)))
    return c


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(ContextFieldsFilter())
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def test_each_redeem_is_counted_by_result_whoever_calls_the_service(container: Container,
                                                                    recorder: InMemoryMetrics) -> None:
    container.campaign_service().create(CampaignSpec(name="recorded", promo_type=PromoType.PERCENT_DISCOUNT,
                                                    discount_percent=10),
                                       actor="test", code="REC-ORD-001", code_max_total_uses=1)
    service = container.redemption_service()
    assert service.redeem(1, "RECORD001", "r-1").accepted
    assert not service.redeem(2, "RECORD001", "r-2").accepted
    assert not service.redeem(3, "NOPE12345", "r-3").accepted
    with pytest.raises(ValidationError):
        service.redeem(0, "RECORD001", "r-4")  # refused input: not a redeem
    assert {k: v for k, v in recorder.counts.items() if k[0] == "redeem"} == {
        ("redeem", "ACCEPTED"): 1, ("redeem", "DEPLETED"): 1, ("redeem", "INVALID"): 1}


def test_a_redeem_that_raises_is_counted_as_error(container: Container, recorder: InMemoryMetrics) -> None:
    class Down:
        def __call__(self) -> object:
            raise StorageUnavailable("database unreachable")

    container.uow_factory.override(providers.Object(Down()))
    with pytest.raises(StorageUnavailable):
        container.redemption_service().redeem(1, "RECORD001", "r-err")
    assert recorder.counts[("redeem", "ERROR")] == 1


def test_a_job_run_is_counted_with_its_outcome_and_its_lines_carry_the_job(
        container: Container, recorder: InMemoryMetrics, lines: io.StringIO) -> None:
    run_job("run_promo_reservation_expiry", container)
    run_job("run_payments_reconciliation", container)  # no Telegram token: skipped
    container.uow_factory.override(providers.Object(_raising_uow))
    with pytest.raises(RuntimeError):
        run_job("run_promo_bruteforce_guard", container)
    assert recorder.counts[("job", "run_promo_reservation_expiry", "ok")] == 1
    assert recorder.counts[("job", "run_payments_reconciliation", "skipped")] == 1
    assert recorder.counts[("job", "run_promo_bruteforce_guard", "error")] == 1
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    failed = [ln for ln in logged if ln["event"] == "job_failed"]
    assert len(failed) == 1 and failed[0]["job"] == "run_promo_bruteforce_guard"
    assert all(ln.get("job") for ln in logged if ln["event"] in ("job_finished", "job_failed"))
    assert current_log_context() == {}  # nothing left bound after the runs


def _raising_uow() -> object:
    raise RuntimeError("boom")


def test_alert_deliveries_are_counted_per_channel_and_outcome(recorder: InMemoryMetrics) -> None:
    notifier = RoutingNotifier({"slack": Channel("slack", True), "pagerduty": Channel("pagerduty", False)},
                               metrics=recorder)
    notifier.notify(ALERT)
    notifier.notify(attrs.evolve(ALERT, channels=("generic",)))
    assert recorder.counts == {("alert", "slack", "delivered"): 1, ("alert", "pagerduty", "failed"): 1,
                               ("alert", "generic", "skipped"): 1}


def test_bot_api_calls_are_counted_as_ok_error_or_rate_limited(recorder: InMemoryMetrics) -> None:
    with FakeBotApi() as api:
        client = TelegramBotApi("123456:metrics", api.url, metrics=recorder)
        client.send_message(1, "hello")
        api.fail("sendMessage", "Bad Request: chat not found", error_code=400)
        with pytest.raises(TelegramApiError):
            client.send_message(1, "to nobody")
        api.fail("answerCallbackQuery", "Too Many Requests: retry after 0", error_code=429, times=None,
                 retry_after=0)
        with pytest.raises(TelegramApiError):
            client.answer_callback_query("q-1")
    assert recorder.counts[("telegram", "sendMessage", "ok")] == 1
    assert recorder.counts[("telegram", "sendMessage", "error")] == 1
    assert recorder.counts[("telegram", "answerCallbackQuery", "rate_limited")] >= 1
    assert recorder.counts[("telegram", "answerCallbackQuery", "ok")] == 0
    unreachable = TelegramBotApi("123456:metrics", free_port_url(), metrics=recorder)
    with pytest.raises(TelegramApiError):
        unreachable.get_me()
    assert recorder.counts[("telegram", "getMe", "error")] >= 1


def test_log_context_fields_reach_every_line_inside_and_none_after(lines: io.StringIO) -> None:
    log = logging.getLogger("starpromo.some.adapter")
    with log_context(job_id="rq-job-1"):
        log.info("inside")
        with log_context(job="run_x"):
            logging.getLogger("rq.worker").info("nested, a library's logger")
        log.info("inside again", extra={"job_id": "explicit wins"})
    log.info("after")
    got = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [(ln["message"] if "message" in ln else ln["event"], ln.get("job_id"), ln.get("job")) for ln in got] == [
        ("inside", "rq-job-1", None), ("nested, a library's logger", "rq-job-1", "run_x"),
        ("inside again", "explicit wins", None), ("after", None, None)]

