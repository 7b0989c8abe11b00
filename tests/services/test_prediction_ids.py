"""Prediction ids: uuid5 of (model, transaction id), so a retry gets the same id."""

from __future__ import annotations

import uuid

from shared.services.predictions import prediction_id


def test_prediction_id_is_uuid5_of_model_and_transaction() -> None:
    tids = ["TXN123", "", "x" * 255, "ünïcødé-€-交易", "0", "a b\tc"]
    for _ in range(200):
        model = uuid.uuid4()
        for tid in tids + [str(uuid.uuid4())]:
            got = prediction_id(model, tid)
            assert got == uuid.uuid5(model, tid)
            assert str(got) == str(uuid.uuid5(model, tid))
            assert got.version == 5 and got.variant == uuid.RFC_4122
