"""SPEC 7 "Audit" through the CLI: every change the CLI makes is one audit entry by ``cli:<login name>``, and
`starpromo audit` lists the log, newest first, filtered by actor, action and target."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from domain.campaigns import CampaignSpec
from domain.model import CampaignStatus, PromoType
from entrypoints.cli._ops import cli_actor
from entrypoints.container import Container
from tests.unit.cli.conftest import ACTOR, Cli

SEED_ACTOR = "test:seed"


@pytest.fixture
def seeded(container: Container) -> Container:
    """Campaign 1 'spring' with code 1; campaign 2 'paused' (PAUSED) with code 2 (PAUSED)."""
    campaigns = container.campaign_service()
    campaigns.create(CampaignSpec("spring", PromoType.PERCENT_DISCOUNT, discount_percent=20), actor=SEED_ACTOR,
                     code="SPRING-2026")
    campaigns.create(CampaignSpec("paused", PromoType.PERCENT_DISCOUNT, discount_percent=20), actor=SEED_ACTOR,
                     code="PAUSED-2026")
    campaigns.set_status(2, CampaignStatus.PAUSED, actor=SEED_ACTOR)
    container.code_service().set_status(2, CampaignStatus.PAUSED, actor=SEED_ACTOR)
    return container


def import_file(tmp_path: Path) -> str:
    path = tmp_path / "in.csv"
    path.write_text("code,campaign_name,promo_type,discount_percent\nIMPORT-0001,spring,PERCENT_DISCOUNT,20\n")
    return str(path)


CHANGES: dict[str, Callable[[Path], list[str]]] = {
    "campaign.created": lambda _: ["campaigns", "create", "--name", "new", "--type", "STARS_DISCOUNT",
                                   "--discount-stars", "5"],
    "campaign.changed": lambda _: ["campaigns", "update", "1", "--per-user-limit", "3", "--max-total-uses", "9"],
    "campaign.paused": lambda _: ["campaigns", "pause", "1"],
    "campaign.resumed": lambda _: ["campaigns", "resume", "2"],
    "code.paused": lambda _: ["codes", "pause", "1"],
    "code.resumed": lambda _: ["codes", "resume", "2"],
    "codes.generated": lambda p: ["codes", "generate", "--campaign-name", "spring", "--type", "PERCENT_DISCOUNT",
                                  "--discount-percent", "20", "--count", "25", "--out", str(p / "r.csv")],
    "codes.imported": lambda p: ["codes", "import", "--csv", import_file(p), "--out", str(p / "r.csv")],
}


@pytest.mark.parametrize("action", list(CHANGES))
def test_each_change_command_writes_exactly_one_audit_entry_by_the_login(
        run: Cli, seeded: Container, tmp_path: Path, action: str) -> None:
    before = len(run.audit())
    result = run(*CHANGES[action](tmp_path))
    assert result.exit_code == 0, result.stderr
    new = run.audit()[before:]
    assert [(e.actor, e.action) for e in new] == [(ACTOR, action)]


def test_a_refused_change_writes_no_audit_entry(run: Cli, seeded: Container) -> None:
    before = len(run.audit())
    assert run("campaigns", "update", "1", "--valid-until", "2020-01-01T00:00:00Z").exit_code == 1
    assert run("campaigns", "create", "--name", "spring", "--type", "STARS_DISCOUNT", "--discount-stars", "5"
               ).exit_code == 1
    assert run("campaigns", "pause", "2").exit_code == 0  # already PAUSED: no change, no entry
    assert len(run.audit()) == before


def test_audit_lists_the_entries_newest_first(run: Cli, seeded: Container) -> None:
    assert run("campaigns", "pause", "1", "--reason", "leak").exit_code == 0
    result = run("audit")
    assert result.exit_code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["id", "at", "actor", "action", "target", "details"]
    cells = [row.split() for row in rows]
    assert [c[0] for c in cells] == ["7", "6", "5", "4", "3", "2", "1"]
    assert cells[0][:5] == ["7", "2026-03-01T12:00:00Z", ACTOR, "campaign.paused", "campaign:1"]
    assert cells[0][5] == '{"reason":"leak"}'
    assert "SPRING-2026" not in result.stdout and "SPRING2026" not in result.stdout


def test_audit_filters_by_actor_action_and_target(run: Cli, seeded: Container) -> None:
    assert run("campaigns", "pause", "1").exit_code == 0
    assert run("codes", "resume", "2").exit_code == 0

    def ids(*args: str) -> list[str]:
        return [line.split()[0] for line in run("audit", *args).stdout.splitlines()[1:]]

    assert ids("--actor", ACTOR) == ["8", "7"]
    assert ids("--action", "campaign.paused") == ["7", "5"]
    assert ids("--target-type", "promo_code") == ["8", "6", "4", "2"]
    assert ids("--target-type", "campaign", "--target-id", "1") == ["7", "1"]
    assert run("audit", "--actor", "nobody").stdout == "no audit entries\n"
    bad = run("audit", "--action", "campaign.deleted")
    assert bad.exit_code == 2 and "--action" in bad.stderr


def test_audit_pages_and_prints_json(run: Cli, seeded: Container) -> None:
    page = run("audit", "--limit", "2")
    assert page.stdout.splitlines()[-1] == "more: add --cursor 5"
    data = json.loads(run("audit", "--limit", "2", "--cursor", "5", "--json").stdout)
    assert [e["id"] for e in data["items"]] == [4, 3] and data["next_cursor"] == 3
    assert data["items"][1] == {"id": 3, "at": "2026-03-01T12:00:00Z", "actor": SEED_ACTOR,
                                "action": "campaign.created", "target_type": "campaign", "target_id": "2",
                                "details": {"name": "paused", "promo_type": "PERCENT_DISCOUNT", "max_total_uses": None,
                                            "per_user_limit": 1}}
    assert run("audit", "--limit", "201").exit_code == 2


def test_the_actor_falls_back_to_user_and_then_to_the_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_login() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_login)
    monkeypatch.setenv("USER", "deploy")
    assert cli_actor() == "cli:deploy"
    monkeypatch.delenv("USER")
    assert cli_actor() == f"cli:uid{os.getuid()}"
    monkeypatch.setattr(getpass, "getuser", lambda: "x" * 100)
    assert len(cli_actor()) == 64  # the audit actor is at most 64 characters
