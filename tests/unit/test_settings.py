"""SPEC 11: one typed settings object from the environment; a bad value stops start-up naming the variable."""

from __future__ import annotations

import ipaddress

import pytest

from domain.errors import ConfigurationError
from domain.policy import PromoPolicy
from entrypoints.settings import DEMO_PEPPER, Settings, settings_summary

BASE = {"PROMO_SECRET_PEPPER": "pepper"}

POSITIVE_INTS = {
    "PROMO_FAIL_LIMIT": "fail_limit",
    "PROMO_FAIL_WINDOW_HOURS": "fail_window_hours",
    "PROMO_BLOCK_MINUTES": "block_minutes",
    "PROMO_RESERVATION_TTL_MINUTES": "reservation_ttl_minutes",
    "PAYMENT_INVOICE_TTL_MINUTES": "invoice_ttl_minutes",
    "PROMO_GUARD_WINDOW_MINUTES": "guard_window_minutes",
    "PROMO_GUARD_MIN_FAILURES": "guard_min_failures",
    "PROMO_GUARD_MIN_USERS": "guard_min_users",
    "PROMO_GUARD_PREFIX_MIN_FAILURES": "guard_prefix_min_failures",
    "PROMO_JOB_BATCH_SIZE": "job_batch_size",
}
NON_NEGATIVE_INTS = {"TRUSTED_PROXY_COUNT": "trusted_proxy_count", "OPS_ALERT_MAX_RETRIES": "ops_alert_max_retries"}
URLS = ["TELEGRAM_API_URL", "OPS_ALERT_WEBHOOK_URL", "OPS_ALERT_SLACK_WEBHOOK_URL", "OPS_ALERT_PAGERDUTY_EVENTS_URL"]


def settings(**env: str) -> Settings:
    return Settings.from_env({**BASE, **env})


def refused(name: str, value: str) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as exc:
        Settings.from_env({**BASE, name: value})
    assert name in str(exc.value), str(exc.value)
    assert exc.value.code == "CONFIGURATION_ERROR"
    return exc.value


# --- the pepper ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", [{}, {"PROMO_SECRET_PEPPER": ""}, {"PROMO_SECRET_PEPPER": "   "}])
def test_pepper_is_required(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="PROMO_SECRET_PEPPER"):
        Settings.from_env(env)


def test_pepper_may_be_missing_only_when_not_required() -> None:
    assert Settings.from_env({}, require_pepper=False).promo_secret_pepper == DEMO_PEPPER
    assert Settings.from_env({"PROMO_SECRET_PEPPER": "mine"}, require_pepper=False).promo_secret_pepper == "mine"


def test_previous_peppers_are_comma_separated_and_blank_entries_ignored() -> None:
    s = settings(PROMO_SECRET_PEPPER_PREVIOUS="old1, ,old2,")
    assert s.promo_secret_pepper_previous == ("old1", "old2")
    assert settings().promo_secret_pepper_previous == ()


def test_secrets_never_appear_in_repr_or_the_log_summary() -> None:
    s = settings(PROMO_SECRET_PEPPER="pepper-xyz", PROMO_SECRET_PEPPER_PREVIOUS="old-xyz",
                 INTERNAL_API_TOKEN="token-xyz", TELEGRAM_BOT_TOKEN="bot-xyz",
                 DATABASE_URL="postgresql+psycopg://u:dbpass-xyz@localhost/db")
    for secret in ("pepper-xyz", "old-xyz", "token-xyz", "bot-xyz"):
        assert secret not in repr(s)
    for secret in ("pepper-xyz", "old-xyz", "token-xyz", "bot-xyz", "dbpass-xyz"):
        assert secret not in repr(settings_summary(s))


# --- defaults and good values ----------------------------------------------------------------------------


def test_defaults_are_the_spec_ones() -> None:
    s = settings()
    assert s.database_url == "sqlite:///starpromo.db"
    assert s.redis_url is None
    assert s.internal_api_token is None
    assert s.internal_ip_allowlist == (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
    assert s.trusted_proxy_count == 0
    assert s.telegram_api_url == "https://api.telegram.org"
    assert s.ops_alert_pagerduty_events_url == "https://events.pagerduty.com/v2/enqueue"
    assert s.policy == PromoPolicy()
    p = s.policy
    assert (p.fail_limit, p.fail_window_hours, p.block_minutes, p.reservation_ttl_minutes) == (5, 24, 60, 15)
    assert (p.invoice_ttl_minutes, p.guard_window_minutes, p.guard_min_failures, p.guard_min_users,
            p.guard_prefix_min_failures) == (30, 10, 20, 5, 50)


@pytest.mark.parametrize(("name", "field"), POSITIVE_INTS.items())
def test_policy_knobs_are_read(name: str, field: str) -> None:
    assert getattr(settings(**{name: " 7 "}).policy, field) == 7


@pytest.mark.parametrize(("name", "field"), NON_NEGATIVE_INTS.items())
def test_non_negative_counts_accept_zero(name: str, field: str) -> None:
    assert getattr(settings(**{name: "0"}), field) == 0
    assert getattr(settings(**{name: "4"}), field) == 4


def test_allowlist_parses_cidrs() -> None:
    s = settings(INTERNAL_IP_ALLOWLIST="10.0.0.0/8, 192.168.1.7, fd00::/8")
    assert s.internal_ip_allowlist == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
        ipaddress.ip_network("fd00::/8"),
    )


