"""Each config key is documented once (samrl.config.KEY_DOCS); `samrl config keys` and the
README's table come from there."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

from samrl.cli.config import README_END, README_START, markdown_table
from samrl.config import KEY_DOCS, key_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_key_is_documented_and_every_doc_is_a_key() -> None:
    keys = [key for key, _, _ in key_table()]
    assert len(keys) == len(set(keys))
    assert [k for k in keys if not KEY_DOCS.get(k)] == []
    assert sorted(set(KEY_DOCS) - set(keys)) == []


def test_readme_table_is_generated_from_the_schema() -> None:
    text = README.read_text()
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    assert text[start:end].strip() == markdown_table(), (
        "README's key table is stale: regenerate it with `samrl config keys --markdown`"
    )


def test_config_keys_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["config", "keys"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == len(key_table())
    assert any(line.startswith("optim.rho ") and "0.05" in line for line in lines)
    code, out, _ = run_cli(["config", "keys", "--markdown"], capsys)
    assert code == 0 and out.strip() == markdown_table()
