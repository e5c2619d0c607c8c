"""SPEC 10 `starpromo campaigns list|pause|resume`: the same rules as the internal API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.memory import ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.model import CampaignStatus, PausedReason, PromoType
from entrypoints.cli.main import cli
from entrypoints.container import Container
from tests.unit.cli.conftest import Cli


@pytest.fixture
def service(container: Container) -> CampaignService:
    return container.campaign_service()


def seed(service: CampaignService, clock: ManualClock) -> None:
    service.create(CampaignSpec("spring sale", PromoType.PERCENT_DISCOUNT, discount_percent=20, max_total_uses=100,
                                valid_until=clock.now() + timedelta(days=30)), "SPRING-2026")
    service.create(CampaignSpec("gift month", PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM", grant_days=30),
                   "GIFT-MONTH")
    service.create(CampaignSpec("spring vip", PromoType.PERCENT_DISCOUNT, discount_percent=50), "VIPS-2026")


def test_list_prints_an_aligned_table(run: Cli, service: CampaignService, clock: ManualClock) -> None:
    seed(service, clock)
    result = run("campaigns", "list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "name", "type", "status", "prefix", "used/max", "valid_until"]
    assert lines[1].split() == ["1", "spring", "sale", "PERCENT_DISCOUNT", "ACTIVE", "SPRI", "0/100",
                                "2026-03-31", "12:00"]
    assert lines[2].split() == ["2", "gift", "month", "PREMIUM_GRANT", "ACTIVE", "GIFT", "0/-", "-"]
    # columns line up: every header starts where its values start
    for header in ("type", "status", "prefix", "used/max"):
        col = lines[0].index(header)
        assert all(line[col - 2:col] == "  " and line[col] != " " for line in lines[1:])


def test_list_filters_by_status_type_and_name(run: Cli, service: CampaignService, clock: ManualClock) -> None:
    seed(service, clock)
    service.set_status(3, CampaignStatus.PAUSED)
    ids = lambda result: [line.split()[0] for line in result.stdout.splitlines()[1:]]  # noqa: E731
    assert ids(run("campaigns", "list", "--status", "paused")) == ["3"]
    assert ids(run("campaigns", "list", "--type", "PREMIUM_GRANT")) == ["2"]
    assert ids(run("campaigns", "list", "--name", "SPRING")) == ["1", "3"]
    assert run("campaigns", "list", "--name", "nothing").stdout == "no campaigns\n"


def test_list_pages_with_the_cursor(run: Cli, service: CampaignService, clock: ManualClock) -> None:
    seed(service, clock)
    first = run("campaigns", "list", "--limit", "2")
    assert first.stdout.splitlines()[-1] == "more: add --cursor 2"
    second = run("campaigns", "list", "--limit", "2", "--cursor", "2")
    assert [line.split()[0] for line in second.stdout.splitlines()[1:]] == ["3"]
    assert "more:" not in second.stdout


def test_list_json_has_the_api_shape(run: Cli, service: CampaignService, clock: ManualClock) -> None:
    seed(service, clock)
    data = json.loads(run("campaigns", "list", "--json", "--limit", "2").stdout)
    assert data["next_cursor"] == 2
    first = data["items"][0]
    assert first["id"] == 1 and first["campaign_name"] == "spring sale" and first["status"] == "ACTIVE"
    assert first["promo_type"] == "PERCENT_DISCOUNT" and first["max_total_uses"] == 100
    assert len(first["code_hash"]) == 64 and first["applicable_products"] == []
    assert first["valid_until"] == "2026-03-31T12:00:00Z"
    assert "SPRING2026" not in json.dumps(data) and "SPRING-2026" not in json.dumps(data)


def test_a_bad_limit_names_the_flag(run: Cli) -> None:
    result = run("campaigns", "list", "--limit", "500")
    assert result.exit_code == 2 and "--limit" in result.stderr


def test_pause_and_resume_follow_the_admin_transitions(run: Cli, service: CampaignService,
                                                       clock: ManualClock) -> None:
    seed(service, clock)
    result = run("campaigns", "pause", "1", "--reason", "typo in the ad")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "campaign 1 'spring sale' is PAUSED (typo in the ad)\n"
    assert service.get(1).status is CampaignStatus.PAUSED and service.get(1).paused_reason is PausedReason.MANUAL
    assert run("campaigns", "pause", "1").exit_code == 0  # same state: a no-op
    data = json.loads(run("campaigns", "resume", "1", "--json").stdout)
    assert data["status"] == "ACTIVE" and data["paused_reason"] is None


def test_resume_after_valid_until_is_an_invalid_transition(run: Cli, service: CampaignService,
                                                           clock: ManualClock) -> None:
    seed(service, clock)
    assert run("campaigns", "pause", "1").exit_code == 0
    clock.advance(days=31)
    result = run("campaigns", "resume", "1")
    assert result.exit_code == 1
    assert result.stderr == "error: INVALID_TRANSITION: campaign is past valid_until\n"
    assert result.stdout == ""
    assert service.get(1).status is CampaignStatus.PAUSED


def test_an_unknown_campaign_is_not_found(run: Cli) -> None:
    result = run("campaigns", "pause", "99")
    assert result.exit_code == 1 and result.stderr == "error: NOT_FOUND: campaign 99 not found\n"
    result = run("campaigns", "resume", "abc")
    assert result.exit_code == 2 and "ID" in result.stderr


@pytest.mark.parametrize("args", [
    [], ["campaigns"], ["campaigns", "list"], ["campaigns", "pause"], ["campaigns", "resume"], ["codes"],
    ["codes", "generate"], ["codes", "import"],
])
def test_every_command_has_help(args: list[str]) -> None:
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0 and result.stdout.startswith("Usage:")


def test_the_installed_command_reports_errors_on_stderr_with_exit_codes() -> None:
    starpromo = str(Path(sys.executable).parent / "starpromo")
    env = {**os.environ, "DATABASE_URL": "memory://", "PROMO_SECRET_PEPPER": "p"}
    proc = subprocess.run([starpromo, "campaigns", "pause", "5"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", "error: NOT_FOUND: campaign 5 not found\n")
    env.pop("PROMO_SECRET_PEPPER")
    proc = subprocess.run([starpromo, "campaigns", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "PROMO_SECRET_PEPPER" in proc.stderr and proc.stdout == ""
