"""Functions of a package over a line budget, counted from the source's own syntax tree.

Used by issue 23's before/after figures: ``python scripts/function_sizes.py samrl [--over 80]``
prints one ``lines path:line name`` row per function (``FunctionDef`` and ``AsyncFunctionDef``,
nested ones too), longest first, then a count.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def function_sizes(root: Path) -> list[tuple[int, str, str]]:
    rows = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                rows.append((lines, f"{path}:{node.lineno}", node.name))
    return sorted(rows, key=lambda row: (-row[0], row[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--over", type=int, default=80, help="list functions longer than this")
    args = parser.parse_args()
    rows = [row for row in function_sizes(args.root) if row[0] > args.over]
    for lines, where, name in rows:
        print(f"{lines:5d} {where} {name}")
    print(f"{len(rows)} functions over {args.over} lines")


if __name__ == "__main__":
    main()
