"""TensorBoard and W&B through d3rlpy's adapters: what the run directory's CSVs hold, read back
with each tracker's own reader; W&B offline with no credentials and no network."""

from __future__ import annotations

import http.server
import json
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from conftest import run_cli, tiny_config, write_config

from samrl.config import load_config
from samrl.errors import ConfigError

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")
pytest.importorskip("wandb")


def _tracked_config(tmp_path: Path, loggers: list[str], **extra: Any) -> dict[str, Any]:
    return tiny_config(
        tmp_path,
        algo={"name": "td3_plus_bc", "params": {"batch_size": 16}},
        train={"n_steps": 30, "n_steps_per_epoch": 10, "eval_episodes": 1},
        analysis={"hessian": {"n_transitions": 32}},
        output={"dir": str(tmp_path / "runs"), "loggers": loggers},
        **extra,
    )


def _csv_metrics(run_dir: Path) -> dict[str, dict[int, tuple[int, float]]]:
    """metric -> epoch -> (step, value) from loss/sharpness/eval/hessian.csv."""
    out: dict[str, dict[int, tuple[int, float]]] = {}
    for name, prefix in (("loss", ""), ("sharpness", ""), ("eval", ""), ("hessian", "hessian_")):
        table = pd.read_csv(run_dir / f"{name}.csv")
        for column in table.columns.drop(["epoch", "step"]):
            out[prefix + column] = {
                int(r.epoch): (int(r.step), float(r[column])) for _, r in table.iterrows()
            }
    return out


def test_tensorboard_event_files_hold_every_csv_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = _tracked_config(tmp_path, ["tensorboard"])
    assert (
        run_cli(["train", "--config", str(write_config(tmp_path, config)), "--quiet"], capsys)[0]
        == 0
    )
    run_dir = next((tmp_path / "runs" / "tiny").iterdir())
    logdir = run_dir / "tensorboard" / "runs" / run_dir.name  # named by the samrl run id
    events = EventAccumulator(str(logdir))
    events.Reload()
    expected = _csv_metrics(run_dir)
    assert {"critic_loss", "actor_sharpness", "return_mean", "hessian_critic_lambda_1"} <= set(
        expected
    )
    for metric, by_epoch in expected.items():
        scalars = events.Scalars(f"metrics/{metric}")
        # d3rlpy's TensorBoard adapter puts the epoch on the x axis; values are float32.
        assert [s.step for s in scalars] == sorted(by_epoch), metric
        for s in scalars:
            assert s.value == pytest.approx(by_epoch[s.step][1], rel=1e-6, abs=1e-30), metric


def _wandb_records(path: Path) -> Iterator[Any]:
    """The records of a .wandb file, decoded with wandb's own protobuf schema. The file is a
    leveldb log (7-byte file header, 32 KiB blocks of length-prefixed chunks); wandb >= 0.23
    no longer ships a Python reader for it."""
    from wandb.proto import wandb_internal_pb2

    raw = path.read_bytes()
    assert raw[:4] == b":W&B"
    block, header = 32768, 7
    pos, pending = header, b""
    while pos < len(raw):
        if block - pos % block < header:  # the block's tail is zero padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos : pos + header])
        data = raw[pos + header : pos + header + length]
        pos += header + length
        if kind in (2, 3):  # first / middle chunk of a record
            pending += data
            continue
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending + data)
        pending = b""
        yield record


def _read_wandb_run(path: Path) -> tuple[Any, dict[int, dict[str, Any]], dict[str, Any]]:
    run, history, config = None, {}, {}
    for record in _wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
        elif kind == "history":
            items = {
                i.key or "/".join(i.nested_key): json.loads(i.value_json)
                for i in record.history.item
            }
            history.setdefault(int(items["_step"]), {}).update(items)
        elif kind == "config":
            for i in record.config.update:
                config[i.key or "/".join(i.nested_key)] = json.loads(i.value_json)
    return run, history, config


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Recorder.requests.append(self.path)
        self.send_response(500)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        pass


def test_wandb_offline_run_holds_every_metric_and_the_config(tmp_path: Path):
    # Any request wandb made would go to this local server (WANDB_BASE_URL) and be counted.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = _tracked_config(tmp_path, ["wandb"], sweep={"name": "study", "point": {}})
    path = write_config(tmp_path, config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(
        WANDB_MODE="offline",
        WANDB_BASE_URL=f"http://127.0.0.1:{server.server_address[1]}",
        HOME=str(tmp_path / "home"),  # no ~/.netrc, no stored API key
        WANDB_CONFIG_DIR=str(tmp_path / "home" / "wandb-config"),
    )
    command = [sys.executable, "-m", "samrl", "train", "--config", str(path), "--quiet"]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        run_dir = next((tmp_path / "runs" / "tiny").iterdir())
        status = json.loads((run_dir / "status.json").read_text())
        # Resume (here: of a finished checkpoint) continues the same W&B run id.
        status["status"] = "failed"
        (run_dir / "status.json").write_text(json.dumps(status))
        again = subprocess.run(
            [*command, "--resume"], env=env, capture_output=True, text=True, timeout=300
        )
        assert again.returncode == 0, again.stderr[-2000:]
    finally:
        server.shutdown()
    assert _Recorder.requests == []
    files = sorted((run_dir / "wandb").glob("offline-run-*/*.wandb"))
    assert len(files) == 2
    run, history, wb_config = _read_wandb_run(files[0])
    assert run.display_name == run_dir.name and run.run_group == "study"
    assert _read_wandb_run(files[1])[0].run_id == run.run_id
    assert wb_config["samrl"]["optim"]["rho"] == 0.05
    assert wb_config["samrl"]["algo"]["name"] == "td3_plus_bc"
    assert wb_config["batch_size"] == 16  # d3rlpy's algorithm config beside samrl's
    expected = _csv_metrics(run_dir)
    for metric, by_epoch in expected.items():
        for epoch, (step, value) in by_epoch.items():
            assert history[step][metric] == pytest.approx(value, rel=1e-12), metric
            assert history[step]["epoch"] == epoch


def test_a_missing_tracker_package_is_one_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import samrl.run.trackers

    monkeypatch.setitem(samrl.run.trackers.REQUIRED_MODULE, "wandb", "samrl_no_such_module")
    path = write_config(tmp_path, tiny_config(tmp_path, output={"loggers": ["file", "wandb"]}))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "output.loggers" in str(error.value) and "samrl[wandb]" in str(error.value)
    path = write_config(tmp_path, tiny_config(tmp_path, output={"loggers": ["mlflow"]}))
    with pytest.raises(ConfigError, match="unknown logger 'mlflow'"):
        load_config(path)
