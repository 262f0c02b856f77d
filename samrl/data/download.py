"""Downloading one file: resumable, retried, validated, atomic, one downloader at a time.

The file grows at `.<name>.part` beside the target (same file system, so the final rename is
atomic); an interrupted transfer is resumed with an HTTP Range request; connection errors, read
timeouts and 5xx answers are retried with exponential backoff; the finished file must open as
HDF5 with the keys samrl needs before it is renamed into place, else it is deleted. A lock file
beside the target makes two processes that want the same file download it once.
"""

from __future__ import annotations

import errno
import os
import pathlib
import time
from typing import Any
from urllib.parse import urlsplit

import h5py
import requests
import urllib3
from filelock import FileLock

from samrl.data.provenance import record_download
from samrl.envvars import (  # offline_mode, offline_env: samrl.cli imports them from here
    OFFLINE_ENV,
    env_number,
    offline,
    offline_env,  # noqa: F401
    offline_mode,  # noqa: F401
)
from samrl.errors import DatasetError
from samrl.progress import byte_bar

TIMEOUT_ENV = "SAMRL_DOWNLOAD_TIMEOUT"  # seconds without data before an attempt is given up
RETRIES_ENV = "SAMRL_DOWNLOAD_RETRIES"  # further attempts after the first
BACKOFF_ENV = "SAMRL_DOWNLOAD_BACKOFF"  # first wait between attempts (doubles, at most 30 s)
_CHUNK = 1 << 20


class DownloadError(DatasetError):
    """A dataset could not be downloaded (network, server, disk, or a bad file)."""

    kind = "download error"


class _Retryable(Exception):
    """A failure worth another attempt (connection lost, stalled, server error)."""


def refuse_if_offline(spec: str, path: pathlib.Path) -> None:
    if offline():
        raise DownloadError(
            f"{spec}: not in {path} and {OFFLINE_ENV} is set (or --offline was given), so it is "
            f"not downloaded; run `samrl data download {spec}` on a machine with network "
            "access and copy the file there"
        )


def part_path(target: pathlib.Path) -> pathlib.Path:
    return target.with_name(f".{target.name}.part")


def lock_path(target: pathlib.Path) -> pathlib.Path:
    return target.with_name(f".{target.name}.lock")


def check_hdf5(path: pathlib.Path, keys: tuple[str, ...]) -> None:
    """Raise DownloadError unless `path` opens as HDF5 and holds `keys` as datasets."""
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in keys if not isinstance(f.get(k), h5py.Dataset)]
            if not missing:
                for k in keys:  # reading one element checks the data is really there
                    if f[k].shape and f[k].shape[0]:
                        f[k][-1]
    except (OSError, ValueError, KeyError) as exc:
        raise DownloadError(f"not a readable HDF5 file ({str(exc).splitlines()[0]})") from None
    if missing:
        raise DownloadError(f"HDF5 file without dataset(s) {', '.join(missing)}")


def download(
    url: str,
    target: pathlib.Path,
    *,
    spec: str,
    required_keys: tuple[str, ...],
    progress: bool = True,
) -> pathlib.Path:
    """Download `url` to `target` unless it is there already; returns `target`."""
    if target.is_file():
        return target
    refuse_if_offline(spec, target)
    timeout = env_number(TIMEOUT_ENV, 30.0)
    retries = int(env_number(RETRIES_ENV, 5, integer=True))
    backoff = env_number(BACKOFF_ENV, 1.0)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path(target)))
        lock.acquire()
    except OSError as exc:
        raise DownloadError(f"{spec}: cannot write to {target.parent} ({exc.strerror})") from None
    try:
        if target.is_file():  # another process finished it while this one waited
            return target
        part = part_path(target)
        _transfer(url, part, spec, timeout, retries, backoff, progress, target.name)
        try:
            check_hdf5(part, required_keys)
        except DownloadError as exc:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{spec}: the file downloaded from {url} was rejected: {exc}; it was deleted"
            ) from None
        os.replace(part, target)
        record_download(target, spec, url)  # its sha256 and source, beside it
    finally:
        lock.release()
    return target


