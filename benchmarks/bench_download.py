"""samrl's downloader against curl on the same file served from 127.0.0.1.

python benchmarks/bench_download.py [--mb 200] [--rounds 3]

A D4RL-layout HDF5 file of about --mb MiB is served by samrl.testing.server (a real HTTP server
on 127.0.0.1); each round downloads it once with `curl -o` and once with samrl's downloader
(resumable writer, lock, HDF5 validation and atomic rename included), interleaved, and the
table shows MiB/s of each and their ratio, with the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import io
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
from _common import load_average

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from samrl.data.download import download
from samrl.testing.server import FaultyServer


def payload(mib: int) -> bytes:
    n = mib * (1 << 20) // (4 * 11 + 4 * 3 + 4 + 2)
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f["observations"] = rng.normal(size=(n, 11)).astype(np.float32)
        f["actions"] = rng.normal(size=(n, 3)).astype(np.float32)
        f["rewards"] = rng.normal(size=n).astype(np.float32)
        f["terminals"] = np.zeros(n, bool)
        f["timeouts"] = np.zeros(n, bool)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    body = payload(args.mb)
    size_mib = len(body) / (1 << 20)
    rel = "/gym_mujoco_v2/hopper_medium-v2.hdf5"
    curl_s: list[float] = []
    samrl_s: list[float] = []
    print(f"file {size_mib:.1f} MiB from 127.0.0.1; load average before: {load_average()}")
    with FaultyServer({rel: body}) as server, tempfile.TemporaryDirectory() as tmp:
        url = server.url + rel
        for _ in range(args.rounds):
            target = pathlib.Path(tmp) / "curl.hdf5"
            start = time.perf_counter()
            subprocess.run(["curl", "-s", "-f", "-o", str(target), url], check=True)
            curl_s.append(time.perf_counter() - start)
            assert target.read_bytes() == body
            target.unlink()
            target = pathlib.Path(tmp) / "hopper_medium-v2.hdf5"
            start = time.perf_counter()
            download(
                url,
                target,
                spec="d4rl:hopper-medium-v2",
                required_keys=("observations", "actions", "rewards", "terminals"),
                progress=False,
            )
            samrl_s.append(time.perf_counter() - start)
            assert target.read_bytes() == body
            target.unlink()
    rows = [("curl", curl_s), ("samrl", samrl_s)]
    print(f"{'client':<8} {'median s':>9} {'MiB/s':>8}  (per round: s)")
    for name, times in rows:
        med = statistics.median(times)
        per = ", ".join(f"{t:.2f}" for t in times)
        print(f"{name:<8} {med:>9.2f} {size_mib / med:>8.0f}  ({per})")
    ratio = statistics.median(s / c for s, c in zip(samrl_s, curl_s, strict=True))
    print(f"samrl / curl time, median of paired rounds: {ratio:.2f}")
    print(f"load average after: {load_average()} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
