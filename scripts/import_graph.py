"""The import graph between a package's modules, read from the source (nothing is imported).

``python scripts/import_graph.py samrl`` prints one ``module -> imported, ...`` line per module
of the package (imports inside functions count: samrl's CLI imports its subsystems lazily), then
the number of edges. Used for issue 23's before/after figures.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(root: Path, path: Path, modules: set[str]) -> set[str]:
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    args = parser.parse_args()
    paths = sorted(args.root.rglob("*.py"))
    modules = {module_name(args.root, path) for path in paths}
    edges = 0
    for path in paths:
        targets = sorted(imports_of(args.root, path, modules))
        edges += len(targets)
        print(f"{module_name(args.root, path)} -> {', '.join(targets) or '-'}")
    print(f"{len(paths)} modules, {edges} edges")


if __name__ == "__main__":
    main()
