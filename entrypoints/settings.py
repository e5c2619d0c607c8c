"""The one typed settings object, built from the environment at start-up (SPEC 11).

A bad value raises :class:`domain.errors.ConfigurationError` whose message names the variable.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

import attrs

from adapters.alerts.options import DeliveryOptions
from adapters.sql.engine import DEFAULT_POOL_SIZE, POOL_MODES, POOL_SESSION
from adapters.telegram.limits import CHAT_INTERVAL_SECONDS, DEFAULT_API_URL, DEFAULT_MESSAGES_PER_SECOND
from adapters.telegram.rules import check_webhook_secret
from domain.errors import ConfigurationError
from domain.outbox import DEFAULT_LEASE_SECONDS as DEFAULT_OUTBOX_LEASE_SECONDS
from domain.policy import PromoPolicy

T = TypeVar("T")

DEFAULT_DATABASE_URL = "sqlite:///starpromo.db"
DEFAULT_TELEGRAM_API_URL = DEFAULT_API_URL
DEFAULT_PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_OPS_SESSION_HOURS = 12
MIN_OPS_SESSION_SECRET = 32
DEMO_PEPPER = "starpromo-demo-pepper-not-for-production"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Every default is written once: here, on the fields below (or where the adapter that uses it declares it), and
# ``from_env`` reads them from a default instance; docs/configuration.md is checked against ``documented_defaults``.
# The adapters' defaults come from their light modules (adapters.telegram.limits, adapters.alerts.options), so that
# reading settings loads no telebot, requests or redis.
_ALERT_DELIVERY = DeliveryOptions()


@attrs.frozen
class Settings:
    database_url: str = attrs.field(default=DEFAULT_DATABASE_URL, repr=False)
    db_pool_size: int = DEFAULT_POOL_SIZE
    database_pool_mode: str = POOL_SESSION
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
    telegram_max_messages_per_second: int = DEFAULT_MESSAGES_PER_SECOND
    telegram_chat_interval_seconds: float = CHAT_INTERVAL_SECONDS
    telegram_outbox_lease_seconds: int = DEFAULT_OUTBOX_LEASE_SECONDS
    ops_alert_webhook_url: str | None = None
    ops_alert_slack_webhook_url: str | None = None
    ops_alert_pagerduty_events_url: str = DEFAULT_PAGERDUTY_EVENTS_URL
    ops_alert_pagerduty_routing_key: str | None = attrs.field(default=None, repr=False)
    ops_alert_escalation_policy_json: str | None = None
    ops_alert_timeout_seconds: float = _ALERT_DELIVERY.timeout_seconds
    ops_alert_max_retries: int = _ALERT_DELIVERY.max_retries
    products_file: str | None = None
    ops_session_secret: str | None = attrs.field(default=None, repr=False)
    ops_session_hours: int = DEFAULT_OPS_SESSION_HOURS
    policy: PromoPolicy = attrs.field(factory=PromoPolicy)

    @property
    def adapter_family(self) -> str:
        """``memory`` for ``DATABASE_URL=memory://``, else ``sql``."""
        return "memory" if self.database_url.startswith("memory:") else "sql"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, require_pepper: bool = True) -> Settings:
        return cls._read(_Reader(dict(os.environ if env is None else env)), require_pepper)

    @classmethod
    def _read(cls, r: _Reader, require_pepper: bool) -> Settings:
        d = cls()  # the defaults, as the fields above declare them
        pepper = r.text("PROMO_SECRET_PEPPER")
        if not pepper:
            if require_pepper:
                raise ConfigurationError("PROMO_SECRET_PEPPER is required (a long random secret)")
            pepper = DEMO_PEPPER
        policy_fields = {field: r.integer(name, getattr(d.policy, field), minimum=1, maximum=maximum)
                         for name, (field, maximum) in POLICY_VARIABLES.items()}
        return cls(
            database_url=r.parse("DATABASE_URL", _database_url, d.database_url),
            db_pool_size=r.integer("STARPROMO_DB_POOL_SIZE", d.db_pool_size, minimum=1),
            database_pool_mode=r.parse("DATABASE_POOL_MODE", _pool_mode, d.database_pool_mode),
            redis_url=r.text("REDIS_URL"),
            promo_secret_pepper=pepper,
            promo_secret_pepper_previous=tuple(p for p in (r.text("PROMO_SECRET_PEPPER_PREVIOUS") or "").split(",")
                                               if p.strip()),
            internal_api_token=r.text("INTERNAL_API_TOKEN"),
            internal_ip_allowlist=r.parse("INTERNAL_IP_ALLOWLIST", _parse_cidrs, d.internal_ip_allowlist),
            trusted_proxy_count=r.integer("TRUSTED_PROXY_COUNT", d.trusted_proxy_count, minimum=0),
            telegram_bot_token=r.text("TELEGRAM_BOT_TOKEN"),
            telegram_webhook_secret=r.parse("TELEGRAM_WEBHOOK_SECRET", check_webhook_secret, None),
            telegram_api_url=r.url("TELEGRAM_API_URL", d.telegram_api_url),
            # Telegram lets a bot send about 30 messages a second (up to 1000 with paid broadcasts).
            telegram_max_messages_per_second=r.integer("TELEGRAM_MAX_MESSAGES_PER_SECOND",
                                                       d.telegram_max_messages_per_second, minimum=1, maximum=1000),
            # Telegram: about one message a second to one chat (20 a minute in a group).
            telegram_chat_interval_seconds=r.parse("TELEGRAM_CHAT_INTERVAL_SECONDS", _chat_interval,
                                                   d.telegram_chat_interval_seconds),
            telegram_outbox_lease_seconds=r.integer("TELEGRAM_OUTBOX_LEASE_SECONDS", d.telegram_outbox_lease_seconds,
                                                    minimum=1, maximum=3600),
            ops_alert_webhook_url=r.url("OPS_ALERT_WEBHOOK_URL"),
            ops_alert_slack_webhook_url=r.url("OPS_ALERT_SLACK_WEBHOOK_URL"),
            ops_alert_pagerduty_events_url=r.url("OPS_ALERT_PAGERDUTY_EVENTS_URL", d.ops_alert_pagerduty_events_url),
            ops_alert_pagerduty_routing_key=r.text("OPS_ALERT_PAGERDUTY_ROUTING_KEY"),
            ops_alert_escalation_policy_json=r.text("OPS_ALERT_ESCALATION_POLICY_JSON"),
            ops_alert_timeout_seconds=r.parse("OPS_ALERT_TIMEOUT_SECONDS", _positive_float,
                                              d.ops_alert_timeout_seconds),
            ops_alert_max_retries=r.integer("OPS_ALERT_MAX_RETRIES", d.ops_alert_max_retries, minimum=0),
            products_file=r.text("STARPROMO_PRODUCTS_FILE"),
            ops_session_secret=r.parse("OPS_SESSION_SECRET", _session_secret, None),
            ops_session_hours=r.integer("OPS_SESSION_HOURS", d.ops_session_hours, minimum=1, maximum=24 * 30),
            policy=PromoPolicy(**policy_fields),
        )


