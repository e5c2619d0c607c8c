"""Gauges read from the database when Prometheus scrapes: state, not events, so no process has to keep them.

``starpromo_campaign_budget_remaining`` / ``_total`` for every ACTIVE campaign with a budget (its
``max_total_uses``), and ``starpromo_telegram_outbox_pending`` (the bot replies not yet delivered).
``starpromo_metrics_database_up`` says whether the read worked: a scrape never fails because the database is
away, it just carries no state gauges then.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from adapters.jsonlog import log_event
from domain.model import Campaign, CampaignFilter, CampaignStatus
from ports.repositories import UnitOfWorkFactory

log = logging.getLogger("starpromo.metrics")

PAGE = 200
# A scrape reads at most this many active campaigns (newest first); more would make /metrics a report.
MAX_CAMPAIGNS = 2000


class StateGauges:
    """A prometheus_client collector; ``collect()`` runs one short read per scrape."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    def budgeted_campaigns(self) -> list[Campaign]:
        found: list[Campaign] = []
        before: int | None = None
        with self._uow_factory() as uow:
            while len(found) < MAX_CAMPAIGNS:
                page = uow.campaigns.search(CampaignFilter(status=CampaignStatus.ACTIVE), PAGE, before)
                found.extend(c for c in page if c.max_total_uses is not None)
                if len(page) < PAGE:
                    break
                before = page[-1].id
        return found[:MAX_CAMPAIGNS]

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("starpromo_metrics_database_up",
                               "1 when this scrape could read the state gauges from the database, else 0.")
        try:
            campaigns = self.budgeted_campaigns()
            with self._uow_factory() as uow:
                pending = uow.telegram_outbox.backlog()
        except Exception as exc:  # the database is away: the event counters are still worth scraping
            log_event(log, "metrics_state_unavailable", logging.WARNING, error_type=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        remaining = GaugeMetricFamily("starpromo_campaign_budget_remaining",
                                      "Redemptions an ACTIVE campaign with a budget can still accept.",
                                      labels=["campaign_id", "campaign"])
        total = GaugeMetricFamily("starpromo_campaign_budget_total",
                                  "The budget (max_total_uses) of an ACTIVE campaign that has one.",
                                  labels=["campaign_id", "campaign"])
        for campaign in campaigns:
            assert campaign.max_total_uses is not None
            labels = [str(campaign.id), campaign.name]
            remaining.add_metric(labels, max(campaign.max_total_uses - campaign.used_total, 0))
            total.add_metric(labels, campaign.max_total_uses)
        yield remaining
        yield total
        outbox = GaugeMetricFamily("starpromo_telegram_outbox_pending",
                                   "Bot replies written and not yet delivered to Telegram (PENDING).")
        outbox.add_metric([], pending)
        yield outbox
