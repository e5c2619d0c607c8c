"""SPEC 10 `starpromo codes list|pause|resume|lookup`: single codes for support and the guard's aftermath. A code a
person types is read from standard input or a hidden prompt, and never printed back."""

from __future__ import annotations

import json

import pytest
from click.testing import Result

from adapters.memory import ManualClock
from domain.campaigns import CampaignSpec
from domain.model import CampaignStatus, PausedReason, PromoType, RedeemResult
from entrypoints.container import Container
from tests.unit.cli.conftest import ACTOR, Cli

SEED_ACTOR = "test:seed"
SECRETS = ("SPRING-2026", "SPRING2026", "spring 2026", "SPRING-BONUS", "SPRINGBONUS", "GIFT-MONTH", "GIFTMONTH")


@pytest.fixture
def seeded(container: Container, clock: ManualClock) -> Container:
    """Campaign 1 'spring' with codes 1 SPRING-2026 (cap 5) and 2 SPRING-BONUS; campaign 2 'gift' with code 3."""
    campaigns, codes = container.campaign_service(), container.code_service()
    spring, _ = campaigns.create(CampaignSpec("spring", PromoType.PERCENT_DISCOUNT, discount_percent=20,
                                              max_total_uses=100), actor=SEED_ACTOR, code="SPRING-2026",
                                 code_max_total_uses=5)
    assert spring.id == 1
    codes.add(1, "SPRING-BONUS", actor=SEED_ACTOR)
    campaigns.create(CampaignSpec("gift", PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM", grant_days=7),
                     actor=SEED_ACTOR, code="GIFT-MONTH")
    return container


def no_secret_in(text: str) -> bool:
    return not any(s in text for s in SECRETS)


def ids(result: Result) -> list[str]:
    """The first column of a printed table."""
    return [line.split()[0] for line in result.stdout.splitlines()[1:]]


def cli_audit(run: Cli) -> list[tuple[str, str, str, str]]:
    return [(e.actor, e.action, e.target_type, e.target_id) for e in run.audit() if e.actor != SEED_ACTOR]


# --- list -----------------------------------------------------------------------------------------------------


def test_list_shows_the_codes_of_one_campaign(run: Cli, seeded: Container) -> None:
    result = run("codes", "list", "--campaign", "1")
    assert result.exit_code == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["id", "prefix", "status", "used/max", "created_at", "updated_at"]
    assert [line[:4] for line in lines[1:]] == [["1", "SPRI", "ACTIVE", "0/5"], ["2", "SPRI", "ACTIVE", "0/-"]]
    assert no_secret_in(result.stdout)


def test_list_filters_by_status_and_prefix_and_pages(run: Cli, seeded: Container) -> None:
    seeded.code_service().set_status(2, CampaignStatus.PAUSED, actor=SEED_ACTOR)
    assert ids(run("codes", "list", "--campaign", "1", "--status", "paused")) == ["2"]
    assert ids(run("codes", "list", "--campaign", "1", "--prefix", "spr")) == ["1", "2"]
    assert run("codes", "list", "--campaign", "1", "--prefix", "GIFT").stdout == "no codes\n"
    page = run("codes", "list", "--campaign", "1", "--limit", "1")
    assert page.stdout.splitlines()[-1] == "more: add --cursor 1"
    assert ids(run("codes", "list", "--campaign", "1", "--cursor", "1")) == ["2"]


def test_list_json_is_the_code_rows_without_plaintext(run: Cli, seeded: Container) -> None:
    data = json.loads(run("codes", "list", "--campaign", "1", "--json").stdout)
    assert data["next_cursor"] is None
    first = data["items"][0]
    assert (first["id"], first["campaign_id"], first["campaign_name"], first["max_total_uses"]) == (1, 1, "spring", 5)
    assert len(first["code_hash"]) == 64 and first["code_prefix"] == "SPRI"
    assert no_secret_in(json.dumps(data))


def test_list_needs_the_campaign_and_a_valid_prefix(run: Cli) -> None:
    missing = run("codes", "list")
    assert missing.exit_code == 2 and "--campaign" in missing.stderr
    bad = run("codes", "list", "--campaign", "1", "--prefix", "TOOLONG")
    assert bad.exit_code == 2 and bad.stderr == "error: --prefix: 1..4 characters A-Z 0-9\n"


# --- pause, resume --------------------------------------------------------------------------------------------


def test_pausing_one_code_leaves_the_other_codes_of_its_campaign_working(run: Cli, seeded: Container) -> None:
    result = run("codes", "pause", "1", "--reason", "posted on a coupon site")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "code 1 (prefix SPRI) of campaign 1 is PAUSED (MANUAL), reason: posted on a coupon site\n"
    redeem = seeded.redemption_service().redeem
    assert redeem(1, "SPRING-2026", "k1").result is RedeemResult.PAUSED
    assert redeem(2, "SPRING-BONUS", "k2").result is RedeemResult.ACCEPTED
    resumed = run("codes", "resume", "1", "--json")
    assert json.loads(resumed.stdout)["status"] == "ACTIVE"
    assert redeem(1, "SPRING-2026", "k3").result is RedeemResult.ACCEPTED
    assert cli_audit(run) == [(ACTOR, "code.paused", "promo_code", "1"), (ACTOR, "code.resumed", "promo_code", "1")]


def test_code_transitions_refused_are_errors_on_stderr(run: Cli, seeded: Container, clock: ManualClock) -> None:
    assert run("codes", "pause", "9").stderr == "error: NOT_FOUND: code 9 not found\n"
    redeem = seeded.redemption_service().redeem
    for user in range(1, 6):
        assert redeem(user, "SPRING-2026", f"k{user}").result is RedeemResult.ACCEPTED
    assert run("codes", "pause", "1").exit_code == 0
    result = run("codes", "resume", "1")
    assert (result.exit_code, result.stderr) == (1, "error: INVALID_TRANSITION: code capacity is used up\n")
    assert seeded.code_service().get(1).paused_reason is PausedReason.MANUAL


# --- lookup ---------------------------------------------------------------------------------------------------


def test_lookup_reads_the_code_from_standard_input_and_never_echoes_it(run: Cli, seeded: Container) -> None:
    result = run("codes", "lookup", input="spring 2026\n")
    assert result.exit_code == 0, result.stderr
    assert no_secret_in(result.stdout + result.stderr)
    fields = {k.strip(): v.strip() for k, v in (line.split("  ", 1) for line in result.stdout.splitlines())}
    assert fields["promo_code_id"] == "1" and fields["code_prefix"] == "SPRI"
    assert fields["campaign"] == "1 'spring' (PERCENT_DISCOUNT)" and fields["code used/max"] == "0/5"
    assert fields["redeem now"].startswith("redeemable")
    assert seeded.memory_store().attempts == []  # a lookup is not a redeem attempt


def test_lookup_says_which_of_code_and_campaign_is_paused(run: Cli, seeded: Container) -> None:
    seeded.campaign_service().set_status(1, CampaignStatus.PAUSED, actor=SEED_ACTOR)
    result = run("codes", "lookup", input="SPRING-BONUS")
    assert result.exit_code == 0, result.stderr
    assert "redeem now            PAUSED: the campaign is PAUSED (MANUAL)" in result.stdout
    assert "code status           ACTIVE" in result.stdout
    as_json = json.loads(run("codes", "lookup", "--json", input="GIFT-MONTH\n").stdout)
    assert as_json["code"]["id"] == 3 and as_json["campaign"]["name"] == "gift"
    assert no_secret_in(json.dumps(as_json))


def test_lookup_of_an_unknown_or_malformed_code_is_an_error_without_the_code(run: Cli, seeded: Container) -> None:
    unknown = run("codes", "lookup", input="NOPE-1234\n")
    assert (unknown.exit_code, unknown.stdout, unknown.stderr) == (1, "", "error: NOT_FOUND: no code matches\n")
    malformed = run("codes", "lookup", input="a!\n")
    assert malformed.exit_code == 2
    assert malformed.stderr == "error: code (standard input): must normalize to 4..32 characters A-Z 0-9\n"
    empty = run("codes", "lookup", input="")
    assert empty.exit_code == 2 and empty.stderr.startswith("error: code: none given")


def test_lookup_refuses_a_code_on_the_command_line_without_repeating_it(run: Cli, seeded: Container) -> None:
    for args in (["SPRING-2026"], ["--code", "SPRING-2026"], ["--json", "SPRING2026"]):
        result = run("codes", "lookup", *args, input="")
        assert result.exit_code == 2 and result.stdout == ""
        assert "never from the command line" in result.stderr and no_secret_in(result.stderr)
