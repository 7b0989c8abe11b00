"""Old names of ``shared.container``, kept while callers move to it."""

from __future__ import annotations

from shared.container import Container, built, container, use

AppContext = Container
get_context = container
current_context = built
set_context = use

__all__ = ["AppContext", "current_context", "get_context", "set_context"]
