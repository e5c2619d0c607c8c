"""The composition root: the only module that names concrete adapters."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from dependency_injector import containers, providers

from domain.alerts import AlertPolicy
from domain.audit import AuditService
from domain.batch import BatchService
from domain.campaigns import CampaignService
from domain.checkout import CheckoutService
from domain.codes import CodeHasher
from domain.dashboard import DashboardService
from domain.errors import ConfigurationError
from domain.maintenance import MaintenanceService
from domain.operators import OperatorService
from domain.outbox import DeliveryPolicy
from domain.payment_reviews import PaymentReviewService
from domain.products import ProductCatalog, parse_products
from domain.promo_codes import CodeService
from domain.reconciliation import ReconciliationService
from domain.recovery import RecoveryService
from domain.reports import ReportService
from entrypoints.instrumented import MeteredRedemptionService
from entrypoints.settings import Settings
from ports.clock import Clock
from ports.jobs import JobQueue
from ports.metrics import Metrics
from ports.notifier import Notifier
from ports.payments import PaymentGateway
from ports.repositories import UnitOfWorkFactory

# The adapters (and the bot, which needs telebot) are imported by the functions below that build them, when a
# provider is first called: a command loads only the families it uses (`starpromo campaigns list` on SQLite: no
# Telegram, Redis/RQ, Prometheus, alert channels, argon2 or in-memory repositories). Names only for type checking:
if TYPE_CHECKING:
    from adapters.alerts.dispatcher import AlertChannel, RoutingNotifier
    from adapters.memory import InMemoryUnitOfWorkFactory, MemoryStore, SystemClock
    from adapters.passwords import Argon2Passwords
    from adapters.prometheus import StateGauges
    from adapters.sql.engine import EngineHolder
    from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
    from adapters.telegram import TelegramBotApi, TelegramPaymentGateway
    from adapters.telegram.pacing import MessagePacer
    from entrypoints.bot.handlers import PromoBot
    from entrypoints.bot.intake import UpdateIntake
    from entrypoints.bot.outbox import OutboxDelivery, OutboxWorker

def _hasher(settings: Settings) -> CodeHasher:
    return CodeHasher(settings.promo_secret_pepper, settings.promo_secret_pepper_previous)


def _family(settings: Settings) -> str:
    return settings.adapter_family


def _system_clock() -> SystemClock:
    from adapters.memory.clock import SystemClock

    return SystemClock()


def _process_metrics() -> Metrics:
    from adapters.prometheus import process_metrics

    return process_metrics()


# The adapter families (``DATABASE_URL``): only the chosen one is imported.
def _memory_store() -> MemoryStore:
    from adapters.memory import MemoryStore

    return MemoryStore()


def _memory_uow_factory(store: MemoryStore) -> InMemoryUnitOfWorkFactory:
    from adapters.memory import InMemoryUnitOfWorkFactory

    return InMemoryUnitOfWorkFactory(store)


def _sql_engines(url: str, pool_size: int, pool_mode: str) -> EngineHolder:
    from adapters.sql.engine import EngineHolder

    return EngineHolder(url, pool_size, pool_mode)


def _sql_uow_factory(engines: EngineHolder) -> SqlUnitOfWorkFactory:
    from adapters.sql.unit_of_work import SqlUnitOfWorkFactory

    return SqlUnitOfWorkFactory(engines)


def _state_gauges(uow_factory: UnitOfWorkFactory) -> StateGauges:
    from adapters.prometheus import StateGauges

    return StateGauges(uow_factory)


def _password_hasher() -> Argon2Passwords:
    from adapters.passwords import Argon2Passwords

    return Argon2Passwords()


def _telegram_api(settings: Settings, metrics: Metrics) -> TelegramBotApi:
    if not settings.telegram_bot_token:
        raise ConfigurationError("TELEGRAM_BOT_TOKEN is required for the Telegram bot and Stars payments")
    from adapters.telegram import TelegramBotApi

    try:
        return TelegramBotApi(settings.telegram_bot_token, settings.telegram_api_url, metrics=metrics)
    except ValueError as exc:  # telebot's token format check (one colon, no spaces)
        raise ConfigurationError(f"TELEGRAM_BOT_TOKEN: {exc}") from None


def _telegram_payment_gateway(api: TelegramBotApi) -> TelegramPaymentGateway:
    from adapters.telegram import TelegramPaymentGateway

    return TelegramPaymentGateway(api)


def _promo_bot(api: TelegramBotApi, redemptions: MeteredRedemptionService, checkout: CheckoutService, clock: Clock,
               uow_factory: UnitOfWorkFactory) -> PromoBot:
    from entrypoints.bot.handlers import PromoBot

    return PromoBot(api, redemptions, checkout, clock, uow_factory)


def _message_pacer(per_second: int, redis_url: str | None, chat_interval: float) -> MessagePacer:
    from adapters.telegram.pacing import message_pacer

    return message_pacer(per_second, redis_url, chat_interval)


def _outbox_delivery(settings: Settings, uow_factory: UnitOfWorkFactory, api: TelegramBotApi, pacer: MessagePacer,
                     clock: Clock) -> OutboxDelivery:
    from entrypoints.bot.outbox import OutboxDelivery

    policy = DeliveryPolicy(lease=timedelta(seconds=settings.telegram_outbox_lease_seconds))
    return OutboxDelivery(uow_factory, api, pacer, clock, policy)


def _outbox_worker(delivery: OutboxDelivery) -> OutboxWorker:
    from entrypoints.bot.outbox import OutboxWorker

    return OutboxWorker(delivery)


def _telegram_intake(settings: Settings, bot: PromoBot, uow_factory: UnitOfWorkFactory, clock: Clock,
                     queue: JobQueue, outbox: OutboxWorker) -> UpdateIntake:
    from entrypoints.bot.intake import UpdateIntake

    return UpdateIntake(bot, uow_factory, clock, queue if settings.redis_url else None, outbox)


# Alert delivery (SPEC 8) and the job queue (SPEC 6): RQ when REDIS_URL is set, in-process otherwise.
ALERT_DELIVERY_JOB = "entrypoints.worker.alerts:deliver_alert"


def _alert_channels(settings: Settings) -> dict[str, AlertChannel]:
    from adapters.alerts import DeliveryOptions, build_channels

    return build_channels(
        webhook_url=settings.ops_alert_webhook_url,
        slack_webhook_url=settings.ops_alert_slack_webhook_url,
        pagerduty_events_url=settings.ops_alert_pagerduty_events_url,
        pagerduty_routing_key=settings.ops_alert_pagerduty_routing_key,
        options=DeliveryOptions(settings.ops_alert_timeout_seconds, settings.ops_alert_max_retries),
    )


def _alert_policy(settings: Settings, channels: dict[str, AlertChannel]) -> AlertPolicy:
    """Raises ConfigurationError naming OPS_ALERT_ESCALATION_POLICY_JSON on a bad override."""
    return AlertPolicy.from_json(settings.ops_alert_escalation_policy_json, tuple(channels))


def _products(settings: Settings) -> ProductCatalog:
    """The SPEC default catalog, or the one in ``STARPROMO_PRODUCTS_FILE`` (errors name the file and field)."""
    if not settings.products_file:
        return ProductCatalog()
    try:
        with open(settings.products_file, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"STARPROMO_PRODUCTS_FILE: cannot read {settings.products_file!r} ({exc})") from None
    return parse_products(text, f"STARPROMO_PRODUCTS_FILE {settings.products_file}")


def _job_queue(settings: Settings) -> JobQueue:
    if settings.redis_url:
        from adapters.rq.queue import RqJobQueue, redis_connection

        return RqJobQueue(redis_connection(settings.redis_url))
    from adapters.memory import InlineJobQueue

    return InlineJobQueue()


def _notifier(settings: Settings, channels: dict[str, AlertChannel], queue: JobQueue, metrics: Metrics) -> Notifier:
    """No channel configured: keep alerts in memory (tests, library hosts). Otherwise deliver them,
    through an RQ job when Redis is configured so a slow receiver never holds up the raising job."""
    if not channels:
        from adapters.memory import InMemoryNotifier

        return InMemoryNotifier()
    from adapters.alerts import RoutingNotifier

    if settings.redis_url:
        return RoutingNotifier(channels, queue=queue, delivery_job=ALERT_DELIVERY_JOB, metrics=metrics)
    return RoutingNotifier(channels, metrics=metrics)


def _alert_dispatcher(channels: dict[str, AlertChannel], metrics: Metrics) -> RoutingNotifier:
    from adapters.alerts import RoutingNotifier

    return RoutingNotifier(channels, metrics=metrics)


class Container(containers.DeclarativeContainer):
    """Wires settings -> adapters -> domain services. Override providers in tests."""

    wiring_config = containers.WiringConfiguration(packages=["entrypoints.http"], auto_wire=False)

    settings = providers.Singleton(Settings.from_env)

    clock = providers.Singleton(_system_clock)
    # SPEC 15. One per process (prometheus_client's multiprocess files are per process); tests may override it
    # with adapters.memory.metrics.InMemoryMetrics or a PrometheusMetrics of their own registry.
    metrics: providers.Provider[Metrics] = providers.Singleton(_process_metrics)
    hasher = providers.Singleton(_hasher, settings)
    policy = providers.Callable(lambda s: s.policy, settings)

    memory_store = providers.Singleton(_memory_store)
    # Lazy and fork-safe: built on first use; a forked child (RQ's work horse) keeps the engine and drops the
    # inherited pool (dispose(close=False)).
    sql_engines = providers.Singleton(_sql_engines, settings.provided.database_url, settings.provided.db_pool_size,
                                      settings.provided.database_pool_mode)
    uow_factory = providers.Selector(
        providers.Callable(_family, settings),
        memory=providers.Singleton(_memory_uow_factory, memory_store),
        sql=providers.Singleton(_sql_uow_factory, sql_engines),
    )
    # Gauges read from the database at scrape time (campaign budgets; the Telegram outbox plugs in here).
    state_gauges = providers.Singleton(_state_gauges, uow_factory)

    alert_channels = providers.Singleton(_alert_channels, settings)
    alert_policy = providers.Singleton(_alert_policy, settings, alert_channels)
    job_queue = providers.Singleton(_job_queue, settings)
    notifier = providers.Singleton(_notifier, settings, alert_channels, job_queue, metrics)
    # Delivers now, never enqueues: what the alert-delivery job itself uses.
    alert_dispatcher = providers.Singleton(_alert_dispatcher, alert_channels, metrics)

    redemption_service = providers.Factory(MeteredRedemptionService, uow_factory, clock, hasher, policy, metrics)
    products = providers.Singleton(_products, settings)
    campaign_service = providers.Factory(CampaignService, uow_factory, clock, hasher, products.provided.codes)
    code_service = providers.Factory(CodeService, uow_factory, clock, hasher)
    report_service = providers.Factory(ReportService, uow_factory, clock, policy)
    audit_service = providers.Factory(AuditService, uow_factory)

    # Bulk imports refuse unknown products: a typo there would make thousands of codes apply to nothing.
    batch_service = providers.Factory(BatchService, uow_factory, clock, hasher, products.provided.codes)
    checkout_service = providers.Factory(CheckoutService, uow_factory, clock, products, policy)
    maintenance_service = providers.Factory(MaintenanceService, uow_factory, clock, policy, notifier, alert_policy)
    dashboard_service = providers.Factory(DashboardService, uow_factory, clock, policy)
    # Telegram Stars payments (refundStarPayment, getStarTransactions): the Telegram adapter overrides this;
    # undefined, the HTTP payments refund route is not served (entrypoints.http.app.FEATURES).
    payment_gateway: providers.Dependency[PaymentGateway] = providers.Dependency()
    # Payments reliability (SPEC 6): both need the gateway, so they exist only with TELEGRAM_BOT_TOKEN.
    reconciliation_service = providers.Factory(ReconciliationService, uow_factory, clock, payment_gateway,
                                               checkout_service, notifier, alert_policy, policy)
    recovery_service = providers.Factory(RecoveryService, uow_factory, clock, payment_gateway, checkout_service,
                                         notifier, alert_policy, policy)
    payment_review_service = providers.Factory(PaymentReviewService, uow_factory, clock)
    # The ops console's operators (SPEC 14): argon2id password hashes, sign-in throttled per name and address.
    password_hasher = providers.Singleton(_password_hasher)
    operator_service = providers.Factory(OperatorService, uow_factory, clock, password_hasher)

    # The Bot API (TELEGRAM_BOT_TOKEN, TELEGRAM_API_URL); provide_telegram() makes it the payment gateway.
    telegram_api = providers.Singleton(_telegram_api, settings, metrics)
    telegram_payment_gateway = providers.Singleton(_telegram_payment_gateway, telegram_api)
    telegram_promo_bot = providers.Singleton(_promo_bot, telegram_api, redemption_service, checkout_service, clock,
                                             uow_factory)
    # Flood control and the outbox (SPEC 9): one pacer and one delivery worker per process (started by the
    # processes that deliver: serve with the bot, worker, polling).
    telegram_pacer = providers.Singleton(_message_pacer, settings.provided.telegram_max_messages_per_second,
                                         settings.provided.redis_url, settings.provided.telegram_chat_interval_seconds)
    telegram_outbox_delivery = providers.Singleton(_outbox_delivery, settings, uow_factory, telegram_api,
                                                   telegram_pacer, clock)
    telegram_outbox_worker = providers.Singleton(_outbox_worker, telegram_outbox_delivery)
    # Defined by provide_telegram() when TELEGRAM_BOT_TOKEN is set; the webhook is served only then.
    telegram_bot: providers.Dependency[PromoBot] = providers.Dependency()
    # Webhook updates go to the RQ queue when REDIS_URL is set, else they are handled in the request.
    telegram_intake = providers.Factory(_telegram_intake, settings, telegram_bot, uow_factory, clock, job_queue,
                                        telegram_outbox_worker)


def build_container(settings: Settings | None = None) -> Container:
    """A container over ``settings`` (read from the environment when omitted)."""
    container = Container()
    if settings is not None:
        container.settings.override(providers.Object(settings))
    provide_telegram(container)
    return container


def provide_telegram(container: Container) -> None:
    """With ``TELEGRAM_BOT_TOKEN`` set, Telegram is the ``payment_gateway`` (refunds, reconciliation) and the
    bot is defined (the webhook is served). Raises ConfigurationError for a malformed token; other bad
    settings are left for the command to report when it reads them."""
    try:
        settings = container.settings()
    except ConfigurationError:
        return
    if not settings.telegram_bot_token:
        return
    container.telegram_api()  # a malformed token stops start-up here, naming the variable
    if not container.payment_gateway.is_defined:
        container.payment_gateway.override(container.telegram_payment_gateway)
    if not container.telegram_bot.is_defined:
        container.telegram_bot.override(container.telegram_promo_bot)
