"""The fields of a dataset upload form: one set of rules that the OpenAPI document
declares (``functions/api/routes/datasets.py`` builds its schema from these constants)
and the service enforces, so the two cannot drift apart.

A multipart field is text: ``name=123`` is the string "123", a valid name. What the
wire can tell apart, the rules refuse: a field sent twice (an array where the schema
says one string), control characters (NUL, which PostgreSQL cannot store, line breaks),
a name of nothing but spaces, one longer than the column.
"""

from __future__ import annotations

import re

from shared.errors import ValidationFailed, field_error

NAME_MAX = 255
# no control characters, and at least one character that is neither one nor a space
NAME_PATTERN = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
DESCRIPTION_MAX = 10_000
# free text, line breaks included, but no NUL
DESCRIPTION_PATTERN = r"^[^\x00]*$"
SINGLE_FIELDS = ("name", "description", "file")
FILENAME_MAX = 500


def check_name(name: str | None) -> str:
    """The name to store (surrounding spaces removed), or 422 saying what is wrong."""
    if name is None or not name.strip(" "):
        raise ValidationFailed(
            "A dataset needs a name.", field_error("name", "Required field")
        )
    if len(name) > NAME_MAX:
        raise ValidationFailed(
            f"Dataset names are at most {NAME_MAX} characters.",
            field_error("name", "too long"),
        )
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValidationFailed(
            "A dataset name cannot contain control characters (line breaks, tabs, "
            "NUL).",
            field_error("name", "control characters"),
        )
    return name.strip(" ")


def check_description(description: str | None) -> str | None:
    if description is None:
        return None
    if len(description) > DESCRIPTION_MAX:
        raise ValidationFailed(
            f"Descriptions are at most {DESCRIPTION_MAX:,} characters.",
            field_error("description", "too long"),
        )
    if not re.fullmatch(DESCRIPTION_PATTERN, description):
        raise ValidationFailed(
            "A description cannot contain NUL characters.",
            field_error("description", "NUL character"),
        )
    return description


def check_single(repeated: set[str]) -> None:
    """Each declared field at most once: a second value would be silently dropped."""
    twice = sorted(set(SINGLE_FIELDS) & repeated)
    if twice:
        raise ValidationFailed(
            f"Send each of {', '.join(twice)} once; the form has it more than once.",
            [{"field": f, "message": "given more than once"} for f in twice],
        )


def clean_filename(filename: str | None) -> str | None:
    """The client's file name as recorded: control characters dropped, at most the
    column's 500 characters (the end kept, where the extension is). Informative only,
    so never a reason to refuse the upload."""
    if not filename:
        return None
    cleaned = re.sub(r"[\x00-\x1f\x7f]", "", filename)[-FILENAME_MAX:]
    return cleaned or None
