"""Which bytes a run trained on: a dataset file's sha256 and size, and where it came from.

D4RL's files are served over plain HTTP without published checksums, so a run records the
sha256 of the file it read (config.yaml's `samrl.dataset_file`) and a config may pin one
(`dataset.sha256`): a different file is refused before anything trains.

Hashing a 300 MB file takes seconds, so it is done once per file: the result is kept in a
small sidecar beside it, `.<name>.sha256.json`, valid while the file's size and mtime_ns are
those recorded (a rewritten file is hashed again). A download writes the sidecar too, with the
spec and the URL it came from. Where the sidecar cannot be written (a read-only copy), the hash
is computed each time.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
from typing import Any

from samrl.errors import DatasetError

_CHUNK = 1 << 20
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")


def sidecar_path(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(f".{path.name}.sha256.json")


def file_sha256(path: pathlib.Path) -> str:
    """The sha256 of the file's bytes (what `sha256sum` prints), read once, in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(path: pathlib.Path) -> dict[str, Any]:
    """{"sha256", "size"} of the file, plus "spec" and "url" when samrl downloaded it; from
    the sidecar when it matches the file's size and mtime_ns, else hashed (and the sidecar
    rewritten)."""
    path = pathlib.Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read it ({exc.strerror})") from None
    cached = _read_sidecar(path)
    if cached.get("size") == stat.st_size and cached.get("mtime_ns") == stat.st_mtime_ns:
        sha = cached.get("sha256")
        if isinstance(sha, str) and SHA256_PATTERN.fullmatch(sha):
            source = {k: cached[k] for k in ("spec", "url") if isinstance(cached.get(k), str)}
            return {"sha256": sha, "size": stat.st_size, **source}
    return _hash_and_record(path, {})


def record_download(path: pathlib.Path, spec: str, url: str) -> None:
    """After a download: hash the new file and keep its source beside it."""
    _hash_and_record(pathlib.Path(path), {"spec": spec, "url": url})


def _hash_and_record(path: pathlib.Path, source: dict[str, str]) -> dict[str, Any]:
    try:
        before = path.stat()
        sha = file_sha256(path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read it ({exc.strerror})") from None
    record = {"sha256": sha, "size": before.st_size, "mtime_ns": before.st_mtime_ns, **source}
    sidecar = sidecar_path(path)
    temporary = sidecar.with_name(f"{sidecar.name}.{os.getpid()}.tmp")
    try:  # atomic; a read-only place keeps no sidecar (hashed again next time)
        temporary.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(temporary, sidecar)
    except OSError:
        temporary.unlink(missing_ok=True)
    return {"sha256": sha, "size": before.st_size, **source}


def _read_sidecar(path: pathlib.Path) -> dict[str, Any]:
    try:
        loaded = json.loads(sidecar_path(path).read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def verify_pin(spec: str, path: pathlib.Path, sha256: str | None) -> None:
    """DatasetError in one line when the file is not the one `dataset.sha256` pins."""
    if sha256 is None:
        return
    if not pathlib.Path(path).is_file():
        raise DatasetError(f"{spec}: dataset.sha256 pins a file, but {path} is not one")
    found = fingerprint(path)["sha256"]
    if found != sha256.lower():
        raise DatasetError(
            f"{spec}: {path} has sha256 {found}, but dataset.sha256 pins {sha256.lower()}; "
            "not trained (a different file: fetch the pinned one, or change the pin)"
        )


def provenance(spec: str, path: pathlib.Path | None) -> dict[str, Any] | None:
    """What config.yaml records under samrl.dataset_file: path, size, sha256 (and the URL when
    downloaded); None when the dataset has no single file (a Minari folder of another
    layout)."""
    if path is None or not pathlib.Path(path).is_file():
        return None
    found = fingerprint(pathlib.Path(path))
    record: dict[str, Any] = {
        "spec": spec,
        "path": str(path),
        "size": found["size"],
        "sha256": found["sha256"],
    }
    if "url" in found:
        record["url"] = found["url"]
    return record
