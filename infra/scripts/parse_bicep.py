"""Parse every .bicep file under infra/ with the tree-sitter Bicep grammar.

A syntax check only (no types, no resource schemas) for machines without the Bicep CLI.
Needs the PyPI packages tree-sitter and tree-sitter-bicep, e.g. in a scratch folder:

    python3 -m pip install --target /tmp/ts tree-sitter tree-sitter-bicep
    PYTHONPATH=/tmp/ts python3 infra/scripts/parse_bicep.py

Exits 1 if any file has an error or missing node.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

INFRA = Path(__file__).resolve().parent.parent


def problems(node: Node, found: list[Node]) -> list[Node]:
    if node.type == "ERROR" or node.is_missing:
        found.append(node)
    for child in node.children:
        problems(child, found)
    return found


def main() -> int:
    parser = Parser(Language(tree_sitter_bicep.language()))
    failed = 0
    for path in sorted(INFRA.rglob("*.bicep")):
        source = path.read_bytes()
        bad = problems(parser.parse(source).root_node, [])
        print(
            f"{path.relative_to(INFRA)}: {'ok' if not bad else f'{len(bad)} problem(s)'}"
        )
        for node in bad[:10]:
            kind = f"missing {node.type}" if node.is_missing else "syntax error"
            text = source[node.start_byte : node.end_byte][:80].decode(errors="replace")
            print(f"  line {node.start_point[0] + 1}: {kind} {text!r}")
        failed += bool(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