# The policy knobs (SPEC 4 and 6): variable -> (``PromoPolicy`` field, largest value). Integers >= 1; their defaults
# are PromoPolicy's.
POLICY_VARIABLES: dict[str, tuple[str, int | None]] = {
    "PROMO_FAIL_LIMIT": ("fail_limit", None),
    "PROMO_FAIL_WINDOW_HOURS": ("fail_window_hours", None),
    "PROMO_BLOCK_MINUTES": ("block_minutes", None),
    "PROMO_RESERVATION_TTL_MINUTES": ("reservation_ttl_minutes", None),
    "PAYMENT_INVOICE_TTL_MINUTES": ("invoice_ttl_minutes", None),
    "PROMO_GUARD_WINDOW_MINUTES": ("guard_window_minutes", None),
    "PROMO_GUARD_MIN_FAILURES": ("guard_min_failures", None),
    "PROMO_GUARD_MIN_USERS": ("guard_min_users", None),
    "PROMO_GUARD_PREFIX_MIN_FAILURES": ("guard_prefix_min_failures", None),
    "PROMO_JOB_BATCH_SIZE": ("job_batch_size", None),
    "PAYMENTS_RECONCILIATION_WINDOW_HOURS": ("reconciliation_window_hours", 720),
    "PAYMENTS_RECONCILIATION_GRACE_MINUTES": ("reconciliation_grace_minutes", None),
    "PAYMENTS_RECOVERY_WINDOW_HOURS": ("recovery_window_hours", 720),
    "PAYMENTS_RECOVERY_GRACE_MINUTES": ("recovery_grace_minutes", None),
}


