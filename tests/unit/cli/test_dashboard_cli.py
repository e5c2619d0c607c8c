"""SPEC 10 `starpromo dashboard`: the SPEC 7 metrics as a readable summary or JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner

from adapters.memory import ManualClock
from domain.campaigns import CampaignSpec
from domain.model import CampaignStatus, PromoType, RedeemResult
from entrypoints.cli.main import cli
from entrypoints.container import Container
from tests.unit.cli.conftest import Cli


def seed(container: Container, clock: ManualClock) -> None:
    campaigns = container.campaign_service()
    campaigns.create(CampaignSpec("spring", PromoType.PERCENT_DISCOUNT, discount_percent=20), actor="test:seed",
                     code="SPRING-2026")
    gift, _ = campaigns.create(CampaignSpec("gift", PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM",
                                            grant_days=7), actor="test:seed", code="GIFT-2026")
    campaigns.create(CampaignSpec("bonus", PromoType.STARS_DISCOUNT, discount_stars=10), actor="test:seed",
                     code="BONUS-2026")
    redeem = container.redemption_service().redeem
    assert redeem(1, "spring-2026", "k1").result is RedeemResult.ACCEPTED
    assert redeem(2, "NOPE-1234", "k2").result is RedeemResult.INVALID
    assert redeem(3, "GIFT 2026", "k3").result is RedeemResult.ACCEPTED
    assert gift.id is not None
    campaigns.set_status(gift.id, CampaignStatus.PAUSED, actor="test:seed")
    container.code_service().set_status(3, CampaignStatus.PAUSED, actor="test:seed")  # BONUS-2026 alone
    clock.advance(minutes=5)


def test_json_is_the_dashboard_document(run: Cli, container: Container, clock: ManualClock) -> None:
    seed(container, clock)
    result = run("dashboard", "--window-hours", "2", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data == container.dashboard_service().metrics(2)
    assert data["window"]["hours"] == 2
    assert data["conversion"]["attempts_total"] == 3 and data["conversion"]["attempts_accepted"] == 2
    assert data["conversion"]["reservations_total"] == 1 and data["conversion"]["reservations_applied"] == 0
    assert data["failures"]["by_result"]["INVALID"] == 1
    assert data["guard"]["paused_campaigns_total"] == 1 and data["guard"]["paused_codes_total"] == 1
    assert len(data["series"]) == 3  # the window touches three hours (10:05 .. 12:05)


def test_summary_is_readable(run: Cli, container: Container, clock: ManualClock) -> None:
    seed(container, clock)
    result = run("dashboard")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("window ") and lines[0].endswith("(24 h)")
    assert [line.split() for line in lines if line.strip().startswith(("attempts", "reservations"))] == [
        ["attempts", "3", "accepted", "2", "(66.7", "%)"],
        ["reservations", "1", "applied", "0", "(0.0", "%)"],
    ]
    assert ["INVALID", "1"] in [line.split() for line in lines]
    counts = [line for line in lines if line.split()[:1] in (["INVALID"], ["IDEMPOTENCY_KEY_REUSED"])]
    assert len({len(line) for line in counts}) == 1  # right-aligned counts
    assert any(line.split()[:1] == ["failures"] and line.split()[1] == "1" for line in lines)
    assert any(line.split()[:3] == ["paused", "campaigns", "1"] for line in lines)
    assert any(line.split()[:3] == ["paused", "codes", "1"] for line in lines)
    assert lines[-6:] == ["payments",
                          "  paid                   0   0 Stars",
                          "  refunded               0   0 Stars",
                          "  failed                 0   0 Stars",
                          "  open review items      0   purchases in review 0",
                          "  other Star movements: none (withdrawals, ads, gifts, ... never compared with purchases)"]


def test_series_prints_one_line_per_hour(run: Cli, container: Container, clock: ManualClock) -> None:
    seed(container, clock)
    result = run("dashboard", "--window-hours", "2", "--series")
    assert result.exit_code == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    start = lines.index(["hour", "attempts", "accepted", "applied", "stars_revenue"])
    assert lines[start + 1:] == [["2026-03-01T10:00:00Z", "0", "0", "0", "0"],
                                 ["2026-03-01T11:00:00Z", "0", "0", "0", "0"],
                                 ["2026-03-01T12:00:00Z", "3", "2", "1", "0"]]


def test_window_out_of_range_names_the_flag(run: Cli) -> None:
    result = run("dashboard", "--window-hours", "0")
    assert result.exit_code == 2 and "--window-hours" in result.stderr


def test_dashboard_has_help() -> None:
    result = CliRunner().invoke(cli, ["dashboard", "--help"])
    assert result.exit_code == 0 and "--window-hours" in result.stdout and "--json" in result.stdout
