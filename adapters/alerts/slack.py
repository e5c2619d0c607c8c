"""Slack incoming-webhook channel (SPEC 8): ``text`` (the notification line) plus Block Kit ``blocks``
showing severity, tier, summary, the key details and, for a grouped alert, its first items.

Every text is escaped first (``&``, ``<``, ``>``) and then fitted to Slack's limits — section text 3,000
characters, a field 2,000, at most 10 fields — never cut inside an escape, so it stays within them after
escaping (issue 17: text cut to 2,900 before escaping could pass 3,000 after)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from adapters.alerts._http import DeliveryOptions, JsonPoster
from adapters.jsonlog import json_default
from domain.alerts import RoutedAlert

SEVERITY_EMOJI = {"critical": ":red_circle:", "error": ":large_orange_circle:", "warning": ":warning:",
                  "info": ":information_source:"}
# Slack limits: 10 fields per section, 3,000 characters per section text, 2,000 per field; readable values.
MAX_DETAILS = 10
MAX_TEXT_CHARS = 3000
MAX_FIELD_CHARS = 2000
MAX_KEY_CHARS = 100
MAX_VALUE_CHARS = 200
MAX_ITEM_CHARS = 300
ITEMS = "items"
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (the only three Slack asks to escape)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escaped(text: str, limit: int) -> str:
    """``text`` escaped, at most ``limit`` characters after escaping (cut with ``…``, never inside an escape)."""
    out = _escape(text)
    if len(out) <= limit:
        return out
    parts: list[str] = []
    used = 0
    for ch in text:
        piece = _ESCAPES.get(ch, ch)
        if used + len(piece) > limit - 1:
            break
        parts.append(piece)
        used += len(piece)
    return "".join(parts) + "…"


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=json_default, ensure_ascii=False)
    return escaped(text, MAX_VALUE_CHARS)


def _items_text(details: Mapping[str, Any]) -> str | None:
    """A grouped alert's first items, one line each, within one section text."""
    items = details.get(ITEMS)
    if not isinstance(items, list) or not items:
        return None
    total = details.get("count")
    count = total if isinstance(total, int) and not isinstance(total, bool) else len(items)
    lines: list[str] = []
    used = 100  # room for the heading and the "… and N more" line
    for item in items:
        raw = item.get("summary") if isinstance(item, dict) and isinstance(item.get("summary"), str) else item
        line = "• " + (escaped(raw, MAX_ITEM_CHARS) if isinstance(raw, str) else _value(raw))
        if used + len(line) + 1 > MAX_TEXT_CHARS:
            break
        lines.append(line)
        used += len(line) + 1
    text = f"*Items* (first {len(lines)} of {count})\n" + "\n".join(lines)
    if count > len(lines):
        text += f"\n… and {count - len(lines)} more"
    return text


def slack_body(alert: RoutedAlert) -> dict[str, Any]:
    severity = alert.severity.upper()
    emoji = SEVERITY_EMOJI.get(alert.severity, ":bell:")
    details = [(k, v) for k, v in alert.details.items() if k != ITEMS][:MAX_DETAILS]
    head = f"{emoji} *[{severity}]* "
    blocks: list[dict[str, Any]] = [
        {"type": "section",
         "text": {"type": "mrkdwn", "text": head + escaped(alert.summary, MAX_TEXT_CHARS - len(head))}},
        {"type": "section",
         "fields": [
             {"type": "mrkdwn", "text": f"*Severity*\n{severity}"},
             {"type": "mrkdwn", "text": f"*Tier*\n{escaped(alert.tier, MAX_VALUE_CHARS)}"},
             {"type": "mrkdwn", "text": f"*Event*\n`{escaped(alert.event, MAX_VALUE_CHARS)}`"},
             {"type": "mrkdwn", "text": f"*Occurred at*\n{alert.occurred_at.isoformat()}"},
         ]},
    ]
    if details:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{escaped(str(k), MAX_KEY_CHARS)}*\n{_value(v)}"} for k, v in details]})
    items = _items_text(alert.details)
    if items is not None:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": items}})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"dedup_key: `{escaped(alert.dedup_key, MAX_VALUE_CHARS)}`"}]})
    line = f"[{severity}] {escaped(alert.tier, MAX_VALUE_CHARS)}: "
    return {"text": line + escaped(alert.summary, MAX_TEXT_CHARS - len(line)), "blocks": blocks}


class SlackChannel:
    name = "slack"

    def __init__(self, webhook_url: str, options: DeliveryOptions | None = None) -> None:
        self._url = webhook_url
        self._poster = JsonPoster(self.name, options or DeliveryOptions())

    def send(self, alert: RoutedAlert) -> bool:
        return self._poster.post(self._url, slack_body(alert), alert)