def documented_defaults() -> dict[str, Any]:
    """Every variable ``Settings.from_env`` reads, in reading order, with its default (None: unset), so
    docs/configuration.md can be checked against the one place each default is written."""
    reader = _Reader({})
    Settings._read(reader, require_pepper=False)
    return dict(reader.defaults)


def _pool_mode(raw: str) -> str:
    if raw not in POOL_MODES:
        raise ValueError("expected " + " or ".join(POOL_MODES))
    return raw


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


MAX_CHAT_INTERVAL_SECONDS = 60.0


def _chat_interval(raw: str) -> float:
    value = _positive_float(raw)
    if value > MAX_CHAT_INTERVAL_SECONDS:
        raise ValueError(f"must be <= {MAX_CHAT_INTERVAL_SECONDS:g}")
    return value


def _session_secret(raw: str) -> str:
    if len(raw) < MIN_OPS_SESSION_SECRET:
        raise ValueError(f"must be at least {MIN_OPS_SESSION_SECRET} characters (a long random secret)")
    return raw


DATABASE_SCHEMES = ("memory://", "sqlite://", "postgresql://", "postgresql+psycopg://", "postgres://")


def _database_url(raw: str) -> str:
    if not raw.startswith(DATABASE_SCHEMES):
        raise ValueError("expected sqlite:///PATH, postgresql+psycopg://USER:PASSWORD@HOST/DB or memory://")
    return raw


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.defaults: dict[str, Any] = {}  # every variable read, and its default

    def text(self, name: str) -> str | None:
        self.defaults.setdefault(name, None)
        value = self._env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def parse(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self.text(name)
        self.defaults[name] = default
        if raw is None:
            return default
        try:
            return parse(raw)
        except (ValueError, TypeError) as exc:
            if name.endswith(("SECRET", "TOKEN", "PEPPER")):  # never echo a secret
                raise ConfigurationError(f"{name}: invalid value ({exc})") from None
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

    @overload
    def url(self, name: str) -> str | None: ...

    @overload
    def url(self, name: str, default: str) -> str: ...

    def url(self, name: str, default: str | None = None) -> str | None:
        raw = self.text(name)
        self.defaults[name] = default
        if raw is None:
            return default
        if not raw.startswith(("http://", "https://")):
            raise ConfigurationError(f"{name}: must be an http(s) URL, got {raw!r}")
        return raw.rstrip("/") if name == "TELEGRAM_API_URL" else raw


def settings_summary(settings: Settings) -> dict[str, Any]:
    """A log-safe view of the settings: secrets shown only as set/unset."""
    return {
        "database_url": settings.database_url.split("@")[-1],
        "redis_url": (settings.redis_url or "").split("@")[-1] or None,
        "adapter_family": settings.adapter_family,
        "internal_api_token": bool(settings.internal_api_token),
        "telegram_bot_token": bool(settings.telegram_bot_token),
        "ops_console": bool(settings.ops_session_secret),
    }
