"""A small inline SVG bar chart of the error rate per host, so a person sees it at a glance."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from lars.console.health import HostHealth

__all__ = ["error_rate_svg"]

_BAR_H = 18
_GAP = 6
_LABEL_W = 150
_BAR_W = 240
_VALUE_W = 60


def error_rate_svg(hosts: Sequence[HostHealth]) -> str:
    """An <svg> element (safe to embed: every text is escaped) or '' when there are no hosts."""
    if not hosts:
        return ""
    width = _LABEL_W + _BAR_W + _VALUE_W
    height = len(hosts) * (_BAR_H + _GAP) + _GAP
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        "<title>Error rate per host</title>",
    ]
    for i, host in enumerate(hosts):
        y = _GAP + i * (_BAR_H + _GAP)
        label = escape(f"{host.ip}:{host.port}")
        rate = host.error_rate
        fill = min(1.0, rate or 0.0) * _BAR_W
        value = "n/a" if rate is None else f"{rate:.1%}"
        text_y = y + _BAR_H - 5
        parts.append(
            f'<text x="0" y="{text_y}" class="chart-label">{label}</text>'
            f'<rect x="{_LABEL_W}" y="{y}" width="{_BAR_W}" height="{_BAR_H}" class="chart-track"/>'
            f'<rect x="{_LABEL_W}" y="{y}" width="{fill:.1f}" height="{_BAR_H}" '
            f'class="chart-bar state-{host.state.value}"/>'
            f'<text x="{_LABEL_W + _BAR_W + 6}" y="{text_y}" class="chart-value">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
