"""What a module imports at run time, read from its source with ast (nothing is imported): the
import-rule, the no-cycle and the lazy-import tests read the same statements; `ImportGraph`
follows them to what importing a module loads (heavy packages included)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

Statement = ast.Import | ast.ImportFrom


def runtime_imports(path: Path, package: str) -> Iterator[tuple[str, list[str]]]:
    """(module, imported names) of each import statement not under `if TYPE_CHECKING`; relative
    imports resolved against `package` (the module's package). `import a.b` gives ("a.b", []),
    `from a import b, c` gives ("a", ["b", "c"])."""
    for node, _ in import_statements(path):
        yield from _resolve(node, package)


#: Packages too heavy to load where they are not used: importing one takes seconds (torch,
#: d3rlpy, gymnasium, matplotlib, ...) or pulls in a framework (ray, submitit, wandb). minari
#: and gym load gymnasium or its predecessor.
HEAVY = (
    "torch",
    "d3rlpy",
    "gymnasium",
    "gym",
    "matplotlib",
    "ray",
    "submitit",
    "mujoco",
    "wandb",
    "tensorboard",
    "minari",
)


def _resolve(node: Statement, package: str) -> list[tuple[str, list[str]]]:
    if isinstance(node, ast.Import):
        return [(alias.name, []) for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = package.split(".")
        base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
    return [(base, [a.name for a in node.names])]


def import_statements(path: Path) -> Iterator[tuple[Statement, bool]]:
    """Each import statement not under `if TYPE_CHECKING`, with whether it runs when the module
    is imported (False: it sits in a function body and runs when the function is called)."""

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[Statement, bool]]:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, not in_function
            return
        children: list[ast.AST] = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            children = list(node.orelse)
        in_function = in_function or isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
        )
        for child in children:
            yield from walk(child, in_function)

    yield from walk(ast.parse(path.read_text()), False)


class ImportGraph:
    """The modules of one package (`root`, e.g. .../samrl) and what importing each loads,
    read from the source: its import-time statements (not those in function bodies, not those
    under `if TYPE_CHECKING`), followed through the package's own modules; importing
    `samrl.a.b` also runs `samrl/__init__.py` and `samrl/a/__init__.py`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths: dict[str, Path] = {}
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            self.paths[".".join(parts)] = path
        self._direct: dict[str, set[str]] = {}

    def package_of(self, module: str) -> str:
        """The package relative imports in `module` are resolved against."""
        return module if self.paths[module].name == "__init__.py" else module.rpartition(".")[0]

    def targets(self, node: Statement, module: str) -> set[str]:
        """What one statement in `module` imports: the package's own modules by full name (a
        `from a import b` names the submodule a.b where there is one), others by top name."""
        found = set()
        for base, names in _resolve(node, self.package_of(module)):
            if base.split(".")[0] != self.root.name:
                found.add(base.split(".")[0])
                continue
            subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in self.paths]
            found |= set(subs) | {base}
        return found

    def direct(self, module: str) -> set[str]:
        """What importing `module` runs directly: its parent packages and the targets of its
        import-time statements."""
        if module not in self._direct:
            parts = module.split(".")
            found = {".".join(parts[:i]) for i in range(1, len(parts))}
            for node, at_import in import_statements(self.paths[module]):
                if at_import:
                    found |= self.targets(node, module)
            self._direct[module] = found - {module}
        return self._direct[module]

    def loads(self, module: str) -> set[str]:
        """Every module importing `module` loads, itself included: the package's own by full
        name, others by top name."""
        found, todo = {module}, [module]
        while todo:
            current = todo.pop()
            new = self.direct(current) - found if current in self.paths else set()
            found |= new
            todo += sorted(new)
        return found

    def heavy(self, module: str) -> set[str]:
        """The heavy packages (HEAVY) importing `module` loads."""
        return {name for name in self.loads(module) if name in HEAVY}
