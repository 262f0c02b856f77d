"""samrl's own test and benchmark helpers, not part of samrl's API and not in its wheel
(pyproject.toml excludes this package; an editable install, as `make install` makes, has it).

- `samrl.testing.data`: tiny random datasets and tiny network settings (seconds, not minutes);
- `samrl.testing.server`: a real HTTP file server on 127.0.0.1 with injectable faults.
"""
