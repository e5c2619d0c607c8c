"""SPEC 6/10 `starpromo worker`, `starpromo scheduler`, `starpromo jobs run NAME`: start-up checks and errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from entrypoints.cli.main import cli
from entrypoints.container import build_container
from entrypoints.settings import Settings
from tests.conftest import PEPPER
from tests.unit.cli.conftest import Cli

JOB_NAMES = ["run_promo_reservation_expiry", "run_promo_campaign_status_rollover", "run_promo_bruteforce_guard",
             "run_refund_promo_rollback", "run_payment_invoice_expiry", "run_payments_reconciliation",
             "run_payment_recovery", "run_telegram_outbox"]


def _run_with_env(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    container = build_container(Settings.from_env({"DATABASE_URL": "memory://", "PROMO_SECRET_PEPPER": PEPPER,
                                                   **env}))
    result = CliRunner().invoke(cli, list(args), obj=container, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_jobs_list_shows_the_spec_table(run: Cli) -> None:
    result = run("jobs", "list")
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == JOB_NAMES


def test_an_unknown_job_name_is_an_error_on_stderr_with_a_non_zero_exit(run: Cli) -> None:
    result = run("jobs", "run", "run_everything")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "unknown job 'run_everything'" in result.stderr
    assert "run_promo_bruteforce_guard" in result.stderr  # the known names are listed


def test_the_scheduler_refuses_to_start_without_redis(run: Cli) -> None:
    result = run("scheduler")
    assert result.exit_code == 2
    assert "REDIS_URL" in result.stderr


@pytest.mark.parametrize("command", [["worker", "--burst"], ["scheduler", "--burst"],
                                     ["jobs", "run", "run_promo_bruteforce_guard"]])
@pytest.mark.parametrize("policy, message", [
    ("{not json", "invalid JSON"),
    ('{"promo_campaign_auto_paused": {"channels": ["email"]}}', "unknown channel 'email'"),
    ('{"promo_campaign_auto_paused": {"severity": "catastrophic"}}', "unknown severity 'catastrophic'"),
])
def test_a_bad_escalation_policy_stops_start_up_naming_the_variable(command: list[str], policy: str,
                                                                     message: str) -> None:
    code, stdout, stderr = _run_with_env({"OPS_ALERT_ESCALATION_POLICY_JSON": policy,
                                          "REDIS_URL": "redis://127.0.0.1:1/0"}, *command)
    assert code == 2
    assert "OPS_ALERT_ESCALATION_POLICY_JSON" in stderr and message in stderr
    assert stdout == ""


def test_serve_refuses_to_start_with_a_bad_escalation_policy() -> None:
    from domain.errors import ConfigurationError

    container = build_container(Settings.from_env({
        "DATABASE_URL": "memory://", "PROMO_SECRET_PEPPER": PEPPER, "INTERNAL_API_TOKEN": "t",
        "OPS_ALERT_ESCALATION_POLICY_JSON": '{"promo_campaign_auto_paused": {"channels": ["email"]}}'}))
    with pytest.raises(ConfigurationError, match=r"OPS_ALERT_ESCALATION_POLICY_JSON.*unknown channel 'email'"):
        CliRunner().invoke(cli, ["serve", "--port", "0"], obj=container, catch_exceptions=False)


def test_jobs_run_the_guard_prints_one_json_summary_line_and_exits_0(run: Cli) -> None:
    import json

    from domain.campaigns import CampaignSpec
    from domain.model import Attempt, CampaignStatus, PausedReason, PromoType, RedeemResult

    c = run.container
    campaign, code = c.campaign_service().create(
        CampaignSpec("spring", PromoType.PERCENT_DISCOUNT, discount_percent=10), actor="test:seed", code="SPRING-2026")
    assert code is not None and code.id is not None
    with c.uow_factory()() as uow:
        for i in range(20):
            uow.attempts.add(Attempt(user_id=1 + i % 5, normalized_code_hash=code.code_hash,
                                     code_prefix="SPRI", result=RedeemResult.NOT_APPLICABLE,
                                     attempted_at=c.clock().now(), campaign_id=campaign.id))
        uow.commit()
    result = run("jobs", "run", "run_promo_bruteforce_guard")
    assert result.exit_code == 0, result.stderr
    [line] = result.stdout.splitlines()
    summary = json.loads(line)
    assert summary["job"] == "run_promo_bruteforce_guard"
    assert summary["paused"] == [code.id] and summary["paused_campaigns"] == []
    assert isinstance(summary["duration_ms"], int)
    paused = c.code_service().get(code.id)
    assert paused.status is CampaignStatus.PAUSED and paused.paused_reason is PausedReason.AUTO_BRUTEFORCE
    assert c.campaign_service().get(1).campaign.status is CampaignStatus.ACTIVE  # the hash rule pauses the code
    assert "SPRING-2026" not in result.stdout + result.stderr  # no plaintext code in output or logs


@pytest.mark.parametrize("name", JOB_NAMES)
def test_jobs_run_runs_each_job_on_an_empty_store(run: Cli, name: str) -> None:
    import json

    result = run("jobs", "run", name)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["job"] == name
