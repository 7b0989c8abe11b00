"""What the dataset API accepts: the name filter is a plain substring, and the upload
form takes what its OpenAPI schema declares, no more and no less."""

from __future__ import annotations

from typing import Any

from tests.support.data import upload

API = "/api/v1/datasets"


def _names(client: Any, **params: Any) -> list[str]:
    resp = client.get(API, params=params)
    assert resp.status_code == 200, resp.text
    return sorted(d["name"] for d in resp.json()["data"])


def test_name_filter_treats_like_wildcards_as_text(client: Any) -> None:
    for name in ("alpha", "50%_off", "a_b", "back\\slash"):
        assert upload(client, name=name).status_code == 201
    assert _names(client, name="%") == ["50%_off"]
    assert _names(client, name="_") == ["50%_off", "a_b"]
    assert _names(client, name="%_") == ["50%_off"]
    assert _names(client, name="a_") == ["a_b"]
    assert _names(client, name="\\") == ["back\\slash"]
    assert _names(client, name="ALPHA") == ["alpha"]  # still case-insensitive
    assert _names(client, name="zzz") == []