def _transfer(
    url: str,
    part: pathlib.Path,
    spec: str,
    timeout: float,
    retries: int,
    backoff: float,
    progress: bool,
    label: str,
) -> None:
    host = urlsplit(url).netloc or url
    attempt = 0
    with requests.Session() as session:
        while True:
            try:
                _attempt(session, url, part, spec, timeout, progress, label)
                return
            except _Retryable as exc:
                reason = str(exc)
            except requests.Timeout:
                reason = f"no data from {host} for {timeout:g} s"
            except requests.ConnectionError as exc:
                reason = _connection_reason(exc, host, timeout)
            except urllib3.exceptions.ReadTimeoutError:
                reason = f"no data from {host} for {timeout:g} s"
            except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                reason = f"connection to {host} broke ({type(exc).__name__})"
            attempt += 1
            if attempt > retries:
                kept = part.stat().st_size if part.exists() else 0
                resume = (
                    f"; {kept} bytes are kept in {part} and the next `samrl data download "
                    f"{spec}` resumes from there"
                    if kept
                    else ""
                )
                raise DownloadError(
                    f"{spec}: download from {url} failed after {attempt} attempt(s): {reason}"
                    f"{resume}"
                )
            time.sleep(min(backoff * 2 ** (attempt - 1), 30.0))


def _connection_reason(exc: requests.ConnectionError, host: str, timeout: float) -> str:
    text = str(exc)
    if "Name or service not known" in text or "nodename nor servname" in text:
        return f"cannot resolve {host} (no network?)"
    if "Connection refused" in text:
        return f"{host} refused the connection"
    if "timed out" in text.lower():
        return f"no data from {host} for {timeout:g} s"
    return f"cannot reach {host} (no network?)"


def _attempt(
    session: requests.Session,
    url: str,
    part: pathlib.Path,
    spec: str,
    timeout: float,
    progress: bool,
    label: str,
) -> None:
    have = part.stat().st_size if part.exists() else 0
    # identity: byte ranges then count the file's own bytes, not a compressed stream's
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={have}-"} if have else {})}
    with session.get(url, headers=headers, stream=True, timeout=(timeout, timeout)) as r:
        if r.status_code == 416 and have:  # the partial file is not a prefix of this one
            part.unlink()
            raise _Retryable("the server rejected the resume range; starting over")
        if r.status_code >= 500:
            raise _Retryable(f"HTTP {r.status_code} {r.reason} from the server")
        if r.status_code >= 400:
            hint = " (no such dataset on the server)" if r.status_code in (404, 410) else ""
            raise DownloadError(f"{spec}: {url}: HTTP {r.status_code} {r.reason}{hint}")
        start = have if r.status_code == 206 and _range_start(r) == have else 0
        length = r.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        with byte_bar(total, label, progress, initial=start) as bar:
            _write_body(r, part, start, bar)
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Retryable(f"connection closed after {size} of {total} bytes")


def _range_start(r: requests.Response) -> int | None:
    """The first byte of a 206 answer ('bytes 100-199/200' -> 100)."""
    value = r.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _write_body(r: requests.Response, part: pathlib.Path, start: int, bar: Any) -> None:
    # read1 hands over whatever arrived, so the bytes before a dropped connection are kept
    # (iter_content would lose the chunk that was being filled).
    raw = r.raw
    try:
        with part.open("r+b" if start else "wb") as f:
            f.seek(start)
            f.truncate()
            while chunk := raw.read1(_CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
    except (requests.RequestException, urllib3.exceptions.HTTPError):
        raise
    except OSError as exc:
        part.unlink(missing_ok=True)
        what = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        raise DownloadError(f"cannot write {part}: {what}; the partial file was deleted") from None
