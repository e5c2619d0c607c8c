"""No alert storms (SPEC 8): one job run raises at most one alert per event and kind of difference.

A job collects what it found as :class:`AlertItem` s (each with its own stable key: the item's identity, which
the job remembers — a ``payment_reviews`` row, a paused code — so a later run does not raise it again) and
raises one :func:`grouped_alert` per event and kind. The alert carries the count, the first
``MAX_ALERT_ITEMS`` items, and how many were left out (``items_trimmed``); the delivery channels trim further
to fit their own size limits, saying so. Its ``dedup_key`` is the item's own key for a single item, else a hash
of the event, the kind and every item's key: the same differences give the same key (PagerDuty folds a repeat
into its incident), different ones a new incident.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from domain.alerts import AlertPolicy, RoutedAlert, dedup_key

MAX_ALERT_ITEMS = 100


@attrs.frozen
class AlertItem:
    """One difference (or pause, or review) inside a grouped alert."""

    kind: str
    key: str
    summary: str
    details: Mapping[str, Any] = attrs.field(factory=dict)


def by_kind(items: Iterable[AlertItem]) -> dict[str, list[AlertItem]]:
    """The items grouped by kind, kinds and items in the order first seen."""
    groups: dict[str, list[AlertItem]] = {}
    for item in items:
        groups.setdefault(item.kind, []).append(item)
    return groups


def group_key(event: str, kind: str, items: Sequence[AlertItem]) -> str:
    if len(items) == 1:
        return items[0].key
    return dedup_key(event, kind, sorted(i.key for i in items))


def grouped_alert(policy: AlertPolicy, event: str, kind: str, items: Sequence[AlertItem], occurred_at: datetime,
                  headline: str | None = None, context: Mapping[str, Any] | None = None) -> RoutedAlert:
    """One alert for every item of one kind. ``headline`` (the summary) defaults to the item's own summary for a
    single item, else to the count and the first item's summary; ``context`` goes into the details once (the
    window and figures of a reconciliation, say), never repeated per item."""
    if not items:
        raise ValueError("a grouped alert needs at least one item")
    if any(i.kind != kind for i in items):
        raise ValueError("every item of a grouped alert is of its kind")
    n = len(items)
    summary = headline or (items[0].summary if n == 1 else f"{n} x {kind}: {items[0].summary} (and {n - 1} more)")
    shown = items[:MAX_ALERT_ITEMS]
    details: dict[str, Any] = {
        "kind": kind,
        "count": n,
        **(context or {}),
        "items": [{"dedup_key": i.key, "summary": i.summary, **i.details} for i in shown],
        "items_trimmed": n - len(shown),
    }
    return policy.route(event, summary, details, occurred_at, dedup=group_key(event, kind, items))
