"""The HTML drift report: well formed, self-contained, every feature and panel present."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np

from ml.monitoring import Metrics, build_baseline, compute_drift, concept_drift
from ml.monitoring.report import render_report


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag != "meta":  # the one void element the report uses
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _report() -> tuple[str, list[str]]:
    rng = np.random.default_rng(1)
    names = ["amount", "velocity <24h>", "device_type"]
    train = np.column_stack(
        [
            rng.lognormal(3, 1, 20_000),
            rng.normal(size=20_000),
            rng.integers(0, 4, 20_000),
        ]
    ).astype(np.float32)
    live = train.copy()
    live[:, 0] *= 1.5
    live[::7, 1] = np.nan
    drift = compute_drift(build_baseline(train, names), live)
    p = rng.beta(0.5, 8, 20_000)
    labels = (rng.random(p.size) < p).astype(float)
    labels[10_000:] = np.nan
    concept = concept_drift(Metrics(20_000, 0.4, 0.12, 0.83), p, p, labels, 0.3)
    html = render_report(
        drift,
        concept,
        title="Drift report <model>",
        details={"model": "m-1", "window": "24h"},
    )
    return html, names


def test_report_parses_and_names_every_feature() -> None:
    html, names = _report()
    parser = _Collector()
    parser.feed(html)
    parser.close()
    assert parser.errors == []
    text = "".join(parser.text)
    for name in names:
        assert name in text  # escaped in the source, read back as itself
    assert "velocity &lt;24h&gt;" in html and "<24h>" not in html
    assert parser.tags.count("svg") == len(names) + 2  # PSI bars, concept, histograms
    assert "Concept drift" in text and "estimated (CBPE)" in text
    assert "CRITICAL" in text


def test_report_is_self_contained() -> None:
    html, _ = _report()
    parser = _Collector()
    parser.feed(html)
    assert not {"script", "link", "img", "iframe"} & set(parser.tags)
    assert not [v for k, v in parser.attrs if k in {"src", "href"}]
    assert "http" not in html and "url(" not in html


def test_report_without_concept_or_rows() -> None:
    baseline = build_baseline(np.ones((10, 1), np.float32) * 1.5, ["x"])
    html = render_report(compute_drift(baseline, np.empty((0, 1), np.float32)))
    parser = _Collector()
    parser.feed(html)
    assert parser.errors == []
    assert "NO_DATA" in html and "Concept drift" not in html
