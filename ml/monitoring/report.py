"""A drift audit as one self-contained HTML page: inline CSS and SVG, no scripts, no links.

Sections: the summary, PSI per feature against the thresholds, the concept-drift panel
(training, estimated and realised metrics side by side), then per feature the baseline
and current shares on the same bins (missing values as the last bin).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from ml.monitoring.drift import DataDrift, DriftThresholds, FeatureDrift
from ml.monitoring.performance import METRICS, ConceptDrift

COLOURS = {
    "OK": "#2e7d32",
    "WARNING": "#b26a00",
    "CRITICAL": "#c62828",
    "NO_DATA": "#666",
}
BASELINE, CURRENT, ESTIMATED = "#7d9cc9", "#e07b39", "#9c6ade"
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.2rem .6rem;text-align:left}
th{background:#f3f3f3}.badge{color:#fff;border-radius:4px;padding:.1rem .5rem}
.feature{display:inline-block;vertical-align:top;width:520px;margin:0 1rem 1.5rem 0}
.muted{color:#666;font-size:.9em}svg text{font-size:11px;fill:#333}
"""


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _badge(status: str) -> str:
    colour = COLOURS.get(status, "#666")
    return f'<span class="badge" style="background:{colour}">{escape(status)}</span>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _legend(x: float, items: Sequence[tuple[str, str]]) -> str:
    out = []
    for i, (label, colour) in enumerate(items):
        left = x + i * 90
        out.append(
            f'<rect x="{left}" y="2" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + 14}" y="11">{escape(label)}</text>'
        )
    return "".join(out)


