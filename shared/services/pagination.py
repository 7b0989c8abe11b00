"""Bounded page/page_size handling shared by every list endpoint (the repositories
fetch the page, ``shared.adapters.repositories.paging``).

Light to import: the HTTP app's dependencies take the bounds from here, and the
Functions host indexes that app without SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import ValidationFailed
from shared.ports import Page

__all__ = ["Page", "PageRequest", "check_page"]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Far past any real listing, and small enough that the row offset it asks for stays a
# 64-bit integer (SQLite raises OverflowError on larger ones: a 500, not a 422).
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class PageRequest:
    """Which page of a listing: 1-based ``page``, ``page_size`` items on each."""

    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE


def check_page(page: int, page_size: int) -> None:
    details = []
    if not 1 <= page <= MAX_PAGE:
        details.append(
            {"field": "page", "message": f"must be between 1 and {MAX_PAGE:,}"}
        )
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        details.append(
            {"field": "page_size", "message": f"must be between 1 and {MAX_PAGE_SIZE}"}
        )
    if details:
        raise ValidationFailed("Invalid pagination parameters.", details)
