"""Import hygiene: the engine stays light, the command line loads subsystems when invoked, and
samrl's modules import each other without cycles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from helpers.imports import runtime_imports

from samrl.cli import SUBSYSTEM_COMMANDS, cli

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("click", "matplotlib", "pandas", "scipy", "torch", "d3rlpy", "submitit", "ray")


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    return {m for m in json.loads(out.splitlines()[-1]) if m.split(".")[0] in HEAVY}


def test_the_engine_imports_no_cli_plotting_or_tables() -> None:
    engine = {m.split(".")[0] for m in _loaded_after("import samrl.sam")}
    d3rlpy_itself = {m.split(".")[0] for m in _loaded_after("import d3rlpy")}
    assert "click" not in engine and "matplotlib" not in engine, engine
    # d3rlpy 2.8.1 itself imports pandas and scipy; samrl.sam adds nothing beyond d3rlpy.
    assert engine - {"torch", "d3rlpy"} <= d3rlpy_itself, engine - d3rlpy_itself


def test_help_imports_no_subsystem() -> None:
    """`samrl --help` lists every command without importing torch, d3rlpy or any subsystem."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "samrl", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    top = {m.split(".")[0] for m in imported}
    assert not top & {"torch", "d3rlpy", "matplotlib", "pandas", "scipy", "gym"}, top
    assert not {m for m in imported if m.startswith(("samrl.sweep", "samrl.analysis"))}
    for name in SUBSYSTEM_COMMANDS:
        assert f"  {name} " in done.stdout, done.stdout


@pytest.mark.parametrize("name", sorted(SUBSYSTEM_COMMANDS))
def test_every_lazy_command_resolves(name: str) -> None:
    ctx = click.Context(cli)
    command = cli.get_command(ctx, name)
    assert isinstance(command, click.Command) and command.name == name
    assert "Example" in (command.help or "") + (command.epilog or ""), name


def _runtime_imports(path: Path, module: str, modules: set[str]) -> set[str]:
    """samrl modules `module` imports at run time (anywhere, not under `if TYPE_CHECKING`)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for base, names in runtime_imports(path, package):
        targets = [f"{base}.{n}" if f"{base}.{n}" in modules else base for n in names] or [base]
        found |= {t for t in targets if t in modules and t != module}
    return found


def test_no_import_cycles() -> None:
    files = {}
    for path in (ROOT / "samrl").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    graph = {m: _runtime_imports(p, m, set(files)) for m, p in files.items()}
    # A package importing its own submodules (re-exports) is not a cycle of concern; every
    # other edge must leave the graph acyclic.
    for module, deps in graph.items():
        graph[module] = {d for d in deps if not module.startswith(d + ".") and d != "samrl"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_importing_samrl_registers_nothing_and_register_is_one_idempotent_call() -> None:
    """`import samrl` changes nothing outside samrl: d3rlpy cannot load a saved SAM model
    until `samrl.register()` (twice here: idempotent) registers samrl's factory."""
    model = ROOT / "tests" / "data" / "old_looksam_asam.d3"
    code = "\n".join(
        [
            "import d3rlpy, samrl",
            f"path = {str(model)!r}",
            "try:",
            "    d3rlpy.load_learnable(path, device='cpu')",
            "except Exception as exc:",
            "    print('refused', type(exc).__name__)",
            "samrl.register()",
            "samrl.register()",
            "algo = d3rlpy.load_learnable(path, device='cpu')",
            "print('loaded', type(algo.config.critic_optim_factory).__name__)",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert "refused" in done.stdout and "loaded SAMFactory" in done.stdout, done.stdout


def test_samrl_load_learnable_registers_and_loads_a_saved_model_safely(tmp_path: Path) -> None:
    """`samrl.load_learnable(path)` is the one call a library user needs for a model samrl
    saved: it registers samrl with d3rlpy, loads without unpickling objects and returns
    d3rlpy's algorithm; a file holding anything else is refused, nothing in it run."""
    model = ROOT / "tests" / "data" / "old_looksam_asam.d3"
    code = "\n".join(
        [
            "import samrl",
            f"algo = samrl.load_learnable({str(model)!r}, device='cpu')",
            "print('loaded', type(algo.config.critic_optim_factory).__name__)",
            "import pickle",
            f"real = pickle.loads(open({str(model)!r}, 'rb').read())",
            f"bad = {str(tmp_path / 'bad.d3')!r}",
            "pickle.dump({**real, 'extra': print}, open(bad, 'wb'))",
            "try:",
            "    samrl.load_learnable(bad)",
            "except Exception as exc:",
            "    print('refused', type(exc).__name__)",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert "loaded SAMFactory" in done.stdout, done.stdout
    assert "refused UnsafeFileError" in done.stdout, done.stdout


def test_offline_flag_changes_no_environment_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`samrl --offline` holds for the command (and the local workers it starts) without
    writing os.environ; outside the command nothing is offline."""
    import os

    from conftest import run_cli

    from samrl.envvars import offline, offline_env, offline_mode

    monkeypatch.delenv("SAMRL_OFFLINE", raising=False)
    code, _, _ = run_cli(["--offline", "config", "keys"], capsys)
    assert code == 0 and "SAMRL_OFFLINE" not in os.environ
    assert not offline() and offline_env() == {}
    with offline_mode():
        assert offline() and offline_env() == {"SAMRL_OFFLINE": "1"}
    monkeypatch.setenv("SAMRL_OFFLINE", "1")
    assert offline() and offline_env() == {"SAMRL_OFFLINE": "1"}
