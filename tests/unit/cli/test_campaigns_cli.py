"""SPEC 10 `starpromo campaigns list|show|create|update|pause|resume|stats`: the SPEC 3 rules from a terminal, every
refusal on stderr naming the flag, every change one audit entry by ``cli:<login>``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters.memory import ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.codes import normalize_code
from domain.model import Campaign, CampaignStatus, PausedReason, PromoType, RedeemResult
from entrypoints.cli.main import cli
from entrypoints.container import Container
from tests.unit.cli.conftest import ACTOR, Cli

SEED_ACTOR = "test:seed"


@pytest.fixture
def service(container: Container) -> CampaignService:
    return container.campaign_service()


def seed(service: CampaignService, clock: ManualClock) -> None:
    service.create(CampaignSpec("spring sale", PromoType.PERCENT_DISCOUNT, discount_percent=20, max_total_uses=100,
                                valid_until=clock.now() + timedelta(days=30)), actor=SEED_ACTOR, code="SPRING-2026")
    service.create(CampaignSpec("gift month", PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM", grant_days=30,
                                per_user_limit=3), actor=SEED_ACTOR, code="GIFT-MONTH")
    service.create(CampaignSpec("spring vip", PromoType.STARS_DISCOUNT, discount_stars=40), actor=SEED_ACTOR)


def campaign(service: CampaignService, campaign_id: int) -> Campaign:
    return service.get(campaign_id).campaign


def ids(result: Result) -> list[str]:
    """The first column of a printed table."""
    return [line.split()[0] for line in result.stdout.splitlines()[1:]]


def cli_audit(run: Cli) -> list[tuple[str, str, str, str]]:
    """The audit entries the CLI wrote: (actor, action, target_type, target_id)."""
    return [(e.actor, e.action, e.target_type, e.target_id) for e in run.audit() if e.actor != SEED_ACTOR]


# --- list and show --------------------------------------------------------------------------------------------


def test_list_prints_newest_first_with_codes_budget_and_per_user_limit(run: Cli, service: CampaignService,
                                                                        clock: ManualClock) -> None:
    seed(service, clock)
    result = run("campaigns", "list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "name", "type", "status", "codes", "used/budget", "per_user"]
    assert [line.split() for line in lines[1:]] == [
        ["3", "spring", "vip", "STARS_DISCOUNT", "ACTIVE", "0", "0/-", "1"],
        ["2", "gift", "month", "PREMIUM_GRANT", "ACTIVE", "1", "0/-", "3"],
        ["1", "spring", "sale", "PERCENT_DISCOUNT", "ACTIVE", "1", "0/100", "1"],
    ]
    # columns line up: every header starts where its values start
    for header in ("type", "status", "codes", "used/budget", "per_user"):
        col = lines[0].index(header)
        assert all(line[col - 2:col] == "  " and line[col] != " " for line in lines[1:])


def test_list_filters_by_status_name_and_type(run: Cli, service: CampaignService, clock: ManualClock) -> None:
    seed(service, clock)
    service.set_status(3, CampaignStatus.PAUSED, actor=SEED_ACTOR)
    assert ids(run("campaigns", "list", "--status", "paused")) == ["3"]
    assert ids(run("campaigns", "list", "--name", "SPRING")) == ["3", "1"]
    assert ids(run("campaigns", "list", "--type", "PREMIUM_GRANT")) == ["2"]
    paused = run("campaigns", "list", "--status", "PAUSED").stdout.splitlines()[1]
    assert "PAUSED (MANUAL)" in paused
    assert run("campaigns", "list", "--name", "nothing").stdout == "no campaigns\n"


def test_list_pages_with_the_cursor(run: Cli, service: CampaignService, clock: ManualClock) -> None:
    seed(service, clock)
    first = run("campaigns", "list", "--limit", "2")
    assert [line.split()[0] for line in first.stdout.splitlines()[1:-1]] == ["3", "2"]
    assert first.stdout.splitlines()[-1] == "more: add --cursor 2"
    second = run("campaigns", "list", "--limit", "2", "--cursor", "2")
    assert [line.split()[0] for line in second.stdout.splitlines()[1:]] == ["1"]
    assert "more:" not in second.stdout


def test_list_json_has_the_api_shape_and_no_plaintext(run: Cli, service: CampaignService, clock: ManualClock) -> None:
    seed(service, clock)
    data = json.loads(run("campaigns", "list", "--json", "--limit", "2", "--cursor", "2").stdout)
    assert data["next_cursor"] is None
    [first] = data["items"]
    assert first["id"] == 1 and first["name"] == "spring sale" and first["status"] == "ACTIVE"
    assert first["promo_type"] == "PERCENT_DISCOUNT" and first["max_total_uses"] == 100
    assert first["per_user_limit"] == 1 and first["used_total"] == 0 and first["applicable_products"] == []
    assert first["valid_until"] == "2026-03-31T12:00:00Z"
    assert first["codes_total"] == 1
    assert first["codes_by_status"] == {"ACTIVE": 1, "PAUSED": 0, "EXPIRED": 0, "DEPLETED": 0}
    assert "SPRING2026" not in json.dumps(data) and "SPRING-2026" not in json.dumps(data)


def test_a_bad_limit_names_the_flag(run: Cli) -> None:
    result = run("campaigns", "list", "--limit", "500")
    assert result.exit_code == 2 and "--limit" in result.stderr


def test_show_prints_every_column_and_the_codes_by_status(run: Cli, service: CampaignService,
                                                           clock: ManualClock) -> None:
    seed(service, clock)
    result = run("campaigns", "show", "1")
    assert result.exit_code == 0, result.stderr
    fields = {line.split()[0]: line.split(None, 1)[1] for line in result.stdout.splitlines()}
    assert fields["name"] == "spring sale" and fields["promo_type"] == "PERCENT_DISCOUNT"
    assert fields["discount_percent"] == "20" and fields["discount_stars"] == "-"
    assert fields["max_total_uses"] == "100" and fields["per_user_limit"] == "1"
    assert fields["valid_until"] == "2026-03-31T12:00:00Z"
    assert fields["codes"] == "1 (ACTIVE 1, PAUSED 0, EXPIRED 0, DEPLETED 0)"
    as_json = json.loads(run("campaigns", "show", "2", "--json").stdout)
    assert as_json["name"] == "gift month" and as_json["grant_days"] == 30 and as_json["codes_total"] == 1


def test_show_of_an_unknown_campaign_is_not_found(run: Cli) -> None:
    result = run("campaigns", "show", "99")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: NOT_FOUND: campaign 99 not found\n"


# --- create ---------------------------------------------------------------------------------------------------


def test_create_makes_a_campaign_with_its_terms_budget_and_per_user_limit(run: Cli, service: CampaignService) -> None:
    result = run("campaigns", "create", "--name", "stars week", "--type", "stars_discount", "--discount-stars", "40",
                 "--applicable-products", "PREMIUM_30D,PREMIUM_90D", "--target-scope", "FIRST_PURCHASE_ONLY",
                 "--valid-until", "2026-04-01T00:00:00+02:00", "--max-total-uses", "500", "--per-user-limit", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "created campaign 1 'stars week' (STARS_DISCOUNT)\n"
    c = campaign(service, 1)
    assert (c.promo_type, c.discount_stars, c.applicable_products) == (
        PromoType.STARS_DISCOUNT, 40, ("PREMIUM_30D", "PREMIUM_90D"))
    assert c.target_scope.value == "FIRST_PURCHASE_ONLY" and c.valid_until is not None
    assert c.valid_until.isoformat() == "2026-03-31T22:00:00+00:00"
    assert (c.max_total_uses, c.per_user_limit, c.status) == (500, 2, CampaignStatus.ACTIVE)
    assert service.get(1).codes_total == 0
    assert cli_audit(run) == [(ACTOR, "campaign.created", "campaign", "1")]


def test_create_with_a_code_reads_it_from_standard_input_and_never_prints_it(run: Cli, container: Container) -> None:
    result = run("campaigns", "create", "--name", "anna", "--type", "PERCENT_DISCOUNT", "--discount-percent", "15",
                 "--with-code", "--code-max-total-uses", "1000", "--json", input="anna-2026\n")
    assert result.exit_code == 0, result.stderr
    assert "ANNA2026" not in result.stdout + result.stderr and "anna-2026" not in result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["name"] == "anna" and data["code"]["max_total_uses"] == 1000
    assert data["code"]["code_prefix"] == "ANNA" and data["code"]["campaign_id"] == data["id"]
    assert container.redemption_service().redeem(5, "ANNA 2026", "k1").result is RedeemResult.ACCEPTED
    assert [a for a, *_ in cli_audit(run)] == [ACTOR, ACTOR]  # the campaign and its code


def test_a_campaign_name_in_use_is_refused_naming_the_flag_and_nothing_is_created(
        run: Cli, service: CampaignService, clock: ManualClock) -> None:
    seed(service, clock)
    before = len(run.audit())
    result = run("campaigns", "create", "--name", "gift month", "--type", "PERCENT_DISCOUNT", "--discount-percent",
                 "10", "--with-code", input="OTHER-CODE\n")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: --name: CAMPAIGN_EXISTS: a campaign named 'gift month' exists\n"
    assert len(run.store.campaigns) == 3 and len(run.store.codes) == 2 and len(run.audit()) == before


def test_a_code_that_exists_is_refused_and_its_campaign_is_not_created(run: Cli, service: CampaignService,
                                                                       clock: ManualClock) -> None:
    seed(service, clock)
    result = run("campaigns", "create", "--name", "copy", "--type", "PERCENT_DISCOUNT", "--discount-percent", "10",
                 "--with-code", input="spring 2026\n")
    assert result.exit_code == 1
    assert result.stderr == "error: code (standard input): CODE_EXISTS: this code exists already\n"
    assert len(run.store.campaigns) == 3


def test_bad_create_flags_are_all_named(run: Cli) -> None:
    result = run("campaigns", "create", "--name", "x", "--type", "STARS_DISCOUNT", "--discount-percent", "10",
                 "--valid-until", "tomorrow", "--max-total-uses", "0", "--per-user-limit", "5000")
    assert (result.exit_code, result.stdout) == (2, "")
    errors = result.stderr.splitlines()
    for flag in ("--discount-stars", "--discount-percent", "--valid-until", "--max-total-uses", "--per-user-limit"):
        assert any(line.startswith(f"error: {flag}: ") for line in errors), flag
    assert run.store.campaigns == {}
    orphan = run("campaigns", "create", "--name", "x", "--type", "STARS_DISCOUNT", "--discount-stars", "10",
                 "--code-max-total-uses", "5")
    assert orphan.exit_code == 2 and orphan.stderr == "error: --code-max-total-uses: only with --with-code\n"


def test_create_with_code_and_nothing_on_standard_input_is_refused(run: Cli) -> None:
    result = run("campaigns", "create", "--name", "x", "--type", "STARS_DISCOUNT", "--discount-stars", "10",
                 "--with-code", input="")
    assert result.exit_code == 2 and result.stderr.startswith("error: code: none given")
    assert run.store.campaigns == {}


# --- update ---------------------------------------------------------------------------------------------------


def test_update_changes_name_validity_budget_and_per_user_limit_in_one_audit_entry(
        run: Cli, service: CampaignService, clock: ManualClock) -> None:
    seed(service, clock)
    result = run("campaigns", "update", "1", "--name", "spring sale II", "--valid-until", "2026-06-01T00:00:00Z",
                 "--max-total-uses", "250", "--per-user-limit", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ("campaign 1 'spring sale II' updated: name spring sale II, valid_until "
                             "2026-06-01T00:00:00Z, max_total_uses 250, per_user_limit 2\n")
    c = campaign(service, 1)
    assert (c.name, c.max_total_uses, c.per_user_limit) == ("spring sale II", 250, 2)
    assert c.valid_until is not None and c.valid_until.isoformat() == "2026-06-01T00:00:00+00:00"
    [code] = [code for code in run.store.codes.values() if code.campaign_id == 1]
    assert code.campaign_name == "spring sale II" and code.valid_until == c.valid_until  # the codes' copies follow
    assert cli_audit(run) == [(ACTOR, "campaign.changed", "campaign", "1")]


def test_update_with_none_clears_the_end_and_the_budget(run: Cli, service: CampaignService,
                                                        clock: ManualClock) -> None:
    seed(service, clock)
    result = run("campaigns", "update", "1", "--valid-until", "none", "--max-total-uses", "NONE")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("valid_until - (no end), max_total_uses - (unlimited)\n")
    c = campaign(service, 1)
    assert c.valid_until is None and c.max_total_uses is None


def test_a_budget_below_the_units_used_is_refused_naming_the_flag_and_nothing_changes(
        run: Cli, service: CampaignService, container: Container, clock: ManualClock) -> None:
    seed(service, clock)
    redeem = container.redemption_service().redeem
    assert redeem(1, "SPRING-2026", "k1").result is RedeemResult.ACCEPTED
    assert redeem(2, "SPRING-2026", "k2").result is RedeemResult.ACCEPTED
    result = run("campaigns", "update", "1", "--max-total-uses", "1", "--name", "renamed")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: --max-total-uses: INVALID_CHANGE: max_total_uses 1 is below the 2 units used\n"
    c = campaign(service, 1)
    assert (c.name, c.max_total_uses) == ("spring sale", 100)
    assert cli_audit(run) == []
    assert run("campaigns", "update", "1", "--max-total-uses", "2").exit_code == 0  # equal to the units used: fine


def test_a_valid_until_in_the_past_is_refused_naming_the_flag_and_nothing_changes(
        run: Cli, service: CampaignService, clock: ManualClock) -> None:
    seed(service, clock)
    result = run("campaigns", "update", "1", "--valid-until", "2026-02-28T00:00:00Z", "--per-user-limit", "4")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: --valid-until: INVALID_CHANGE: valid_until must be in the future\n"
    c = campaign(service, 1)
    assert c.valid_until == clock.now() + timedelta(days=30) and c.per_user_limit == 1
    assert cli_audit(run) == []


def test_renaming_to_a_name_in_use_is_refused_naming_the_flag(run: Cli, service: CampaignService,
                                                              clock: ManualClock) -> None:
    seed(service, clock)
    result = run("campaigns", "update", "1", "--name", "gift month")
    assert result.exit_code == 1
    assert result.stderr == "error: --name: INVALID_CHANGE: a campaign named 'gift month' exists\n"
    assert campaign(service, 1).name == "spring sale" and cli_audit(run) == []


def test_unparsable_update_values_are_named_and_nothing_to_change_is_an_error(
        run: Cli, service: CampaignService, clock: ManualClock) -> None:
    seed(service, clock)
    result = run("campaigns", "update", "1", "--valid-until", "2026-05-01", "--max-total-uses", "lots")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: --valid-until: must carry a timezone, e.g. 2026-12-31T23:59:59Z, or none (no end)",
        "error: --max-total-uses: must be 1..2147483647 or none (unlimited)",
    ]
    empty = run("campaigns", "update", "1")
    assert empty.exit_code == 2 and "nothing to change" in empty.stderr
    bad_limit = run("campaigns", "update", "1", "--per-user-limit", "0")
    assert bad_limit.exit_code == 2 and bad_limit.stderr == "error: --per-user-limit: must be 1..1000\n"
    assert cli_audit(run) == []


# --- pause, resume --------------------------------------------------------------------------------------------


def test_pause_and_resume_follow_the_admin_transitions(run: Cli, service: CampaignService,
                                                       clock: ManualClock) -> None:
    seed(service, clock)
    result = run("campaigns", "pause", "1", "--reason", "typo in the ad")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "campaign 1 'spring sale' is PAUSED (MANUAL), reason: typo in the ad\n"
    c = campaign(service, 1)
    assert c.status is CampaignStatus.PAUSED and c.paused_reason is PausedReason.MANUAL
    assert run("campaigns", "pause", "1").exit_code == 0  # same state: a no-op, and no audit entry
    data = json.loads(run("campaigns", "resume", "1", "--reason", "fixed", "--json").stdout)
    assert data["status"] == "ACTIVE" and data["paused_reason"] is None
    assert cli_audit(run) == [(ACTOR, "campaign.paused", "campaign", "1"), (ACTOR, "campaign.resumed", "campaign", "1")]
    assert [e.details.get("reason") for e in run.audit()[-2:]] == ["typo in the ad", "fixed"]


def test_resume_after_valid_until_is_an_invalid_transition(run: Cli, service: CampaignService,
                                                           clock: ManualClock) -> None:
    seed(service, clock)
    assert run("campaigns", "pause", "1").exit_code == 0
    clock.advance(days=31)
    result = run("campaigns", "resume", "1")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: INVALID_TRANSITION: campaign is past valid_until\n"
    assert campaign(service, 1).status is CampaignStatus.PAUSED


def test_an_unknown_campaign_is_not_found(run: Cli) -> None:
    result = run("campaigns", "pause", "99")
    assert result.exit_code == 1 and result.stderr == "error: NOT_FOUND: campaign 99 not found\n"
    result = run("campaigns", "resume", "abc")
    assert result.exit_code == 2 and "ID" in result.stderr


def test_a_reason_too_long_names_the_flag(run: Cli, service: CampaignService, clock: ManualClock) -> None:
    seed(service, clock)
    result = run("campaigns", "pause", "1", "--reason", "x" * 501)
    assert result.exit_code == 2 and result.stderr == "error: --reason: at most 500 printable characters\n"
    assert campaign(service, 1).status is CampaignStatus.ACTIVE


# --- stats ----------------------------------------------------------------------------------------------------


def test_stats_show_the_campaign_metrics(run: Cli, service: CampaignService, container: Container,
                                         clock: ManualClock) -> None:
    seed(service, clock)
    redeem = container.redemption_service().redeem
    assert redeem(1, "SPRING-2026", "k1").result is RedeemResult.ACCEPTED
    assert redeem(1, "SPRING-2026", "k2").result is RedeemResult.ALREADY_USED
    assert redeem(2, "GIFT-MONTH", "k3").result is RedeemResult.ACCEPTED
    data = json.loads(run("campaigns", "stats", "1", "--window-hours", "2", "--json").stdout)
    assert data == container.report_service().campaign_stats(1, 2)
    assert data["attempts_by_result"]["ACCEPTED"] == 1 and data["attempts_by_result"]["ALREADY_USED"] == 1
    assert data["redemptions_by_status"]["RESERVED"] == 1
    text = run("campaigns", "stats", "1", "--series")
    assert text.exit_code == 0, text.stderr
    lines = [line.split() for line in text.stdout.splitlines()]
    assert ["attempts", "2"] in lines and ["ACCEPTED", "1"] in lines and ["ALREADY_USED", "1"] in lines
    assert ["hour", "attempts", "accepted", "applied", "stars_revenue"] in lines
    assert ["2026-03-01T12:00:00Z", "2", "1", "0", "0"] in lines
    assert run("campaigns", "stats", "1", "--window-hours", "721").exit_code == 2
    assert run("campaigns", "stats", "9").stderr == "error: NOT_FOUND: campaign 9 not found\n"


# --- every command ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    [], ["campaigns"], ["campaigns", "list"], ["campaigns", "show"], ["campaigns", "create"], ["campaigns", "update"],
    ["campaigns", "pause"], ["campaigns", "resume"], ["campaigns", "stats"], ["codes"], ["codes", "list"],
    ["codes", "pause"], ["codes", "resume"], ["codes", "lookup"], ["codes", "generate"], ["codes", "import"],
    ["audit"], ["payments", "refund-rollback"], ["dashboard"],
])
def test_every_command_has_help(args: list[str]) -> None:
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0 and result.stdout.startswith("Usage:")


def test_create_help_lists_every_terms_flag() -> None:
    result = CliRunner().invoke(cli, ["campaigns", "create", "--help"])
    for flag in ("--name", "--type", "--discount-percent", "--discount-stars", "--grant-plan-code", "--grant-days",
                 "--target-scope", "--valid-from", "--valid-until", "--applicable-products", "--max-total-uses",
                 "--per-user-limit", "--with-code"):
        assert flag in result.stdout, flag


def test_the_installed_command_reports_errors_on_stderr_with_exit_codes() -> None:
    starpromo = str(Path(sys.executable).parent / "starpromo")
    env = {**os.environ, "DATABASE_URL": "memory://", "PROMO_SECRET_PEPPER": "p"}
    proc = subprocess.run([starpromo, "campaigns", "pause", "5"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", "error: NOT_FOUND: campaign 5 not found\n")
    proc = subprocess.run([starpromo, "codes", "lookup", "SECRET-CODE-1"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "never from the command line" in proc.stderr
    assert normalize_code("SECRET-CODE-1") not in proc.stderr and "SECRET-CODE-1" not in proc.stderr
    env.pop("PROMO_SECRET_PEPPER")
    proc = subprocess.run([starpromo, "campaigns", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "PROMO_SECRET_PEPPER" in proc.stderr and proc.stdout == ""


def test_an_unexpected_failure_is_one_line_on_stderr_never_a_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import entrypoints.cli.campaigns
    from entrypoints.cli.main import main

    def unreachable(ctx: object) -> Container:
        raise RuntimeError("connection refused\nDETAIL: a second line")

    monkeypatch.setattr(entrypoints.cli.campaigns, "get_container", unreachable)
    monkeypatch.setattr(sys, "argv", ["starpromo", "campaigns", "list"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "error: unexpected RuntimeError: connection refused\n")
