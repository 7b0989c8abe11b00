"""Bad retraining requests: 404 for what does not exist, 422 naming the field for a
strategy that cannot work, 409 for a second retraining of a model while one is open
and for promoting what cannot be promoted; none of them writes a job."""

from __future__ import annotations

from typing import Any

import pytest

from shared.adapters.launcher import NoLauncher
from shared.container import Container
from tests.support.data import CSV, upload
from tests.support.retraining import champion, upload_frame
from tests.support.serving import API, generated

UNKNOWN = "0b9d6f7e-5c1a-4f3e-9d2b-7a6c5e4d3f21"


def _trigger(client: Any, model_id: str, strategy: dict[str, Any]) -> Any:
    return client.post(
        f"{API}/retraining/trigger",
        json={"model_id": model_id, "reason": "test", "data_strategy": strategy},
    )


def _fields(resp: Any) -> list[str]:
    return [d["field"] for d in resp.json()["error"]["details"]]


def _retraining_jobs(client: Any) -> int:
    listed = client.get(f"{API}/jobs", params={"kind": "retraining"}).json()
    return int(listed["meta"]["pagination"]["total"])


@pytest.mark.slow
def test_bad_retraining_requests(client: Any, ctx: Container, runtime: Any) -> None:
    history = generated(2500, seed=8)
    model_id = champion(client, history)
    dataset_id = upload_frame(client, "new", history)
    thin = upload(client, name="thin", content=CSV, filename="thin.csv")
    thin_id = thin.json()["data"]["id"]
    ctx.launcher = NoLauncher()  # what is accepted stays PENDING

    not_found = [
        (UNKNOWN, {"type": "replace"}, "model_id"),
        ("not-a-uuid", {"type": "replace"}, "model_id"),
        (
            model_id,
            {"type": "replace", "new_dataset_id": UNKNOWN},
            "data_strategy.new_dataset_id",
        ),
        (
            model_id,
            {
                "type": "merge",
                "new_dataset_id": dataset_id,
                "historical_dataset_id": UNKNOWN,
            },
            "data_strategy.historical_dataset_id",
        ),
    ]
    for target, strategy, field in not_found:
        resp = _trigger(client, target, strategy)
        assert resp.status_code == 404, (strategy, resp.text)
        assert _fields(resp) == [field], resp.text

    merge = {"type": "merge", "new_dataset_id": dataset_id}
    invalid = [
        (merge, "data_strategy.historical_dataset_id"),
        (
            {"type": "merge", "historical_dataset_id": dataset_id},
            "data_strategy.new_dataset_id",
        ),
        (
            {
                **merge,
                "historical_dataset_id": dataset_id,
                "new_dataset_version": "1.0",
                "sample_weights": {"new": 0.5, "historical": 0.6},
            },
            "data_strategy.sample_weights",
        ),
        (
            {**merge, "historical_dataset_id": thin_id, "sample_weights": {"new": 1.5}},
            "data_strategy.sample_weights.new",
        ),
        (
            {"type": "replace", "sample_weights": {"new": 0.5, "historical": 0.5}},
            "data_strategy.sample_weights",
        ),
        ({"type": "sliding_window"}, "data_strategy.window"),
        ({"type": "sliding_window", "window": "30 days"}, "data_strategy.window"),
        ({"type": "replace", "window": "30d"}, "data_strategy.window"),
        (
            {"type": "replace", "historical_dataset_id": dataset_id},
            "data_strategy.historical_dataset_id",
        ),
        ({"type": "magic"}, "data_strategy.type"),
        (
            {"type": "replace", "new_dataset_id": thin_id},
            "data_strategy.new_dataset_id",
        ),
        (
            {**merge, "historical_dataset_id": dataset_id},
            "data_strategy.historical_dataset_id",
        ),
    ]
    for strategy, field in invalid:
        resp = _trigger(client, model_id, strategy)
        assert resp.status_code == 422, (strategy, resp.text)
        assert field in _fields(resp), (strategy, resp.text)
    missing_reason = client.post(
        f"{API}/retraining/trigger",
        json={"model_id": model_id, "data_strategy": {"type": "replace"}},
    )
    assert missing_reason.status_code == 422 and _fields(missing_reason) == ["reason"]
    assert _retraining_jobs(client) == 0  # nothing half-written

    # one open retraining per model: the second gets the open job's id
    first = _trigger(client, model_id, {"type": "replace"})
    assert first.status_code == 202, first.text
    job_id = first.json()["data"]["job_id"]
    second = _trigger(client, model_id, {"type": "sliding_window", "window": "7d"})
    assert second.status_code == 409, second.text
    error = second.json()["error"]
    assert error["code"] == "RETRAINING_RUNNING" and job_id in error["message"]
    assert error["details"] == [
        {"field": "model_id", "message": f"retraining job {job_id} is open"}
    ]
    # an alert's retrain action asking again gets the open job, not a second one
    alert = {"id": "a1", "model_id": model_id, "title": "drift CRITICAL"}
    action = {"type": "retrain", "data_strategy": {"type": "replace"}}
    assert ctx.retraining.trigger_from_alert(alert, action) == job_id
    assert _retraining_jobs(client) == 1

    job = client.get(f"{API}/retraining/jobs/{job_id}").json()["data"]
    assert job["status"] == "PENDING" and job["stage"] == "queued"
    assert job["data_strategy"]["new"]["dataset_id"] == history_dataset(
        client, model_id
    )
    promote = f"{API}/retraining/jobs/{job_id}/promote"
    early = client.post(promote, json={"reason": "now"})
    assert early.status_code == 409 and "PENDING" in early.json()["error"]["message"]
    assert client.post(promote, json={}).status_code == 422
    for url in (f"{API}/retraining/jobs/{UNKNOWN}", f"{API}/retraining/jobs/nope"):
        assert client.get(url).status_code == 404
    assert (
        client.post(
            f"{API}/retraining/jobs/{UNKNOWN}/promote", json={"reason": "x"}
        ).status_code
        == 404
    )
    # a job of another kind is not a retraining job
    other = client.get(f"{API}/jobs", params={"kind": "training"}).json()["data"][0]
    assert client.get(f"{API}/retraining/jobs/{other['job_id']}").status_code == 404

    # once the open one ends (cancelled), the model can be retrained again
    assert client.post(f"{API}/jobs/{job_id}/cancel").status_code == 200
    again = _trigger(client, model_id, {"type": "replace"})
    assert again.status_code == 202, again.text
    action_id = ctx.retraining.trigger_from_alert(alert, action)
    assert action_id == again.json()["data"]["job_id"]
    from_alert = client.get(f"{API}/retraining/jobs/{action_id}").json()["data"]
    assert from_alert["trigger"] == "api"  # the job the alert found open


def history_dataset(client: Any, model_id: str) -> str:
    """The dataset the model's features came from (replace's default)."""
    model = client.get(f"{API}/models/{model_id}").json()["data"]
    fs = client.get(f"{API}/features/sets/{model['feature_set_id']}").json()["data"]
    return str(fs["dataset_id"])
