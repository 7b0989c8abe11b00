"""Typed dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from shared.bootstrap import AppContext, get_context


async def context() -> AppContext:
    # async: a sync dependency would cost every request a thread-pool round trip
    return get_context()


Ctx = Annotated[AppContext, Depends(context)]
PageQ = Annotated[int, Query(description="1-based page number")]
PageSizeQ = Annotated[int, Query(description="Items per page, 1 to 100")]
