"""The one typed settings object, built from the environment at start-up (SPEC 11).

A bad value raises :class:`domain.errors.ConfigurationError` whose message names the variable.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from domain.errors import ConfigurationError
from domain.policy import PromoPolicy

T = TypeVar("T")

DEFAULT_DATABASE_URL = "sqlite:///starpromo.db"
DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org"
DEFAULT_PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
DEMO_PEPPER = "starpromo-demo-pepper-not-for-production"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@attrs.frozen
class Settings:
    database_url: str = attrs.field(default=DEFAULT_DATABASE_URL, repr=False)
    db_pool_size: int = 20
    redis_url: str | None = None
    promo_secret_pepper: str = attrs.field(default="", repr=False)
    promo_secret_pepper_previous: tuple[str, ...] = attrs.field(default=(), repr=False)
    internal_api_token: str | None = attrs.field(default=None, repr=False)
    internal_ip_allowlist: tuple[IpNetwork, ...] = (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    trusted_proxy_count: int = 0
    telegram_bot_token: str | None = attrs.field(default=None, repr=False)
    telegram_webhook_secret: str | None = attrs.field(default=None, repr=False)
    telegram_api_url: str = DEFAULT_TELEGRAM_API_URL
    ops_alert_webhook_url: str | None = None
    ops_alert_slack_webhook_url: str | None = None
    ops_alert_pagerduty_events_url: str = DEFAULT_PAGERDUTY_EVENTS_URL
    ops_alert_pagerduty_routing_key: str | None = attrs.field(default=None, repr=False)
    ops_alert_escalation_policy_json: str | None = None
    ops_alert_timeout_seconds: float = 5.0
    ops_alert_max_retries: int = 3
    products_file: str | None = None
    policy: PromoPolicy = attrs.field(factory=PromoPolicy)

    @property
    def adapter_family(self) -> str:
        """``memory`` for ``DATABASE_URL=memory://``, else ``sql``."""
        return "memory" if self.database_url.startswith("memory:") else "sql"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, require_pepper: bool = True) -> Settings:
        e = dict(os.environ if env is None else env)
        r = _Reader(e)
        pepper = r.text("PROMO_SECRET_PEPPER")
        if not pepper:
            if require_pepper:
                raise ConfigurationError("PROMO_SECRET_PEPPER is required (a long random secret)")
            pepper = DEMO_PEPPER
        policy_fields = {
            "fail_limit": r.integer("PROMO_FAIL_LIMIT", 5, minimum=1),
            "fail_window_hours": r.integer("PROMO_FAIL_WINDOW_HOURS", 24, minimum=1),
            "block_minutes": r.integer("PROMO_BLOCK_MINUTES", 60, minimum=1),
            "reservation_ttl_minutes": r.integer("PROMO_RESERVATION_TTL_MINUTES", 15, minimum=1),
            "invoice_ttl_minutes": r.integer("PAYMENT_INVOICE_TTL_MINUTES", 30, minimum=1),
            "guard_window_minutes": r.integer("PROMO_GUARD_WINDOW_MINUTES", 10, minimum=1),
            "guard_min_failures": r.integer("PROMO_GUARD_MIN_FAILURES", 20, minimum=1),
            "guard_min_users": r.integer("PROMO_GUARD_MIN_USERS", 5, minimum=1),
            "guard_prefix_min_failures": r.integer("PROMO_GUARD_PREFIX_MIN_FAILURES", 50, minimum=1),
            "job_batch_size": r.integer("PROMO_JOB_BATCH_SIZE", 500, minimum=1),
            "reconciliation_window_hours": r.integer("PAYMENTS_RECONCILIATION_WINDOW_HOURS", 24, minimum=1,
                                                     maximum=720),
            "reconciliation_grace_minutes": r.integer("PAYMENTS_RECONCILIATION_GRACE_MINUTES", 15, minimum=1),
            "recovery_window_hours": r.integer("PAYMENTS_RECOVERY_WINDOW_HOURS", 24, minimum=1, maximum=720),
            "recovery_grace_minutes": r.integer("PAYMENTS_RECOVERY_GRACE_MINUTES", 2, minimum=1),
        }
        return cls(
            database_url=r.parse("DATABASE_URL", _database_url, DEFAULT_DATABASE_URL),
            db_pool_size=r.integer("STARPROMO_DB_POOL_SIZE", 20, minimum=1),
            redis_url=r.text("REDIS_URL"),
            promo_secret_pepper=pepper,
            promo_secret_pepper_previous=tuple(p for p in (r.text("PROMO_SECRET_PEPPER_PREVIOUS") or "").split(",")
                                               if p.strip()),
            internal_api_token=r.text("INTERNAL_API_TOKEN"),
            internal_ip_allowlist=r.parse("INTERNAL_IP_ALLOWLIST", _parse_cidrs, cls.internal_ip_allowlist_default()),
            trusted_proxy_count=r.integer("TRUSTED_PROXY_COUNT", 0, minimum=0),
            telegram_bot_token=r.text("TELEGRAM_BOT_TOKEN"),
            telegram_webhook_secret=r.text("TELEGRAM_WEBHOOK_SECRET"),
            telegram_api_url=r.url("TELEGRAM_API_URL") or DEFAULT_TELEGRAM_API_URL,
            ops_alert_webhook_url=r.url("OPS_ALERT_WEBHOOK_URL"),
            ops_alert_slack_webhook_url=r.url("OPS_ALERT_SLACK_WEBHOOK_URL"),
            ops_alert_pagerduty_events_url=r.url("OPS_ALERT_PAGERDUTY_EVENTS_URL") or DEFAULT_PAGERDUTY_EVENTS_URL,
            ops_alert_pagerduty_routing_key=r.text("OPS_ALERT_PAGERDUTY_ROUTING_KEY"),
            ops_alert_escalation_policy_json=r.text("OPS_ALERT_ESCALATION_POLICY_JSON"),
            ops_alert_timeout_seconds=r.parse("OPS_ALERT_TIMEOUT_SECONDS", _positive_float, 5.0),
            ops_alert_max_retries=r.integer("OPS_ALERT_MAX_RETRIES", 3, minimum=0),
            products_file=r.text("STARPROMO_PRODUCTS_FILE"),
            policy=PromoPolicy(**policy_fields),
        )

    @staticmethod
    def internal_ip_allowlist_default() -> tuple[IpNetwork, ...]:
        return (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))


