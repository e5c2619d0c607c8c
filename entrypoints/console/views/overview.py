"""Overview (SPEC 14): the dashboard of SPEC 7 for a chosen window, with charts, guard candidates, recent
automatic pauses and open payment reviews."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import render_template, request
from wtforms import SelectField

from domain.audit import CAMPAIGN_AUTO_PAUSED, CODE_AUTO_PAUSED
from domain.model import AuditEntry, AuditFilter
from entrypoints.console import security
from entrypoints.console.blueprint import bp
from entrypoints.console.charts import Series, line_chart
from entrypoints.console.forms import ConsoleForm

WINDOWS = (("24", "last 24 hours"), ("72", "last 3 days"), ("168", "last 7 days"), ("720", "last 30 days"))
RECENT_PAUSES = 10


class WindowForm(ConsoleForm):
    window_hours = SelectField("Window", choices=list(WINDOWS), default="24")


def _hours(series: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(p["hour"].replace("Z", "+00:00")) for p in series]


def charts(series: list[dict[str, Any]]) -> list[Any]:
    """The three time-series charts of SPEC 14 from a dashboard/stats ``series``."""
    hours = _hours(series)
    accepted = [p["accepted"] for p in series]
    refused = [p["attempts"] - p["accepted"] for p in series]
    return [
        line_chart("Attempts by result", hours, [Series("accepted", accepted, "#1a7f37"),
                                                 Series("not accepted", refused, "#a40e26")], stacked_area=True),
        line_chart("Accepted vs applied", hours, [Series("accepted", accepted, "#1a7f37"),
                                                  Series("applied", [p["applied"] for p in series], "#0b5cad")]),
        line_chart("Stars revenue", hours, [Series("Stars", [p["stars_revenue"] for p in series], "#6f42c1")],
                   unit=" ★"),
    ]


def recent_auto_pauses() -> list[AuditEntry]:
    audit = security.container().audit_service()
    entries = [*audit.list_entries(AuditFilter(action=CAMPAIGN_AUTO_PAUSED), RECENT_PAUSES).items,
               *audit.list_entries(AuditFilter(action=CODE_AUTO_PAUSED), RECENT_PAUSES).items]
    return sorted(entries, key=lambda e: e.at, reverse=True)[:RECENT_PAUSES]


@bp.route("/")
def overview() -> tuple[str, int]:
    form = WindowForm(request.args)
    status = 200
    if not form.validate():
        form.window_hours.data = "24"
        status = 400
    metrics = security.container().dashboard_service().metrics(int(form.window_hours.data or 24))
    return render_template("console/overview.html", form=form, m=metrics, charts=charts(metrics["series"]),
                           pauses=recent_auto_pauses()), status
