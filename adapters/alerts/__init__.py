"""HTTP alert channels (generic webhook, Slack, PagerDuty) and the notifier that routes alerts to them."""

from __future__ import annotations

from adapters.alerts._http import DeliveryOptions
from adapters.alerts.dispatcher import AlertChannel, RoutingNotifier, alert_from_dict, alert_to_dict
from adapters.alerts.generic import GenericWebhookChannel
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


def build_channels(
    *,
    webhook_url: str | None,
    slack_webhook_url: str | None,
    pagerduty_events_url: str,
    pagerduty_routing_key: str | None,
    options: DeliveryOptions,
) -> dict[str, AlertChannel]:
    """The configured channels only: a channel without its URL (PagerDuty: routing key) is left out."""
    channels: dict[str, AlertChannel] = {}
    if webhook_url:
        channels["generic"] = GenericWebhookChannel(webhook_url, options)
    if slack_webhook_url:
        channels["slack"] = SlackChannel(slack_webhook_url, options)
    if pagerduty_routing_key:
        channels["pagerduty"] = PagerDutyChannel(pagerduty_events_url, pagerduty_routing_key, options)
    return channels