def _parse_cidrs(raw: str) -> tuple[IpNetwork, ...]:
    nets = tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())
    if not nets:
        raise ValueError("at least one CIDR is required")
    return nets


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a finite number > 0")
    return value


DATABASE_SCHEMES = ("memory://", "sqlite://", "postgresql://", "postgresql+psycopg://", "postgres://")


def _database_url(raw: str) -> str:
    if not raw.startswith(DATABASE_SCHEMES):
        raise ValueError("expected sqlite:///PATH, postgresql+psycopg://USER:PASSWORD@HOST/DB or memory://")
    return raw


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str) -> str | None:
        value = self._env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def parse(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except (ValueError, TypeError) as exc:
            shown = repr(raw.split("@")[-1]) if name == "DATABASE_URL" else repr(raw)  # never echo a password
            raise ConfigurationError(f"{name}: invalid value {shown} ({exc})") from None

    def integer(self, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
        def parse(raw: str) -> int:
            value = int(raw)
            if value < minimum:
                raise ValueError(f"must be >= {minimum}")
            if maximum is not None and value > maximum:
                raise ValueError(f"must be <= {maximum}")
            return value

        return self.parse(name, parse, default)

    def url(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is not None and not raw.startswith(("http://", "https://")):
            raise ConfigurationError(f"{name}: must be an http(s) URL, got {raw!r}")
        return raw.rstrip("/") if raw is not None and name == "TELEGRAM_API_URL" else raw


def settings_summary(settings: Settings) -> dict[str, Any]:
    """A log-safe view of the settings: secrets shown only as set/unset."""
    return {
        "database_url": settings.database_url.split("@")[-1],
        "redis_url": (settings.redis_url or "").split("@")[-1] or None,
        "adapter_family": settings.adapter_family,
        "internal_api_token": bool(settings.internal_api_token),
        "telegram_bot_token": bool(settings.telegram_bot_token),
    }
