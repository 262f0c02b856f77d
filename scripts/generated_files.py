"""Write, or check, the files a preset script generates from its table (one owner for both
preset scripts: scripts/d4rl_presets.py and scripts/corruption_presets.py)."""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Callable, Sequence


def sync(
    description: str,
    files: Callable[[], dict[pathlib.Path, str]],
    directories: Sequence[pathlib.Path],
    root: pathlib.Path,
) -> int:
    """The command line of a preset script: `--check` exits 1 naming every file that differs
    from what `files()` makes (or that it no longer makes); without it, (re)writes them and
    removes the stale ones. Hand edits are overwritten: the table is the source."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="Only compare; exit 1 on a diff.")
    args = parser.parse_args()
    wanted = files()
    stale = [p for p, text in wanted.items() if not p.is_file() or p.read_text() != text]
    extra = [p for d in directories if d.is_dir() for p in d.glob("*.yaml") if p not in wanted]
    if args.check:
        for path in [*stale, *extra]:
            print(f"out of date: {path.relative_to(root)}", file=sys.stderr)
        return 1 if stale or extra else 0
    for path in extra:
        path.unlink()
    for path, text in wanted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    where = " and ".join(str(d.relative_to(root)) for d in directories)
    print(f"wrote {len(wanted)} files under {where}")
    return 0
