"""The package map of docs/architecture.md, checked: which samrl package may import which.

Every import counts (function-local ones too, not those under `if TYPE_CHECKING`). A unit is a
package under samrl/ (`samrl.run`, `samrl.sam`, ...) or a module at the root (`samrl.rundir`);
`samrl` itself is the package's `__init__`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers.imports import HEAVY, ImportGraph, import_statements, runtime_imports

ROOT = Path(__file__).resolve().parents[1] / "samrl"

#: Imported by anything: the root modules every package uses. They import only each other.
FOUNDATION = {
    "errors",
    "envvars",
    "quiet",
    "progress",
    "validate",
    "networks",
    "metrics",
    "status",
    "safeload",
    "rng",
}
#: The command layer: click groups, which may import whatever their commands run.
COMMANDS = {"cli", "__main__"}

#: Who may import whom, besides FOUNDATION (docs/architecture.md, "Who may import whom").
ALLOWED: dict[str, set[str]] = {
    "samrl": {"algos"},  # the facade: register(), load_learnable()
    "sam": set(),
    "algos": {"sam", "combo", "riql"},
    "combo": {"run"},  # hooks and the CSV writer
    "riql": {"run"},
    "config": {"sam", "algos", "data"},
    "rundir": {"config"},
    "data": {"rundir"},
    "run": {"samrl", "sam", "algos", "config", "data", "rundir", "analysis"},
    "analysis": {"sam", "algos", "config", "data", "rundir", "results"},
    "results": {"sam", "algos", "config", "data", "rundir"},
    "sweep": {"samrl", "config", "data", "rundir", "results", "run"},
    "testing": {"algos"},
}


def _unit(module: str) -> str:
    parts = module.split(".")
    return "samrl" if len(parts) == 1 else parts[1]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for base, names in runtime_imports(path, package):
        targets = [f"{base}.{n}" for n in names] if base == "samrl" and names else [base]
        found |= {t for t in targets if t == "samrl" or t.startswith("samrl.")}
    return found


def _unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    modules = {_module(p) for p in ROOT.rglob("*.py")}
    for path in ROOT.rglob("*.py"):
        unit = _unit(_module(path))
        for name in _imports(path):
            while name not in modules and "." in name:  # `from samrl import x`: x's unit
                name = name.rpartition(".")[0]
            target = _unit(name)
            if target != unit:
                graph.setdefault(unit, set()).add(target)
    return graph


def test_every_unit_is_on_the_map() -> None:
    units = {_unit(_module(p)) for p in ROOT.rglob("*.py")}
    assert units <= FOUNDATION | COMMANDS | set(ALLOWED), (
        units - FOUNDATION - COMMANDS - set(ALLOWED)
    )


def test_each_package_imports_only_what_the_map_allows() -> None:
    wrong = []
    for unit, targets in sorted(_unit_graph().items()):
        if unit in COMMANDS:
            continue
        allowed = FOUNDATION if unit in FOUNDATION else FOUNDATION | ALLOWED[unit]
        wrong += [f"samrl.{unit} -> samrl.{t}" for t in sorted(targets - allowed)]
    assert not wrong, "imports the map (docs/architecture.md) does not allow:\n" + "\n".join(wrong)


def test_no_package_imports_one_that_imports_it_back() -> None:
    graph = _unit_graph()
    pairs = sorted(
        {tuple(sorted((a, b))) for a, bs in graph.items() for b in bs if a in graph.get(b, set())}
    )
    assert not pairs, pairs


def test_the_allowed_map_itself_has_no_two_way_dependency() -> None:
    pairs = [(a, b) for a, bs in ALLOWED.items() for b in bs if a in ALLOWED.get(b, set())]
    assert not pairs, pairs


def test_no_test_module_imports_another() -> None:
    """Test helpers live in tests/helpers/ and conftest.py; a test module imports no other."""
    wrong = []
    for path in sorted((ROOT.parent / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            wrong += [f"{path.name} imports {n}" for n in names if n.startswith("test_")]
    assert not wrong, wrong


def test_an_import_inside_a_function_is_one_that_would_load_a_heavy_package() -> None:
    """An import of samrl's own modules sits at the top of its module, unless importing it
    there would load a heavy package (HEAVY: torch, d3rlpy, gymnasium, matplotlib, ...) the
    module does not load already (docs/architecture.md, "Who may import whom")."""
    graph = ImportGraph(ROOT)
    wrong = []
    for module, path in sorted(graph.paths.items()):
        where = path.relative_to(ROOT.parent).as_posix()
        own = graph.heavy(module)
        for node, at_import in import_statements(path):
            targets = {t for t in graph.targets(node, module) if t in graph.paths}
            if at_import or not targets:
                continue
            heavy = set().union(*(graph.heavy(t) for t in targets)) - own
            if not heavy:
                wrong.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    assert not wrong, (
        f"imports inside functions that load none of {', '.join(HEAVY)} (beyond what the module "
        "loads already); move them to the top of the module:\n" + "\n".join(wrong)
    )
