"""Functions of a package over a line budget, or over a parameter budget, counted from the
source's own syntax tree.

Used by issue 23's before/after figures: ``python scripts/function_sizes.py samrl [--over 80]``
prints one ``lines path:line name`` row per function (``FunctionDef`` and ``AsyncFunctionDef``,
nested ones too), longest first, then a count. ``--params N`` lists instead the functions with
more than N parameters (``parameters path:line name`` rows, most first): positional, keyword-only,
``*args`` and ``**kwargs`` each count one; a first parameter named ``self`` or ``cls`` does not.
ROOT may be a directory (every ``*.py`` below it) or a file, and be given more than once.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from pathlib import Path


def _functions(root: Path) -> Iterator[tuple[Path, ast.FunctionDef | ast.AsyncFunctionDef]]:
    paths = [root] if root.is_file() else sorted(root.rglob("*.py"))
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield path, node


def function_sizes(root: Path) -> list[tuple[int, str, str]]:
    rows = []
    for path, node in _functions(root):
        lines = node.end_lineno - node.lineno + 1
        rows.append((lines, f"{path}:{node.lineno}", node.name))
    return sorted(rows, key=lambda row: (-row[0], row[1]))


def parameter_count(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The function's parameters, `self` or `cls` in first place not counted."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    if positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]
    starred = [a for a in (args.vararg, args.kwarg) if a is not None]
    return len(positional) + len(args.kwonlyargs) + len(starred)


def function_params(root: Path) -> list[tuple[int, str, str]]:
    rows = [
        (parameter_count(node), f"{path}:{node.lineno}", node.name)
        for path, node in _functions(root)
    ]
    return sorted(rows, key=lambda row: (-row[0], row[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, nargs="+", help="a directory or a .py file")
    parser.add_argument("--over", type=int, default=80, help="list functions longer than this")
    parser.add_argument(
        "--params", type=int, default=None, help="list functions with more parameters than this"
    )
    args = parser.parse_args()
    if args.params is not None:
        budget, measure, unit = args.params, function_params, "parameters"
    else:
        budget, measure, unit = args.over, function_sizes, "lines"
    rows = [row for root in args.root for row in measure(root) if row[0] > budget]
    for count, where, name in sorted(rows, key=lambda row: (-row[0], row[1])):
        print(f"{count:5d} {where} {name}")
    print(f"{len(rows)} functions over {budget} {unit}")


if __name__ == "__main__":
    main()