def test_urls_and_timeouts_are_read() -> None:
    s = settings(TELEGRAM_API_URL="http://127.0.0.1:9999/", OPS_ALERT_SLACK_WEBHOOK_URL="https://hooks.example/x",
                 OPS_ALERT_TIMEOUT_SECONDS="2.5", REDIS_URL="redis://localhost:6379/0", DATABASE_URL="memory://")
    assert s.telegram_api_url == "http://127.0.0.1:9999"
    assert s.ops_alert_slack_webhook_url == "https://hooks.example/x"
    assert s.ops_alert_timeout_seconds == 2.5
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.adapter_family == "memory"
    assert settings().adapter_family == "sql"


def test_empty_values_mean_unset() -> None:
    s = settings(PROMO_FAIL_LIMIT="", TELEGRAM_API_URL="  ", INTERNAL_API_TOKEN="", REDIS_URL="")
    assert s.policy.fail_limit == 5
    assert s.telegram_api_url == "https://api.telegram.org"
    assert s.internal_api_token is None and s.redis_url is None


# --- bad values ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", POSITIVE_INTS)
@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5", "5 minutes", "0x10"])
def test_bad_policy_knob_names_the_variable(name: str, value: str) -> None:
    error = refused(name, value)
    assert repr(value.strip()) in str(error)


@pytest.mark.parametrize("name", NON_NEGATIVE_INTS)
@pytest.mark.parametrize("value", ["-1", "many", "2.0"])
def test_bad_count_names_the_variable(name: str, value: str) -> None:
    refused(name, value)


@pytest.mark.parametrize("value", ["0", "-1", "soon", "5s"])
def test_bad_alert_timeout_names_the_variable(value: str) -> None:
    refused("OPS_ALERT_TIMEOUT_SECONDS", value)


@pytest.mark.parametrize("value", ["localhost", "10.0.0.0/33", "10.0.0.1/8, nope", ",", "::1/129"])
def test_bad_allowlist_names_the_variable(value: str) -> None:
    refused("INTERNAL_IP_ALLOWLIST", value)


@pytest.mark.parametrize("name", URLS)
@pytest.mark.parametrize("value", ["ftp://example.com", "example.com/hook", "javascript:alert(1)"])
def test_bad_url_names_the_variable(name: str, value: str) -> None:
    refused(name, value)


def test_the_first_bad_value_stops_start_up_even_with_others_fine() -> None:
    with pytest.raises(ConfigurationError, match="PROMO_BLOCK_MINUTES"):
        settings(PROMO_FAIL_LIMIT="3", PROMO_BLOCK_MINUTES="never", TRUSTED_PROXY_COUNT="1")


# --- flood control and the outbox (SPEC 9, issue 17) ----------------------------------------------------------


def test_the_message_rate_defaults_to_telegrams_30_a_second_and_is_read() -> None:
    assert settings().telegram_max_messages_per_second == 30
    assert settings(TELEGRAM_MAX_MESSAGES_PER_SECOND=" 200 ").telegram_max_messages_per_second == 200
    assert settings(TELEGRAM_OUTBOX_LEASE_SECONDS="5").telegram_outbox_lease_seconds == 5


@pytest.mark.parametrize("value", ["0", "-5", "thirty", "29.5", "1001"])
def test_a_bad_message_rate_stops_start_up_naming_the_variable(value: str) -> None:
    refused("TELEGRAM_MAX_MESSAGES_PER_SECOND", value)


@pytest.mark.parametrize("value", ["0", "soon", "3601"])
def test_a_bad_outbox_lease_stops_start_up_naming_the_variable(value: str) -> None:
    refused("TELEGRAM_OUTBOX_LEASE_SECONDS", value)


def test_a_chats_turn_defaults_to_telegrams_one_second_and_is_read() -> None:
    assert settings().telegram_chat_interval_seconds == 1.0
    assert settings(TELEGRAM_CHAT_INTERVAL_SECONDS="3").telegram_chat_interval_seconds == 3.0
    assert settings(TELEGRAM_CHAT_INTERVAL_SECONDS=" 0.05 ").telegram_chat_interval_seconds == 0.05


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf", "61"])
def test_a_bad_chat_interval_stops_start_up_naming_the_variable(value: str) -> None:
    refused("TELEGRAM_CHAT_INTERVAL_SECONDS", value)
