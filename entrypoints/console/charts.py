"""Charts drawn on the server as inline SVG: nothing to download, nothing for the CSP to allow, readable
without a script. Each chart has a text title, a legend, axis labels and a ``<title>`` per point for hover,
and a screen reader gets the same figures from the table each page shows beside it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs
from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28


@attrs.frozen
class Series:
    name: str
    values: Sequence[float]
    colour: str


def nice_max(value: float) -> float:
    """The axis top: 1, 2 or 5 times a power of ten at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 1.0
    while power * 10 <= value:
        power *= 10
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _fmt(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _label(moment: datetime, span_hours: int) -> str:
    return moment.strftime("%H:%M") if span_hours <= 36 else moment.strftime("%m-%d")


def line_chart(title: str, hours: Sequence[datetime], series: Sequence[Series], *, stacked_area: bool = False,
               unit: str = "") -> Markup:
    """Lines (or stacked areas) over hourly points; the y axis starts at zero."""
    n = len(hours)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if stacked_area:
        totals = [sum(s.values[i] for s in series) for i in range(n)]
        top = nice_max(max(totals, default=0))
    else:
        top = nice_max(max((max(s.values, default=0) for s in series), default=0))

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * v / top

    parts: list[str] = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for k in range(5):
        v = top * k / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>')
    if n:
        span = int((hours[-1] - hours[0]).total_seconds() // 3600) + 1
        ticks = 6 if n > 6 else n
        for t in range(ticks):
            i = round(t * (n - 1) / (ticks - 1)) if ticks > 1 else 0
            parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle">{_label(hours[i], span)}</text>')
    base = [0.0] * n
    for s in series:
        if not n:
            break
        if stacked_area:
            upper = [base[i] + s.values[i] for i in range(n)]
            pts = [f"{x(i):.1f},{y(upper[i]):.1f}" for i in range(n)]
            back = [f"{x(i):.1f},{y(base[i]):.1f}" for i in reversed(range(n))]
            parts.append(f'<polygon points="{" ".join(pts + back)}" fill="{s.colour}" fill-opacity="0.55" '
                         f'stroke="{s.colour}" stroke-width="1"/>')
            base = upper
        else:
            pts = [f"{x(i):.1f},{y(s.values[i]):.1f}" for i in range(n)]
            parts.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{s.colour}" stroke-width="2"/>')
        if n <= 200:
            for i in range(n):
                v = base[i] if stacked_area else s.values[i]
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{s.colour}">'
                             f'<title>{escape(s.name)} {hours[i].strftime("%Y-%m-%d %H:00")}: '
                             f'{_fmt(s.values[i])}{escape(unit)}</title></circle>')
    parts.append("</svg>")
    legend = "".join(
        f'<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="{s.colour}"/></svg> '
        f'{escape(s.name)} ({_fmt(sum(s.values))}{escape(unit)})</li>'
        for s in series
    )
    html = (f'<figure class="chart"><figcaption>{escape(title)}</figcaption>{"".join(parts)}'
            f'<ul class="legend">{legend}</ul></figure>')
    return Markup(html)  # noqa: S704 - every interpolated value above is escaped or a number


def usage_bar(used: int, limit: int | None, label: str) -> Markup:
    """A budget bar: ``used`` of ``limit`` (text only without a limit). SVG, so no inline style is needed."""
    if not limit:
        return Markup(f'<span class="usage">{used:,} used · no limit</span>')  # noqa: S704 - a number only
    share = min(1.0, used / limit)
    colour = "#a40e26" if share >= 1 else "#7a4b00" if share >= 0.8 else "#0b5cad"
    return Markup(  # noqa: S704 - every interpolated value is escaped or a number
        f'<span class="usage"><svg class="bar" viewBox="0 0 100 8" width="120" height="10" role="img" '
        f'aria-label="{escape(label)}: {used} of {limit}"><rect width="100" height="8" rx="4" fill="#e6e9ed"/>'
        f'<rect width="{share * 100:.1f}" height="8" rx="4" fill="{colour}"/></svg> '
        f'{used:,} / {limit:,} ({share:.0%})</span>'
    )
