"""Downloads against a real HTTP server on 127.0.0.1 that injects faults; `samrl data download`
and `samrl train` run as real subprocesses (never touching any other address)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import h5py
import numpy as np
import pytest
import yaml
from conftest import run_cli, tiny_config, write_config
from tqdm import tqdm

from samrl.testing.server import FaultyServer

NAME = "hopper-medium-v2"
REL = "/gym_mujoco_v2/hopper_medium-v2.hdf5"
FILE = "hopper_medium-v2.hdf5"


def d4rl_bytes(n: int = 3000, seed: int = 0) -> bytes:
    """A file in D4RL's own layout with Hopper's dimensions (11 observations, 3 actions)."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f["observations"] = rng.normal(size=(n, 11)).astype(np.float32)
        f["next_observations"] = rng.normal(size=(n, 11)).astype(np.float32)
        f["actions"] = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
        f["rewards"] = rng.normal(size=n).astype(np.float32)
        terminals = np.zeros(n, bool)
        terminals[np.arange(199, n, 400)] = True
        timeouts = np.zeros(n, bool)
        timeouts[np.arange(399, n, 400)] = True
        timeouts[-1] = not terminals[-1]
        f["terminals"] = terminals
        f["timeouts"] = timeouts
    return buf.getvalue()


PAYLOAD = d4rl_bytes()


@pytest.fixture
def server() -> Iterator[FaultyServer]:
    with FaultyServer({REL: PAYLOAD}, stall_s=30.0) as s:
        yield s


def env_for(server_url: str, d4rl_dir: pathlib.Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SAMRL_OFFLINE", None)
    env.update(
        SAMRL_D4RL_URL=server_url,
        D4RL_DATASET_DIR=str(d4rl_dir),
        SAMRL_DOWNLOAD_BACKOFF="0",
        SAMRL_DOWNLOAD_TIMEOUT="2",
        SAMRL_DOWNLOAD_RETRIES="3",
        PYTHONPATH=os.environ.get("PYTHONPATH", os.getcwd()),
    )
    env.update(extra)
    return env


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[list[str], dict[str, str]], Result]:
    """`samrl ARGS` in this process (fast) under environment `env`."""

    def run(args: list[str], env: dict[str, str]) -> Result:
        with monkeypatch.context() as mp:
            mp.setenv("SAMRL_OFFLINE", "0")  # recorded, so a --offline flag is undone after
            mp.delenv("SAMRL_D4RL_URL", raising=False)
            for key, value in env.items():
                if key.startswith(("SAMRL_", "D4RL_")):
                    mp.setenv(key, value)
            code, out, err = run_cli(args, capsys)
        return Result(code, out, err)

    return run


def samrl(args: list[str], env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "samrl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def leftovers(directory: pathlib.Path) -> list[str]:
    """Files besides the (hidden, empty) lock file and the file's recorded sha256."""
    if not directory.exists():
        return []
    kept = (".lock", ".sha256.json")
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(kept))


