"""What the dataset API accepts: the name filter is a plain substring, and the upload
form takes what its OpenAPI schema declares, no more and no less."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from shared.container import Container
from shared.db.models import Dataset
from tests.support.data import CSV, upload

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


def _form_schema(client: Any, path: str) -> dict[str, Any]:
    doc = client.get("/api/v1/openapi.json").json()
    body = doc["paths"][path]["post"]["requestBody"]["content"]
    return body["multipart/form-data"]["schema"]  # type: ignore[no-any-return]


def _valid(schema: dict[str, Any], value: str) -> bool:
    """``value`` against a declared string schema (its patterns are plain regexes)."""
    return (
        schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**9)
        and re.search(schema.get("pattern", ""), value) is not None
    )


def _stored_names(ctx: Container) -> list[str]:
    with ctx.db.session() as s:
        return sorted(s.scalars(select(Dataset.name)))


def test_the_upload_form_declares_what_it_requires(client: Any) -> None:
    create = _form_schema(client, API)
    assert sorted(create["required"]) == ["file", "name"]
    name = create["properties"]["name"]
    assert name["type"] == "string" and name["maxLength"] == 255
    version = _form_schema(client, f"{API}/{{dataset_id}}/versions")
    assert version["required"] == ["file"]
    assert "name" not in version["properties"]  # a version keeps the dataset's name
    assert "maxLength" in version["properties"]["description"]


BAD_NAMES = [
    ("", "Required"),
    ("   ", "Required"),
    ("x" * 256, "too long"),
    ("nul\x00inside", "control"),
    ("line\nbreak", "control"),
    ("tab\there", "control"),
]


@pytest.mark.parametrize(("name", "reason"), BAD_NAMES)
def test_names_the_schema_forbids_are_refused(
    client: Any, ctx: Container, name: str, reason: str
) -> None:
    schema = _form_schema(client, API)["properties"]["name"]
    assert not _valid(schema, name)  # the document says so too
    resp = upload(client, name=name)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["details"][0]["field"] == "name"
    assert reason.lower() in (error["message"] + error["details"][0]["message"]).lower()
    assert _stored_names(ctx) == []


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("123", "123"),  # form fields are text: a number-looking name is a string
        ("true", "true"),
        ('{"a": 1}', '{"a": 1}'),
        ("  padded  ", "padded"),
        ("données 2026 ✓", "données 2026 ✓"),
        ("x" * 255, "x" * 255),
    ],
)
def test_names_the_schema_allows_are_accepted(
    client: Any, ctx: Container, name: str, stored: str
) -> None:
    schema = _form_schema(client, API)["properties"]["name"]
    assert _valid(schema, name)
    resp = upload(client, name=name)
    assert resp.status_code == 201, resp.text
    assert resp.json()["data"]["name"] == stored
    assert _stored_names(ctx) == [stored]


@pytest.mark.parametrize(
    "description", ["nul\x00inside", "x" * 10_001], ids=["nul", "too-long"]
)
def test_descriptions_the_schema_forbids_are_refused(
    client: Any, ctx: Container, description: str
) -> None:
    schema = _form_schema(client, API)["properties"]["description"]
    assert not _valid(schema, description)
    resp = upload(client, name="tx", description=description)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"][0]["field"] == "description"
    assert _stored_names(ctx) == []
    created = upload(client, name="tx", description="line one\nline two")
    assert created.status_code == 201, created.text
    resp = upload(
        client,
        name=None,
        description=description,
        url=f"{API}/{created.json()['data']['id']}/versions",
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"][0]["field"] == "description"


def _raw_form(client: Any, parts: list[tuple[str, str | None, bytes]]) -> Any:
    boundary = "b0undary"
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += (
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    return client.post(
        API,
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )


@pytest.mark.parametrize("twice", ["name", "description", "file"])
def test_a_field_sent_twice_is_refused(client: Any, ctx: Container, twice: str) -> None:
    """One string each, says the schema; an array (the field repeated) is not one,
    and taking either value silently would store what the client may not mean."""
    parts: list[tuple[str, str | None, bytes]] = [
        ("name", None, b"first"),
        ("description", None, b"d"),
        ("file", "tx.csv", CSV),
    ]
    parts += [p for p in parts if p[0] == twice]
    resp = _raw_form(client, parts)
    assert resp.status_code == 422, resp.text
    assert [d["field"] for d in resp.json()["error"]["details"]] == [twice]
    assert _stored_names(ctx) == []


def test_the_client_file_name_is_recorded_within_its_column(
    client: Any, ctx: Container
) -> None:
    """Informative only: cut to the column's 500 characters (the end kept) and
    without control characters, rather than a database error on PostgreSQL."""
    long_name = "x" * 600 + "\x00\x01.csv"
    resp = _raw_form(client, [("name", None, b"tx"), ("file", long_name, CSV)])
    assert resp.status_code == 201, resp.text
    recorded = resp.json()["data"]["versions"][0]["source_filename"]
    assert len(recorded) == 500 and recorded.endswith("xxx.csv")