def psi_chart(drift: DataDrift, thresholds: DriftThresholds) -> str:
    """Horizontal PSI bars, one per feature, with the two threshold lines."""
    row, left, width = 18, 170, 420
    values = [f.psi or 0.0 for f in drift.features]
    scale = max([*values, thresholds.psi_critical * 1.5])
    height = row * len(drift.features) + 30
    parts = [f'<svg width="{left + width + 60}" height="{height}" role="img">']
    for i, (feature, value) in enumerate(zip(drift.features, values, strict=True)):
        y = 20 + i * row
        bar = width * value / scale
        colour = COLOURS.get(feature.status, "#666")
        parts.append(
            f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">'
            f"{escape(feature.name)}</text>"
            f'<rect x="{left}" y="{y + 2}" width="{bar:.1f}" height="{row - 5}" '
            f'fill="{colour}"><title>{escape(feature.name)}: PSI {_num(feature.psi)}'
            f"</title></rect>"
            f'<text x="{left + bar + 4:.1f}" y="{y + 12}">{_num(feature.psi, 3)}</text>'
        )
    for label, limit in (
        ("warning", thresholds.psi_warning),
        ("critical", thresholds.psi_critical),
    ):
        x = left + width * limit / scale
        parts.append(
            f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{height}" stroke="#999" '
            f'stroke-dasharray="4 3"/><text x="{x + 3:.1f}" y="12">{label} {limit:g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram_chart(feature: FeatureDrift) -> str:
    """Baseline and current shares per bin, side by side on the same bins."""
    base_total = sum(feature.baseline_counts) or 1
    current_total = sum(feature.current_counts) or 1
    base = [c / base_total for c in feature.baseline_counts]
    current = [c / current_total for c in feature.current_counts]
    bins = len(base)
    plot_w, plot_h, top, left = 480, 120, 18, 36
    slot = plot_w / bins
    scale = max([*base, *current, 1e-9])
    parts = [
        f'<svg width="{left + plot_w + 10}" height="{top + plot_h + 80}" role="img">',
        _legend(left, (("baseline", BASELINE), ("current", CURRENT))),
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{scale:.0%}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" '
        f'y2="{top + plot_h}" stroke="#999"/>',
    ]
    for i, label in enumerate(feature.bin_labels):
        x = left + i * slot
        for j, (share, colour, who) in enumerate(
            ((base[i], BASELINE, "baseline"), (current[i], CURRENT, "current"))
        ):
            h = plot_h * share / scale
            parts.append(
                f'<rect x="{x + 2 + j * (slot - 4) / 2:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{max((slot - 4) / 2, 1):.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(label)}: {who} {share:.2%}</title></rect>"
            )
        cx, cy = x + slot / 2, top + plot_h + 10
        parts.append(
            f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" '
            f'transform="rotate(-40 {cx:.1f} {cy:.1f})">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _feature_section(feature: FeatureDrift) -> str:
    facts = [f"PSI {_num(feature.psi)}"]
    if feature.kind == "numeric":
        facts.append(f"KS {_num(feature.ks_statistic)} (p {_num(feature.ks_p)})")
    else:
        facts.append(f"chi-square p {_num(feature.chi_square_p)}")
    facts.append(
        f"missing {_num(feature.baseline_missing_rate, 3)} → "
        f"{_num(feature.current_missing_rate, 3)}"
    )
    return (
        f'<div class="feature"><h3>{escape(feature.name)} {_badge(feature.status)}</h3>'
        f'<div class="muted">{escape(feature.kind)} · {escape(" · ".join(facts))}</div>'
        f"{histogram_chart(feature)}</div>"
    )


def concept_chart(concept: ConceptDrift) -> str:
    """Training, estimated and realised metrics as grouped bars on [0, 1]."""
    series = [
        ("training", concept.baseline, BASELINE),
        ("estimated", concept.estimated, ESTIMATED),
    ]
    if concept.realised is not None:
        series.append(("realised", concept.realised, CURRENT))
    group, bar, plot_h, top = 150, 36, 120, 20
    parts = [
        f'<svg width="{group * len(METRICS) + 40}" height="{top + plot_h + 24}" role="img">',
        _legend(10, [(name, colour) for name, _, colour in series]),
    ]
    for g, metric in enumerate(METRICS):
        x0 = 20 + g * group
        for k, (name, metrics, colour) in enumerate(series):
            value = metrics.get(metric)
            h = plot_h * (value or 0.0)
            parts.append(
                f'<rect x="{x0 + k * (bar + 4)}" y="{top + plot_h - h:.1f}" width="{bar}" '
                f'height="{h:.1f}" fill="{colour}"><title>{metric} {name}: '
                f"{_num(value)}</title></rect>"
            )
        parts.append(f'<text x="{x0}" y="{top + plot_h + 16}">{metric}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _concept_section(concept: ConceptDrift) -> str:
    rows = []
    for metric in METRICS:
        realised = None if concept.realised is None else concept.realised.get(metric)
        rows.append(
            [
                escape(metric),
                _num(concept.baseline.get(metric)),
                _num(concept.estimated.get(metric)),
                _num(realised),
                _num(concept.estimation_error.get(metric)),
            ]
        )
    header = [
        "metric",
        "training",
        "estimated (CBPE)",
        "realised",
        "estimate − realised",
    ]
    return (
        f"<h2>Concept drift {_badge(concept.status)}</h2>"
        f'<p class="muted">{concept.estimated.count} predictions, '
        f"{concept.labelled_count} labelled; status from the {escape(concept.source)} "
        f"metrics; precision change {_num(concept.performance_degradation, 3)}</p>"
        f"{_table(header, rows)}{concept_chart(concept)}"
    )


def render_report(
    drift: DataDrift,
    concept: ConceptDrift | None = None,
    *,
    title: str = "Drift report",
    details: Mapping[str, str] | None = None,
    thresholds: DriftThresholds = DriftThresholds(),  # noqa: B008 (frozen)
) -> str:
    """The audit as an HTML document; `details` (model, window, computed at ...) head it."""
    info = _table([], [[escape(k), escape(v)] for k, v in (details or {}).items()])
    summary = (
        f"<h2>Data drift {_badge(drift.status)}</h2>"
        f'<p class="muted">{drift.rows} rows · {len(drift.features)} features · '
        f"overall PSI {_num(drift.overall_psi)} (mean of the features' PSI)</p>"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        info if details else "",
        summary,
        psi_chart(drift, thresholds) if drift.features else "",
        _concept_section(concept) if concept is not None else "",
        "<h2>Features</h2>",
        *(_feature_section(f) for f in drift.features),
        "</body></html>",
    ]
    return "\n".join(parts)
