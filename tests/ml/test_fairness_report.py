"""The bias report page: self-contained (no scripts, no links, no external resources),
every attribute, group, metric, threshold and interval on it, text escaped, and an
attribute without figures (MISSING_COLUMN) shown as such."""

from __future__ import annotations

import re
from dataclasses import asdict

import numpy as np

from ml.fairness import CategoricalGroup, audit_attribute
from ml.fairness.report import metrics_chart, rates_chart, render_report


def _result() -> dict[str, object]:
    rng = np.random.default_rng(1)
    n = 2000
    column = rng.choice(["f", "m", "<x>"], n)
    y = (rng.random(n) < 0.3).astype(float)
    p = (rng.random(n) < np.where(column == "f", 0.5, 0.2)).astype(int)
    groups = [
        CategoricalGroup("female", ("f",)),
        CategoricalGroup("male", ("m",)),
        CategoricalGroup("<other>", ("<x>",)),
    ]
    audit = audit_attribute("gender", "gender", column, groups, y, p)
    return {
        "model_name": "fraud",
        "model_version": "2.0",
        "status": audit.status,
        "attributes": [
            {
                "attribute": "gender",
                "column": "gender",
                "status": audit.status,
                "groups": list(audit.groups),
                "unmatched": audit.unmatched,
                "group_breakdown": {
                    g: asdict(r) for g, r in audit.group_breakdown.items()
                },
                "metrics": {m: asdict(r) for m, r in audit.metrics.items()},
            },
            {
                "attribute": "ethnicity",
                "column": "ethnicity",
                "status": "MISSING_COLUMN",
                "groups": ["a", "b"],
                "unmatched": 0,
                "group_breakdown": {},
                "metrics": {},
            },
        ],
    }


def test_the_report_is_self_contained_and_complete() -> None:
    result = _result()
    html = render_report(result, {"Model": "fraud 2.0", "Source": "test_set"})
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script|<link|<img|src=|href=|@import|url\(", html)
    assert "&lt;other&gt;" in html and "<other>" not in html  # escaped
    attributes = result["attributes"]
    gender = attributes[0]  # type: ignore[index]
    for name, metric in gender["metrics"].items():
        assert name in html
        assert f"{metric['value']:.4g}" in html
        assert f"{metric['ci_low']:.4g} – {metric['ci_high']:.4g}" in html
        assert f"{metric['warning']:.4g}" in html
    for name, group in gender["group_breakdown"].items():
        assert f"<td>{group['count']}</td>" in html
        assert f"{name}: selection rate" in html.replace("&lt;", "<").replace(
            "&gt;", ">"
        )
    assert html.count("<svg") == 2  # the rates and the metrics of gender
    assert "Not audited: MISSING_COLUMN" in html
    assert "fraud 2.0" in html and "test_set" in html


def test_charts_draw_every_group_and_metric() -> None:
    gender = _result()["attributes"][0]  # type: ignore[index]
    rates = rates_chart(gender["group_breakdown"])
    assert rates.count("<rect") == 3 + 3 * 3  # the legend, then three bars a group
    metrics = metrics_chart(gender["metrics"])
    assert metrics.count("<circle") == 4  # a value each
    assert metrics.count('stroke-dasharray="3,2"') == 8  # two thresholds each
