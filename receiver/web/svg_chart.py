"""Server-side SVG charts for the dashboard: no network, no script, no inline style (the page's Content Security
Policy forbids both). Colours come from CSS classes in static/dashboard.css, so dark mode and the legend agree.

Pure: data in, markup out. Every text node is XML-escaped here; the result is `Markup` so Jinja inserts it as is.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Mapping, Sequence

from markupsafe import Markup, escape

# Severities with a colour of their own (CSS class sev-<name>); any other series takes series-<n>.
KNOWN_SERIES = ("critical", "warning", "info")
OTHER_CLASSES = 6


def series_class(key: str, others: list[str]) -> str:
    """The CSS class of a series: sev-critical|warning|info, else series-0…5 by order of appearance."""
    if key in KNOWN_SERIES:
        return f"sev-{key}"
    if key not in others:
        others.append(key)
    return f"series-{others.index(key) % OTHER_CLASSES}"


def ordered_keys(series: Mapping[str, Sequence[int]]) -> list[str]:
    """Known severities first, most urgent at the bottom of a stack, then the others by name."""
    known = [k for k in KNOWN_SERIES if k in series]
    return known + sorted(k for k in series if k not in KNOWN_SERIES)


def nice_ceiling(value: int) -> int:
    """A round axis maximum at or above `value`: 1, 2, 5 × 10ⁿ."""
    if value <= 0:
        return 1
    magnitude = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def bucket_label(start: dt.datetime, interval: str) -> str:
    return start.strftime("%d %b") if interval == "day" else start.strftime("%d %b %H:%M")


def axis_label(start: dt.datetime, interval: str) -> str:
    if interval == "day":
        return start.strftime("%d %b")
    return start.strftime("%H:%M") if start.hour or start.minute else start.strftime("%d %b")


def stacked_bars(buckets: Sequence[dt.datetime], series: Mapping[str, Sequence[int]], *, interval: str, title: str,
                 chart_id: str, width: int = 720, height: int = 260) -> Markup:
    """Counts per bucket, stacked per series, with a legend, axes and a <title> per bar segment (the tooltip)."""
    keys = ordered_keys(series)
    others: list[str] = []
    classes = {k: series_class(k, others) for k in keys}
    totals = [sum(series[k][i] for k in keys) for i in range(len(buckets))]
    top = nice_ceiling(max(totals, default=0))
    left, right, upper, lower = 44, 8, 34, 30
    plot_w, plot_h = width - left - right, height - upper - lower
    n = max(len(buckets), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.8, 1.0)

    def y(value: float) -> float:
        return upper + plot_h - plot_h * value / top

    total = sum(totals)
    peak = max(range(len(totals)), key=totals.__getitem__) if totals else None
    summary = f"{total} alerts in {len(buckets)} {interval} buckets"
    if peak is not None and totals[peak]:
        summary += f"; the busiest is {bucket_label(buckets[peak], interval)} with {totals[peak]}"
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="{chart_id}-title">{escape(title)}</title>',
           f'<desc id="{chart_id}-desc">{escape(summary)}</desc>']
    # Legend along the top.
    x = left
    for key in keys:
        out.append(f'<rect class="{classes[key]}" x="{x}" y="8" width="12" height="12"/>')
        out.append(f'<text class="legend" x="{x + 16}" y="18">{escape(key or "(none)")}</text>')
        x += 24 + 8 * len(key or "(none)")
    # Grid lines and y labels at 0, ½ and the top.
    for value in (0, top / 2, top):
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>')
        label = f"{value:g}"
        out.append(f'<text class="axis" x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{label}</text>')
    # Bars, bottom-up in `keys` order.
    for i, start in enumerate(buckets):
        bx = left + i * slot + (slot - bar_w) / 2
        base = 0
        for key in keys:
            count = series[key][i]
            if not count:
                continue
            y_top, y_bottom = y(base + count), y(base)
            tip = f"{bucket_label(start, interval)} · {key or '(none)'}: {count}"
            out.append(f'<rect class="{classes[key]}" x="{bx:.1f}" y="{y_top:.1f}" width="{bar_w:.1f}" '
                       f'height="{max(y_bottom - y_top, 0.5):.1f}"><title>{escape(tip)}</title></rect>')
            base += count
    # About eight x labels, evenly spaced.
    every = max(1, math.ceil(len(buckets) / 8))
    for i in range(0, len(buckets), every):
        cx = left + i * slot + slot / 2
        out.append(f'<text class="axis" x="{cx:.1f}" y="{height - 10}" text-anchor="middle">'
                   f'{escape(axis_label(buckets[i], interval))}</text>')
    out.append("</svg>")
    return Markup("".join(out))
