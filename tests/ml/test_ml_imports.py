"""ml/ modules import one another only by public names and without cycles."""

from __future__ import annotations

import ast
from pathlib import Path

ML = Path(__file__).resolve().parents[2] / "ml"


def _module(path: Path) -> str:
    parts = path.relative_to(ML.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, list[tuple[str, str]]]:
    """{module: [(imported module, name)]} for every import of an ml module, at any
    depth of the file (lazy imports and TYPE_CHECKING blocks included)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(ML.rglob("*.py")):
        found: list[tuple[str, str]] = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "ml"
            ):
                found.extend((node.module or "", alias.name) for alias in node.names)
            elif isinstance(node, ast.Import):
                found.extend(
                    (alias.name, "") for alias in node.names if alias.name[:3] == "ml."
                )
        out[_module(path)] = found
    return out


def test_no_ml_module_imports_a_private_name_of_another() -> None:
    private = [
        (module, target, name)
        for module, found in _imports().items()
        for target, name in found
        if name.startswith("_") and target != module
    ]
    assert private == []


def test_online_feature_modules_form_no_cycle() -> None:
    imports = _imports()
    online = {m for m in imports if m.startswith("ml.features.online")}
    graph = {
        m: {target for target, _ in imports[m] if target in online and target != m}
        for m in online
    }
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for target in graph[module]:
            visit(target, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())
    assert len(online) >= 5  # event, state, compute, batch, backfill (and the entry)
