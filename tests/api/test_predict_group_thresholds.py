"""A threshold_optimizer model decides with its group's threshold: ``/predict`` and
``/predict/batch`` compare the score with the threshold of the group the request's
``protected_attributes`` name, and with the global one when none is named or the group
was not seen in training (the thresholds set on the served model, so every decision is
forced one way and the test can tell them apart)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.container import Container
from tests.support.serving import API, as_request, generated, serve

HISTORY = 3000


@pytest.mark.slow
def test_decisions_follow_the_named_groups_threshold(
    client: Any, ctx: Container, runtime: Any
) -> None:
    transactions = generated(3400)
    model_id = serve(client, transactions.iloc[:HISTORY])
    served = ctx.predictor.models.resolve(model_id)
    served.score_transform["group_thresholds"] = {
        "column": "gender",
        "thresholds": {"F": 0.0, "M": 1.01},  # F always flagged, M never
    }
    live = [as_request(r) for r in transactions.iloc[HISTORY:].to_dict("records")]

    def single(txn: dict[str, Any], protected: dict[str, Any] | None) -> Any:
        body: dict[str, Any] = {"transaction": txn}
        if protected is not None:
            body["protected_attributes"] = protected
        resp = client.post(f"{API}/predict", json=body)
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]

    assert all(single(t, {"gender": "F"})["is_fraud"] for t in live[:5])
    assert not any(single(t, {"gender": "M"})["is_fraud"] for t in live[5:10])
    for txn, protected in ((live[10], None), (live[11], {"gender": "X"})):
        answer = single(txn, protected)
        assert answer["is_fraud"] == (answer["fraud_score"] >= served.threshold)

    items = [
        {**t, "protected_attributes": {"gender": g}}
        for t, g in zip(live[20:30], "FMFMFMFMFM", strict=True)
    ]
    resp = client.post(f"{API}/predict/batch", json={"transactions": items})
    assert resp.status_code == 200, resp.text
    flags = [p["is_fraud"] for p in resp.json()["data"]["predictions"]]
    assert flags == [g == "F" for g in "FMFMFMFMFM"]
