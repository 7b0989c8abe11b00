"""Collection fix-ups for tests/api."""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # schemathesis 4.32 names each operation's test `test_x[GET /path]` but passes
    # `originalname`, from which pytest 9.2 derives the node id: every operation would
    # share one id (`test_x`), and -k, --deselect, xdist and reports could not tell
    # them apart. Put the operation back into the id.
    for item in items:
        label = getattr(item, "operation_label", None)
        if label is not None and item.parent is not None and "[" not in item.nodeid:
            item._id = item.parent.id.child(item.originalname).with_params(label)  # type: ignore[attr-defined]
