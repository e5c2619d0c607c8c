"""HTTP alert channels (generic webhook, Slack, PagerDuty) and the notifier that routes alerts to them.

The names below are imported on first use (PEP 562), so that importing a light module of this package
(``options``: the delivery defaults settings reads) does not load ``requests``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.lazy import lazy_exports

if TYPE_CHECKING:
    from adapters.alerts.dispatcher import AlertChannel, RoutingNotifier, alert_from_dict, alert_to_dict
    from adapters.alerts.generic import GenericWebhookChannel
    from adapters.alerts.options import DeliveryOptions
    from adapters.alerts.pagerduty import PagerDutyChannel
    from adapters.alerts.slack import SlackChannel

__all__ = [
    "AlertChannel",
    "DeliveryOptions",
    "GenericWebhookChannel",
    "PagerDutyChannel",
    "RoutingNotifier",
    "SlackChannel",
    "alert_from_dict",
    "alert_to_dict",
    "build_channels",
]

_HOMES = {
    "adapters.alerts.dispatcher": ("AlertChannel", "RoutingNotifier", "alert_from_dict", "alert_to_dict"),
    "adapters.alerts.options": ("DeliveryOptions",),
    "adapters.alerts.generic": ("GenericWebhookChannel",),
    "adapters.alerts.pagerduty": ("PagerDutyChannel",),
    "adapters.alerts.slack": ("SlackChannel",),
}

if not TYPE_CHECKING:  # mypy sees the imports above; a misspelt name stays an error for it
    __getattr__, __dir__ = lazy_exports(__name__, _HOMES)


def build_channels(
    *,
    webhook_url: str | None,
    slack_webhook_url: str | None,
    pagerduty_events_url: str,
    pagerduty_routing_key: str | None,
    options: DeliveryOptions,
) -> dict[str, AlertChannel]:
    """The configured channels only: a channel without its URL (PagerDuty: routing key) is left out."""
    from adapters.alerts.generic import GenericWebhookChannel
    from adapters.alerts.pagerduty import PagerDutyChannel
    from adapters.alerts.slack import SlackChannel

    channels: dict[str, AlertChannel] = {}
    if webhook_url:
        channels["generic"] = GenericWebhookChannel(webhook_url, options)
    if slack_webhook_url:
        channels["slack"] = SlackChannel(slack_webhook_url, options)
    if pagerduty_routing_key:
        channels["pagerduty"] = PagerDutyChannel(pagerduty_events_url, pagerduty_routing_key, options)
    return channels