def one_line(stderr: str) -> str:
    """The one line written to stderr (not a terminal: no progress bar, no carriage return)."""
    lines = [line for line in stderr.split("\n") if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "\r" not in stderr
    return lines[0]


def test_download_then_present(
    cli: Callable[[list[str], dict[str, str]], Result], server: FaultyServer, tmp_path: pathlib.Path
) -> None:
    env = env_for(server.url, tmp_path)
    result = cli(["data", "download", f"d4rl:{NAME}"], env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / FILE).read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == [FILE]
    assert f"d4rl:{NAME} -> {tmp_path / FILE}" in result.stdout
    assert result.stderr.strip() == ""  # a pipe: no bar, and a short download writes no lines
    again = cli(["data", "download", f"d4rl:{NAME}"], env)
    assert again.returncode == 0 and len(server.requests) == 1  # kept, not fetched again
    listing = cli(["data", "list", "--remote"], env)
    assert f"d4rl:{NAME}" in listing.stdout and str(tmp_path / FILE) in listing.stdout
    assert "d4rl:walker2d-medium-replay-v0" in listing.stdout


def test_a_long_download_into_a_log_is_a_line_per_tenth(
    server: FaultyServer,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Not a terminal (a batch job's log): no carriage-return redraws. A download that takes
    a minute (here: any, REPORT_AFTER_S patched) writes a line per tenth and one at the end."""
    import samrl.data.download
    from samrl.progress import LineProgress

    monkeypatch.delenv("SAMRL_OFFLINE", raising=False)
    monkeypatch.setattr(samrl.data.download, "_CHUNK", len(PAYLOAD) // 25)  # 25+ updates
    monkeypatch.setattr(LineProgress, "REPORT_AFTER_S", 0.0)
    spec, keys = f"d4rl:{NAME}", ("observations",)
    samrl.data.download.download(
        server.url + REL, tmp_path / FILE, spec=spec, required_keys=keys, progress=True
    )
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    size = tqdm.format_sizeof(len(PAYLOAD), "B", 1024)
    assert 5 <= len(lines[:-1]) <= 9  # one per tenth passed, each once
    assert all(line.startswith(f"{FILE}: ") and line.endswith(" s left)") for line in lines[:-1])
    assert lines[-1].startswith(f"{FILE}: {size}/{size} in ")
    assert (tmp_path / FILE).read_bytes() == PAYLOAD
    # a download shorter than a minute writes nothing (the command prints its own summary)
    monkeypatch.setattr(LineProgress, "REPORT_AFTER_S", 60.0)
    samrl.data.download.download(
        server.url + REL, tmp_path / "again" / FILE, spec=spec, required_keys=keys, progress=True
    )
    assert capsys.readouterr().err == ""


def test_dropped_connection_resumes_byte_identical(
    cli: Callable[[list[str], dict[str, str]], Result], server: FaultyServer, tmp_path: pathlib.Path
) -> None:
    server.faults[REL] = ["drop_half"]
    result = cli(["data", "download", f"d4rl:{NAME}"], env_for(server.url, tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / FILE).read_bytes() == PAYLOAD
    (first, range0), (second, range1) = server.requests
    assert first == second == REL and range0 is None
    assert range1 == f"bytes={len(PAYLOAD) // 2}-"  # resumed, not restarted
    assert leftovers(tmp_path) == [FILE]


def test_server_errors_are_retried(
    cli: Callable[[list[str], dict[str, str]], Result], server: FaultyServer, tmp_path: pathlib.Path
) -> None:
    server.faults[REL] = ["500", "500"]
    result = cli(["data", "download", f"d4rl:{NAME}"], env_for(server.url, tmp_path))
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 3
    assert (tmp_path / FILE).read_bytes() == PAYLOAD


def test_server_errors_beyond_retries_fail_in_one_line(
    server: FaultyServer, tmp_path: pathlib.Path
) -> None:
    server.faults[REL] = ["500"] * 10
    result = samrl(
        ["data", "download", f"d4rl:{NAME}"],
        env_for(server.url, tmp_path, SAMRL_DOWNLOAD_RETRIES="2"),
    )
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "after 3 attempt(s)" in line and "HTTP 500" in line
    assert len(server.requests) == 3 and leftovers(tmp_path) == []


def test_not_found_is_one_line_exit_2(
    cli: Callable[[list[str], dict[str, str]], Result], server: FaultyServer, tmp_path: pathlib.Path
) -> None:
    result = cli(["data", "download", "d4rl:walker2d-expert-v2"], env_for(server.url, tmp_path))
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "HTTP 404" in line and "walker2d_expert-v2.hdf5" in line
    assert len(server.requests) == 1  # a 404 is not retried
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fault", ["truncate", "corrupt"])
def test_bad_body_is_rejected_and_removed(
    cli: Callable[[list[str], dict[str, str]], Result],
    server: FaultyServer,
    tmp_path: pathlib.Path,
    fault: str,
) -> None:
    server.faults[REL] = [fault]
    result = cli(["data", "download", f"d4rl:{NAME}"], env_for(server.url, tmp_path))
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "rejected" in line and "deleted" in line
    assert leftovers(tmp_path) == []


def test_stalled_server_times_out_then_resumes(
    cli: Callable[[list[str], dict[str, str]], Result], server: FaultyServer, tmp_path: pathlib.Path
) -> None:
    server.faults[REL] = ["stall", "stall"]
    env = env_for(server.url, tmp_path, SAMRL_DOWNLOAD_TIMEOUT="1", SAMRL_DOWNLOAD_RETRIES="1")
    start = time.monotonic()
    result = cli(["data", "download", f"d4rl:{NAME}"], env)
    assert time.monotonic() - start < 25  # the 30 s stall was not waited out
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "no data from 127.0.0.1" in line and "resumes" in line
    assert not (tmp_path / FILE).exists()
    # The next run continues from the kept bytes.
    result = cli(["data", "download", f"d4rl:{NAME}"], env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / FILE).read_bytes() == PAYLOAD
    # Each stalled attempt kept its 1024 bytes; every later attempt asked for the rest.
    assert [r[1] for r in server.requests] == [None, "bytes=1024-", "bytes=2048-"]


def test_no_server_is_one_line(
    cli: Callable[[list[str], dict[str, str]], Result], tmp_path: pathlib.Path
) -> None:
    with FaultyServer({}) as closed:
        url = closed.url
    result = cli(["data", "download", f"d4rl:{NAME}"], env_for(url, tmp_path))
    assert result.returncode == 2
    assert "refused the connection" in one_line(result.stderr)
    assert leftovers(tmp_path) == []


def test_offline_refuses_without_a_request(
    cli: Callable[[list[str], dict[str, str]], Result], server: FaultyServer, tmp_path: pathlib.Path
) -> None:
    env = env_for(server.url, tmp_path, SAMRL_OFFLINE="1")
    result = cli(["data", "download", f"d4rl:{NAME}"], env)
    assert result.returncode == 2
    assert f"samrl data download d4rl:{NAME}" in one_line(result.stderr)
    env.pop("SAMRL_OFFLINE")
    flag = cli(["--offline", "data", "download", f"d4rl:{NAME}"], env)
    assert flag.returncode == 2 and "SAMRL_OFFLINE" in one_line(flag.stderr)
    assert server.requests == []


def _no_bigger_files_than(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_write_failure_is_one_line_and_cleans_up(
    server: FaultyServer, tmp_path: pathlib.Path
) -> None:
    result = samrl(
        ["data", "download", "--quiet", f"d4rl:{NAME}"],
        env_for(server.url, tmp_path),
        preexec_fn=lambda: _no_bigger_files_than(len(PAYLOAD) // 3),
    )
    assert result.returncode == 2
    assert "cannot write" in one_line(result.stderr)
    assert leftovers(tmp_path) == []


def test_two_processes_download_once(server: FaultyServer, tmp_path: pathlib.Path) -> None:
    big = d4rl_bytes(n=60_000, seed=1)  # several MiB, served slowly so the two overlap
    server.files[REL] = big
    server.chunk_delay_s = 0.2
    env = env_for(server.url, tmp_path)
    cmd = [sys.executable, "-m", "samrl", "data", "download", "--quiet", f"d4rl:{NAME}"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert (tmp_path / FILE).read_bytes() == big
    assert [r for r in server.requests if r[0] == REL] == [(REL, None)]
    assert leftovers(tmp_path) == [FILE]


def test_download_records_its_sha256_and_source(
    cli: Callable[[list[str], dict[str, str]], Result], server: FaultyServer, tmp_path: pathlib.Path
) -> None:
    env = env_for(server.url, tmp_path)
    assert cli(["data", "download", f"d4rl:{NAME}"], env).returncode == 0
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    url = f"{server.url}{REL}"
    sidecar = json.loads((tmp_path / f".{FILE}.sha256.json").read_text())
    assert (sidecar["sha256"], sidecar["size"], sidecar["url"]) == (sha, len(PAYLOAD), url)
    info = cli(["data", "info", f"d4rl:{NAME}"], env)
    assert info.returncode == 0, info.stderr
    assert f"sha256:      {sha}" in info.stdout and f"source:      {url}" in info.stdout
    config = tiny_config(
        tmp_path,
        dataset={"name": f"d4rl:{NAME}"},
        algo={"name": "bc", "params": {"batch_size": 16}},
        train={"n_steps": 2, "n_steps_per_epoch": 2, "eval_episodes": 0},
    )
    code = cli(["train", "--config", str(write_config(tmp_path, config)), "--quiet"], env)
    assert code.returncode == 0, code.stderr
    written = yaml.safe_load(next((tmp_path / "runs").glob("*/*/config.yaml")).read_text())
    assert written["samrl"]["dataset_file"] == {
        "spec": f"d4rl:{NAME}",
        "path": str(tmp_path / FILE),
        "size": len(PAYLOAD),
        "sha256": sha,
        "url": url,
    }


def _csvs(run_dir: pathlib.Path) -> dict[str, list[str]]:
    """loss.csv and sharpness.csv without their wall-clock column(s)."""
    out = {}
    for name in ("loss.csv", "sharpness.csv"):
        rows = [line.split(",") for line in (run_dir / name).read_text().splitlines()]
        keep = [i for i, h in enumerate(rows[0]) if "time" not in h]
        out[name] = [",".join(r[i] for i in keep) for r in rows]
    return out


@pytest.mark.slow
def test_train_downloads_on_first_use_same_as_copied(
    server: FaultyServer, tmp_path: pathlib.Path
) -> None:
    by_hand = tmp_path / "by_hand"
    by_hand.mkdir()
    (by_hand / FILE).write_bytes(PAYLOAD)
    runs = {}
    for label, d4rl_dir in (("downloaded", tmp_path / "fetched"), ("copied", by_hand)):
        config = tiny_config(
            tmp_path / label,
            dataset={"name": f"d4rl:{NAME}"},
            algo={"name": "td3_plus_bc", "params": {"batch_size": 16}},
            train={"n_steps": 20, "n_steps_per_epoch": 10, "eval_episodes": 0},
        )
        path = write_config(tmp_path, config, f"{label}.yaml")
        result = samrl(["train", "--config", str(path), "--quiet"], env_for(server.url, d4rl_dir))
        assert result.returncode == 0, result.stderr
        runs[label] = next((tmp_path / label / "runs").glob("*/*/loss.csv")).parent
    assert (tmp_path / "fetched" / FILE).read_bytes() == PAYLOAD
    assert len(server.requests) == 1
    assert _csvs(runs["downloaded"]) == _csvs(runs["copied"])


def test_dry_run_does_not_download(
    cli: Callable[[list[str], dict[str, str]], Result], server: FaultyServer, tmp_path: pathlib.Path
) -> None:
    config = tiny_config(tmp_path, dataset={"name": f"d4rl:{NAME}"})
    path = write_config(tmp_path, config)
    env = env_for(server.url, tmp_path / "d4rl")
    result = cli(["train", "--config", str(path), "--dry-run"], env)
    assert result.returncode == 0, result.stderr
    assert server.requests == [] and leftovers(tmp_path / "d4rl") == []
    offline = cli(["--offline", "train", "--config", str(path), "--dry-run"], env)
    assert offline.returncode == 2
    assert f"samrl data download d4rl:{NAME}" in one_line(offline.stderr)


def test_copied_file_is_found_under_d4rl_name(
    cli: Callable[[list[str], dict[str, str]], Result], tmp_path: pathlib.Path
) -> None:
    # The by-hand route: D4RL's own file name (v0 medium-replay is "mixed") is found.
    (tmp_path / "hopper_mixed.hdf5").write_bytes(PAYLOAD)
    env = dict(os.environ, D4RL_DATASET_DIR=str(tmp_path))
    result = cli(["data", "info", "d4rl:hopper-medium-replay-v0"], env)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "hopper_mixed.hdf5") in result.stdout


@pytest.mark.slow
def test_sweep_downloads_once_in_the_driver(server: FaultyServer, tmp_path: pathlib.Path) -> None:
    """Two parallel runs need the same D4RL file: the driver fetches it once before either
    starts, and the runs find it (one request in all)."""
    config = tiny_config(
        tmp_path,
        dataset={"name": f"d4rl:{NAME}"},
        algo={"name": "td3_plus_bc", "params": {"batch_size": 16}},
        train={"n_steps": 10, "n_steps_per_epoch": 10, "eval_episodes": 0, "device": "cpu"},
    )
    config.pop("name")
    config.pop("output")
    path = tmp_path / "sweep.yaml"
    path.write_text(
        yaml.safe_dump(
            {"name": "study", "config": config, "seeds": [0, 1], "jobs": 2, "out": str(tmp_path)}
        )
    )
    result = samrl(["sweep", str(path), "--quiet"], env_for(server.url, tmp_path / "d4rl"))
    assert result.returncode == 0, result.stderr
    assert server.requests == [(REL, None)]
    assert (tmp_path / "d4rl" / FILE).read_bytes() == PAYLOAD
    assert len(list(tmp_path.glob("study/runs/*/loss.csv"))) == 2


def test_cluster_workers_never_download(
    cli: Callable[[list[str], dict[str, str]], Result],
    server: FaultyServer,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slurm/Ray workers run offline: the driver fetched the data before launching them."""
    from samrl.sweep.worker import forwarded_env

    monkeypatch.setenv("SAMRL_OFFLINE", "0")
    env = forwarded_env()
    assert env["SAMRL_OFFLINE"] == "1"
    result = cli(["data", "download", f"d4rl:{NAME}"], {**env_for(server.url, tmp_path), **env})
    assert result.returncode == 2 and server.requests == []
