"""The composition root: the only module that names concrete adapters."""

from __future__ import annotations

from dependency_injector import containers, providers

from adapters.memory import InMemoryNotifier, InMemoryUnitOfWorkFactory, MemoryStore, SystemClock
from domain.batch import BatchService
from domain.campaigns import CampaignService
from domain.codes import CodeHasher
from domain.redemption import RedemptionService
from entrypoints.settings import Settings


def _hasher(settings: Settings) -> CodeHasher:
    return CodeHasher(settings.promo_secret_pepper, settings.promo_secret_pepper_previous)


def _family(settings: Settings) -> str:
    return settings.adapter_family


class Container(containers.DeclarativeContainer):
    """Wires settings -> adapters -> domain services. Override providers in tests."""

    wiring_config = containers.WiringConfiguration(packages=["entrypoints.http"], auto_wire=False)

    settings = providers.Singleton(Settings.from_env)

    clock = providers.Singleton(SystemClock)
    hasher = providers.Singleton(_hasher, settings)
    policy = providers.Callable(lambda s: s.policy, settings)

    memory_store = providers.Singleton(MemoryStore)
    uow_factory = providers.Selector(
        providers.Callable(_family, settings),
        memory=providers.Singleton(InMemoryUnitOfWorkFactory, memory_store),
    )

    notifier = providers.Singleton(InMemoryNotifier)

    redemption_service = providers.Factory(RedemptionService, uow_factory, clock, hasher, policy)
    campaign_service = providers.Factory(CampaignService, uow_factory, clock, hasher)
    batch_service = providers.Factory(BatchService, uow_factory, clock, hasher)


def build_container(settings: Settings | None = None) -> Container:
    """A container over ``settings`` (read from the environment when omitted)."""
    container = Container()
    if settings is not None:
        container.settings.override(providers.Object(settings))
    return container
