"""The README's numbers from the shipped sweeps are generated from their CSVs
(samrl.results.readme_tables): a block that drifts from its CSVs fails here."""

from __future__ import annotations

from pathlib import Path

from samrl.results.readme_tables import BLOCKS, COMMAND, blocks_in, end_marker, stale_blocks

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_block_is_in_the_readme_once() -> None:
    text = README.read_text()
    assert sorted(blocks_in(text)) == sorted(BLOCKS)
    for name in BLOCKS:
        assert text.count(end_marker(name)) == 1, name


def test_the_readme_blocks_match_the_shipped_csvs() -> None:
    stale = stale_blocks(README.read_text())
    assert not stale, f"README blocks {stale} differ from results/*.csv: run `{COMMAND}`"


def test_a_changed_number_is_caught() -> None:
    text = README.read_text()
    name = "study"
    head, block = text.split(f"<!-- results:{name}:start", 1)
    block, tail = block.split(end_marker(name), 1)
    changed = block.replace("[", "[1", 1)  # one quoted number edited by hand
    assert changed != block
    edited = head + f"<!-- results:{name}:start" + changed + end_marker(name) + tail
    assert stale_blocks(edited) == [name]
