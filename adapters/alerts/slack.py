"""Slack incoming-webhook channel (SPEC 8): ``text`` (the notification line) plus Block Kit ``blocks``
showing severity, tier, summary and the key details."""

from __future__ import annotations

import json
from typing import Any

from adapters.alerts._http import DeliveryOptions, JsonPoster
from adapters.jsonlog import json_default
from domain.alerts import RoutedAlert

SEVERITY_EMOJI = {"critical": ":red_circle:", "error": ":large_orange_circle:", "warning": ":warning:",
                  "info": ":information_source:"}
# Slack limits: 10 fields per section, 3000 characters per text object; keep the message readable.
MAX_DETAILS = 10
MAX_VALUE_CHARS = 200
MAX_SUMMARY_CHARS = 2900


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (the only three Slack asks to escape)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=json_default, ensure_ascii=False)
    return _escape(_clip(text, MAX_VALUE_CHARS))


def slack_body(alert: RoutedAlert) -> dict[str, Any]:
    severity = alert.severity.upper()
    emoji = SEVERITY_EMOJI.get(alert.severity, ":bell:")
    details = list(alert.details.items())[:MAX_DETAILS]
    blocks: list[dict[str, Any]] = [
        {"type": "section",
         "text": {"type": "mrkdwn",
                  "text": f"{emoji} *[{severity}]* {_escape(_clip(alert.summary, MAX_SUMMARY_CHARS))}"}},
        {"type": "section",
         "fields": [
             {"type": "mrkdwn", "text": f"*Severity*\n{severity}"},
             {"type": "mrkdwn", "text": f"*Tier*\n{_escape(alert.tier)}"},
             {"type": "mrkdwn", "text": f"*Event*\n`{_escape(alert.event)}`"},
             {"type": "mrkdwn", "text": f"*Occurred at*\n{alert.occurred_at.isoformat()}"},
         ]},
    ]
    if details:
        blocks.append({"type": "section",
                       "fields": [{"type": "mrkdwn", "text": f"*{_escape(str(k))}*\n{_value(v)}"} for k, v in details]})
    blocks.append({"type": "context",
                   "elements": [{"type": "mrkdwn", "text": f"dedup_key: `{_escape(alert.dedup_key)}`"}]})
    return {
        "text": f"[{severity}] {_escape(alert.tier)}: {_escape(_clip(alert.summary, MAX_SUMMARY_CHARS))}",
        "blocks": blocks,
    }


class SlackChannel:
    name = "slack"

    def __init__(self, webhook_url: str, options: DeliveryOptions | None = None) -> None:
        self._url = webhook_url
        self._poster = JsonPoster(self.name, options or DeliveryOptions())

    def send(self, alert: RoutedAlert) -> bool:
        return self._poster.post(self._url, slack_body(alert), alert)
