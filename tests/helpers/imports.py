"""What a module imports at run time, read from its source with ast (nothing is imported): the
import-rule and the no-cycle tests read the same statements."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path


def runtime_imports(path: Path, package: str) -> Iterator[tuple[str, list[str]]]:
    """(module, imported names) of each import statement not under `if TYPE_CHECKING`; relative
    imports resolved against `package` (the module's package). `import a.b` gives ("a.b", []),
    `from a import b, c` gives ("a", ["b", "c"])."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(n) for child in node.body for n in ast.walk(child)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            yield base, [a.name for a in node.names]
