"""The Activity Monitor's chart: sent vs quarantined per hour, drawn on the server as inline SVG.

No script and no chart library: the page works with JavaScript off and on a
server with no internet. Colours come from the stylesheet (classes), so the
strict Content-Security-Policy needs no inline style.
"""
import time
from typing import List, Sequence, Tuple

from markupsafe import Markup, escape

WIDTH, HEIGHT = 960, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 36


def _nice_max(value: int) -> int:
    if value <= 5:
        return 5
    scale = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * scale:
            return step * scale
    return value


def _label(hour: int, span_hours: int) -> str:
    fmt = "%H:00" if span_hours <= 48 else "%m-%d"
    return time.strftime(fmt, time.gmtime(hour))


def hourly_svg(series: Sequence[Tuple[int, int, int]], title: str) -> Markup:
    """``series``: (hour start, sent, quarantined) per hour, oldest first."""
    n = max(len(series), 1)
    top = _nice_max(max((max(s, q) for _, s, q in series), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    bar = min(max(slot / 2 - 0.5, 0.5), 24.0)
    pad = (slot - 2 * bar) / 2   # bars centred in their hour
    parts: List[str] = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for k in range(5):   # grid and scale
        value = top * k // 4
        y = TOP + plot_h - plot_h * k / 4
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value}</text>')
    every = max(1, n // 12)
    for i, (hour, sent, held) in enumerate(series):
        x = LEFT + i * slot + pad
        for offset, value, cls in ((0, sent, "sent"), (bar, held, "held")):
            h = plot_h * value / top
            parts.append(f'<rect class="{cls}" x="{x + offset:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}"'
                         f' height="{h:.1f}"><title>{_label(hour, 1)} UTC: {value} {cls}</title></rect>')
        if i % every == 0:
            parts.append(f'<text class="axis" x="{x + bar:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                         f"{_label(hour, n)}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))
