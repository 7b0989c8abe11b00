"""A bias audit as one self-contained HTML page: inline CSS and SVG, no scripts, no
links, readable offline.

Built from the audit's result (``audit_result``'s JSON form): a summary, then per
attribute its groups (counts, selection rate, FPR, TPR, each as bars), and its four
metrics with their thresholds, status and bootstrap interval (drawn on a 0-1 scale
with the threshold lines).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

COLOURS = {
    "OK": "#2e7d32",
    "WARNING": "#b26a00",
    "CRITICAL": "#c62828",
}
MUTED = "#777"
RATE_COLOURS = {"selection_rate": "#7d9cc9", "fpr": "#e07b39", "tpr": "#4f9a6b"}
RATE_LABELS = {"selection_rate": "selection rate", "fpr": "FPR", "tpr": "TPR"}
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.2rem .6rem;text-align:left}
th{background:#f3f3f3}.badge{color:#fff;border-radius:4px;padding:.1rem .5rem}
.muted{color:#666;font-size:.9em}svg text{font-size:11px;fill:#333}
"""


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _badge(status: str) -> str:
    colour = COLOURS.get(status, MUTED)
    return f'<span class="badge" style="background:{colour}">{escape(status)}</span>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def rates_chart(breakdown: Mapping[str, Mapping[str, Any]]) -> str:
    """Per group three bars (selection rate, FPR, TPR) on a 0-1 scale."""
    row, left, width = 14, 120, 360
    groups = list(breakdown)
    height = 30 + len(groups) * (3 * row + 10)
    parts = [f'<svg width="{left + width + 70}" height="{height}" role="img">']
    for i, (key, colour) in enumerate(RATE_COLOURS.items()):
        x = left + i * 110
        parts.append(
            f'<rect x="{x}" y="2" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="11">{RATE_LABELS[key]}</text>'
        )
    y = 24
    for name in groups:
        group = breakdown[name]
        parts.append(
            f'<text x="{left - 6}" y="{y + 2 * row - 3}" text-anchor="end">'
            f"{escape(name)}</text>"
        )
        for key, colour in RATE_COLOURS.items():
            value = group.get(key)
            bar = width * float(value or 0.0)
            parts.append(
                f'<rect x="{left}" y="{y}" width="{bar:.1f}" height="{row - 3}" '
                f'fill="{colour}"><title>{escape(name)}: {RATE_LABELS[key]} '
                f"{_num(value)}</title></rect>"
                f'<text x="{left + bar + 4:.1f}" y="{y + row - 4}">'
                f"{_num(value, 3)}</text>"
            )
            y += row
        y += 10
    parts.append(
        f'<line x1="{left}" y1="20" x2="{left}" y2="{height}" stroke="#999"/></svg>'
    )
    return "".join(parts)


def metrics_chart(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """Per metric its value (dot), bootstrap interval (line) and thresholds (ticks)
    on a 0-1 scale."""
    row, left, width = 26, 190, 400
    height = 20 + row * len(metrics)
    parts = [f'<svg width="{left + width + 60}" height="{height}" role="img">']
    for i, (name, m) in enumerate(metrics.items()):
        y = 14 + i * row
        colour = COLOURS.get(str(m.get("status")), MUTED)
        parts.append(
            f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{escape(name)}</text>'
            f'<line x1="{left}" y1="{y}" x2="{left + width}" y2="{y}" stroke="#eee"/>'
        )
        for level, tick in (("warning", "#b26a00"), ("critical", "#c62828")):
            x = left + width * min(max(float(m[level]), 0.0), 1.0)
            parts.append(
                f'<line x1="{x:.1f}" y1="{y - 8}" x2="{x:.1f}" y2="{y + 8}" '
                f'stroke="{tick}" stroke-dasharray="3,2"><title>{level} '
                f"{_num(m[level])}</title></line>"
            )
        low, high, value = m.get("ci_low"), m.get("ci_high"), m.get("value")
        if low is not None and high is not None:
            x1, x2 = left + width * float(low), left + width * float(high)
            parts.append(
                f'<line x1="{x1:.1f}" y1="{y}" x2="{x2:.1f}" y2="{y}" '
                f'stroke="{colour}" stroke-width="3" opacity=".5"/>'
            )
        if value is not None:
            x = left + width * min(max(float(value), 0.0), 1.0)
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y}" r="5" fill="{colour}"><title>'
                f"{escape(name)}: {_num(value)}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _attribute(a: Mapping[str, Any]) -> str:
    title = (
        f"<h2>{escape(a['attribute'])} {_badge(a['status'])}</h2>"
        f'<p class="muted">column {escape(a["column"])}; groups '
        f"{escape(', '.join(a['groups']))}"
        f"{'; rows in no group: ' + str(a['unmatched']) if a.get('unmatched') else ''}"
        "</p>"
    )
    breakdown: Mapping[str, Mapping[str, Any]] = a.get("group_breakdown") or {}
    if not breakdown:
        return title + "<p>Not audited: " + escape(a["status"]) + ".</p>"
    groups = _table(
        ["group", "count", "positives", "negatives", "selection rate", "FPR", "TPR"]
        + ["status"],
        [
            [
                escape(name),
                str(g["count"]),
                str(g["positives"]),
                str(g["negatives"]),
                _num(g["selection_rate"]),
                _num(g["fpr"]),
                _num(g["tpr"]),
                _badge(g["status"]),
            ]
            for name, g in breakdown.items()
        ],
    )
    metrics: Mapping[str, Mapping[str, Any]] = a.get("metrics") or {}
    table = _table(
        ["metric", "value", "95% interval", "warning", "critical", "status"],
        [
            [
                escape(name),
                _num(m["value"]),
                f"{_num(m['ci_low'])} – {_num(m['ci_high'])}",
                _num(m["warning"]),
                _num(m["critical"]),
                _badge(m["status"]),
            ]
            for name, m in metrics.items()
        ],
    )
    return (
        title
        + "<h3>Groups</h3>"
        + groups
        + rates_chart(breakdown)
        + "<h3>Metrics</h3>"
        + table
        + metrics_chart(metrics)
        + '<p class="muted">Differences are violations above their thresholds, '
        "disparate impact below its own (four-fifths rule). Groups under the minimum "
        "count are left out of the metrics.</p>"
    )


def render_report(result: Mapping[str, Any], details: Mapping[str, str]) -> str:
    """The whole page for one audit result."""
    summary = _table(
        ["", ""], [[escape(k), escape(v)] for k, v in details.items()]
    ).replace("<tr><th></th><th></th></tr>", "")
    overview = _table(
        ["attribute", "status"],
        [[escape(a["attribute"]), _badge(a["status"])] for a in result["attributes"]],
    )
    body = "".join(_attribute(a) for a in result["attributes"])
    title = escape(
        f"Bias report: {result.get('model_name', '')} {result.get('model_version', '')}"
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>{STYLE}</style></head><body>"
        f"<h1>{title} {_badge(str(result['status']))}</h1>{summary}"
        f"<h2>Attributes</h2>{overview}{body}</body></html>"
    )
