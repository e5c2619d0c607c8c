"""The issue's acceptance path through the CLI: a giveaway of 2,000 single-use codes is ONE campaign that ops list,
pause and resume as a whole, and one user gets one of its codes, not two."""

from __future__ import annotations

import csv
from pathlib import Path

from domain.model import RedeemResult
from tests.unit.cli.conftest import ACTOR, Cli

COUNT = 2000


def generate_giveaway(run: Cli, out: Path) -> list[str]:
    result = run("codes", "generate", "--campaign-name", "giveaway", "--count", str(COUNT), "--max-total-uses", "1",
                 "--per-user-limit", "1", "--prefix", "GIVE", "--type", "PERCENT_DISCOUNT", "--discount-percent", "50",
                 "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"inserted {COUNT} codes into new campaign 1 'giveaway'; report: {out}\n"
    with out.open(newline="") as f:
        return [row["code"] for row in csv.DictReader(f)]


def test_a_generated_giveaway_is_one_campaign_paused_and_resumed_as_a_whole(run: Cli, tmp_path: Path) -> None:
    codes = generate_giveaway(run, tmp_path / "giveaway.csv")
    assert len(set(codes)) == COUNT

    listed = run("campaigns", "list")
    assert listed.exit_code == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["id", "name", "type", "status", "codes", "used/budget", "per_user"]
    assert [row.split() for row in rows] == [["1", "giveaway", "PERCENT_DISCOUNT", "ACTIVE", str(COUNT), "0/-", "1"]]

    redeem = run.container.redemption_service().redeem
    paused = run("campaigns", "pause", "1", "--reason", "draw postponed")
    assert paused.exit_code == 0, paused.stderr
    assert paused.stdout == "campaign 1 'giveaway' is PAUSED (MANUAL), reason: draw postponed\n"
    # One user per code: throttling must not decide the answer.
    assert {redeem(10_000 + i, code, f"paused-{i}").result for i, code in enumerate(codes)} == {RedeemResult.PAUSED}

    resumed = run("campaigns", "resume", "1")
    assert resumed.exit_code == 0 and resumed.stdout == "campaign 1 'giveaway' is ACTIVE\n"
    assert redeem(1, codes[0], "user-1-first").result is RedeemResult.ACCEPTED
    assert redeem(1, codes[1], "user-1-second").result is RedeemResult.ALREADY_USED
    later = {redeem(20_000 + i, code, f"resumed-{i}").result for i, code in enumerate(codes[1:], start=1)}
    assert later == {RedeemResult.ACCEPTED}

    shown = run("campaigns", "list").stdout.splitlines()[1].split()
    assert shown[5] == f"{COUNT}/-"
    actions = [(e.actor, e.action) for e in run.audit()]
    assert actions == [(ACTOR, "codes.generated"), (ACTOR, "campaign.paused"), (ACTOR, "campaign.resumed")]
