"""Whole-process training speed: `samrl train` with its defaults against a plain d3rlpy `fit`.

The comparison a user makes: the same Hopper-shaped data (a D4RL-layout file of random
transitions, 11-dim observations, 3-dim actions), the same algorithm (d3rlpy's defaults:
256-256 networks; batch 256), the same number of updates, each side run as a whole process
with its own defaults:

- stock: a script that reads the file, builds d3rlpy's MDPDataset and calls `fit` with
  d3rlpy's defaults (log files, progress bar, model file; torch's default threads, one per
  core), in a scratch working directory;
- samrl: `python -m samrl train` on a config naming the file (Adam, no evaluation, one epoch,
  `train.threads` left at its default `auto`);
- samrl threads 1 / threads 2: the same with a fixed count (the best fixed count is what `auto`
  should come near).

Start-up (imports, reading the file, building, writing) is cancelled: each variant runs once
with `--long` and once with `--short` updates, and the time per update is the difference of
the two wall times over the difference of the step counts. Variants run in interleaved rounds
(the order rotates from round to round, so machine noise hits all alike); printed per
algorithm are each variant's median ms per update with its range over rounds, the speed-up
against stock (median over rounds of the per-round ratio) and against the best fixed count,
and the load average before and after. `--busy` runs one more process beside the whole
benchmark: a second `samrl train` (TD3+BC, `threads: 1`, as a sweep's worker would) on the
same data, restarted whenever it ends, stopped at the end. No assertion: the table is for the
README's *Speed* section (issue 33's targets: samrl's defaults >= 1.2x stock on TD3+BC and
IQL, >= 1.8x on BC, and within 1.1x of the best fixed count, idle and busy). Beside a busy
process a two-thread run can take seconds per update (a second thread that has to share a core
waits at every barrier): `--cap S` kills a long run after S seconds and shows its variant as
slower than S / --long, and `--no-stock` leaves out stock d3rlpy, whose default is two threads.

    .venv/bin/python benchmarks/bench_train.py                     # idle cores, 6 rounds
    .venv/bin/python benchmarks/bench_train.py --busy --no-stock --cap 60  # beside a busy one
    .venv/bin/python benchmarks/bench_train.py --algos bc --rounds 1 --long 40 --short 20  # smoke
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import yaml
from _common import (
    STOCK_FIT,
    load_average,
    markdown_header,
    markdown_row,
    median_ratio,
    run_child,
    write_d4rl_file,
)

from samrl.data.provenance import fingerprint

OBS_DIM, ACT_DIM, BATCH = 11, 3, 256
#: samrl's algorithm name -> d3rlpy's config class (the stock script's)
ALGORITHMS = {"td3_plus_bc": "TD3PlusBCConfig", "iql": "IQLConfig", "bc": "BCConfig"}
#: variant -> samrl's train.threads (None: the stock d3rlpy script; "default": key left out)
VARIANTS: dict[str, int | str | None] = {
    "stock": None,
    "samrl": "default",
    "threads 1": 1,
    "threads 2": 2,
}


def samrl_config(folder: Path, data: Path, algo: str, steps: int, threads: int | str) -> Path:
    """A `samrl train` config of `steps` Adam updates in one epoch, no evaluation; `threads`
    "default" leaves train.threads out (samrl's default applies)."""
    train: dict[str, object] = {
        "n_steps": steps,
        "n_steps_per_epoch": steps,
        "eval_episodes": 0,
        "device": "cpu",
    }
    if threads != "default":
        train["threads"] = threads
    name = f"{algo}_{steps}_{threads}"
    config = {
        "name": name,
        "algo": {"name": algo, "params": {"batch_size": BATCH}},
        "dataset": {"name": f"file:{data}"},
        "optim": {"name": "adam"},
        "train": train,
        "output": {"dir": str(folder / "runs")},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def command(folder: Path, data: Path, algo: str, variant: str, steps: int) -> list[str]:
    """The child process that runs `variant` of `algo` for `steps` updates."""
    threads = VARIANTS[variant]
    if threads is None:
        return [sys.executable, "-c", STOCK_FIT, str(data), ALGORITHMS[algo], str(BATCH),
                str(steps), "defaults"]  # fmt: skip
    config = samrl_config(folder, data, algo, steps, threads)
    return [sys.executable, "-m", "samrl", "train", "--config", str(config), "--quiet",
            "--overwrite"]  # fmt: skip


def per_update(
    folder: Path, data: Path, algo: str, variant: str, long: int, short: int, cap: float | None
) -> float:
    """Seconds per update of one variant: (long run - short run) / (long - short) steps, the
    two runs back to back, so start-up and the per-epoch work cancel. Infinite when the long
    run outlasts `cap` seconds (killed; the table then shows the bound cap / long)."""
    scratch = folder / "cwd"  # d3rlpy's log and model files land here
    scratch.mkdir(exist_ok=True)
    _, t_long = run_child(command(folder, data, algo, variant, long), cwd=scratch, timeout=cap)
    if math.isinf(t_long):
        return math.inf
    _, t_short = run_child(command(folder, data, algo, variant, short), cwd=scratch)
    return (t_long - t_short) / (long - short)


def interleaved(
    folder: Path,
    data: Path,
    algo: str,
    rounds: int,
    long: int,
    short: int,
    stock: bool = True,
    cap: float | None = None,
) -> dict[str, list[float]]:
    """Seconds per update of every variant (all but stock's unless `stock`), one measurement
    per round, order rotating."""
    order = [v for v in VARIANTS if stock or VARIANTS[v] is not None]
    times: dict[str, list[float]] = {v: [] for v in order}
    for r in range(rounds):
        for variant in order[r % len(order) :] + order[: r % len(order)]:
            times[variant].append(per_update(folder, data, algo, variant, long, short, cap))
            print(f"  {algo} round {r + 1} {variant}: {1e3 * times[variant][-1]:.2f} ms/update",
                  file=sys.stderr, flush=True)  # fmt: skip
    return times


def threads_chosen(folder: Path, algo: str, long: int) -> str:
    """What status.json says `auto` did in the last long default run (adapted or fixed, why)."""
    runs = folder / "runs" / f"{algo}_{long}_default"
    statuses = sorted(runs.glob("*/status.json"))
    return json.loads(statuses[-1].read_text()).get("threads", "?") if statuses else "?"


def table_rows(algo: str, times: Mapping[str, Sequence[float]], bound: float) -> list[str]:
    """One markdown row per variant: median ms/update, its range, speed-up vs stock, and
    time against the best fixed count (medians). A run killed at the cap counts as infinite
    and shows as "> bound" (seconds per update that it exceeded)."""

    def ms(value: float) -> str:
        return f"> {1e3 * bound:.0f}" if math.isinf(value) else f"{1e3 * value:.2f}"

    def ratio(value: float) -> str:
        return "–" if math.isinf(value) or math.isnan(value) else f"{value:.2f}"

    medians = {v: statistics.median(t) for v, t in times.items()}
    best_fixed = min(medians["threads 1"], medians["threads 2"])
    rows = []
    for variant, t in times.items():
        speed_up = median_ratio(times["stock"], t) if "stock" in times else math.nan
        rows.append(
            markdown_row(
                algo,
                variant,
                ms(medians[variant]),
                ms(min(t)) if min(t) == max(t) else f"{ms(min(t))}-{ms(max(t))}",
                f"{ratio(speed_up)}x" if "stock" in times else "–",
                ratio(medians[variant] / best_fixed),
            )
        )
    return rows


@contextmanager
def busy_process(folder: Path, data: Path, busy: bool) -> Iterator[None]:
    """With `busy`: one more training (TD3+BC, threads 1, long enough to outlast a round)
    restarted whenever it ends, killed on exit. Without: nothing."""
    if not busy:
        yield
        return
    config = samrl_config(folder, data, "td3_plus_bc", 10**7, 1)
    loop = (
        "import subprocess, sys\n"
        "while True:\n"
        f"    subprocess.run([sys.executable, '-m', 'samrl', 'train', '--config', {str(config)!r},"
        " '--quiet', '--overwrite'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", loop], start_new_session=True)
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the loop and the training it started
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=list(ALGORITHMS), choices=list(ALGORITHMS))
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds (>= 6)")
    parser.add_argument("--long", type=int, default=2000, help="updates in the long runs")
    parser.add_argument("--short", type=int, default=150, help="updates in the short runs")
    parser.add_argument("--size", type=int, default=100_000, help="transitions in the data")
    parser.add_argument("--busy", action="store_true", help="one busy training beside")
    parser.add_argument(
        "--beside",
        default="",
        help="a busy process you started yourself (its description is printed; nothing is "
        "started), e.g. a behaviour-policy training: the --busy measurement without the "
        "cost of a stand-in",
    )
    parser.add_argument(
        "--cap",
        type=float,
        default=None,
        help="seconds a long run may take; one that takes longer is killed and shown as slower "
        "than cap / --long per update (a two-thread run beside a busy process can take minutes)",
    )
    parser.add_argument(
        "--no-stock",
        action="store_true",
        help="leave stock d3rlpy out: beside a busy process its two-thread fit can take "
        "seconds per update, and the targets there compare the default with the fixed counts",
    )
    args = parser.parse_args()
    if args.long <= args.short:
        parser.error("--long must exceed --short")
    if args.busy and args.beside:
        parser.error("--busy starts a busy process; --beside names one already running: not both")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "hopper_shaped.hdf5"
        write_d4rl_file(data, args.size, OBS_DIM, ACT_DIM)
        fingerprint(data)  # samrl hashes a file once, on its first run: not timed
        with busy_process(folder, data, args.busy):
            print(
                f"{args.size} Hopper-shaped transitions, batch {BATCH}, d3rlpy's default "
                f"(256-256) networks, {args.long} vs {args.short} updates per process, "
                f"{args.rounds} interleaved rounds, busy process beside: "
                f"{args.beside or ('a TD3+BC samrl train' if args.busy else 'none')}; "
                f"load average before: {load_average()}\n",
                flush=True,
            )
            results = {
                a: interleaved(folder, data, a, args.rounds, args.long, args.short,
                               stock=not args.no_stock, cap=args.cap)
                for a in args.algos
            }  # fmt: skip
            load_after = load_average()
        columns = ["algorithm", "variant", "ms/update (median)", "range", "speed-up vs stock",
                   "time / best fixed count"]  # fmt: skip
        print(markdown_header(columns, "llrrrr"))
        for algo, times in results.items():
            bound = (args.cap or math.inf) / args.long
            print("\n".join(table_rows(algo, times, bound)))
        for algo in args.algos:
            print(f"\n{algo}: samrl's default chose: {threads_chosen(folder, algo, args.long)}")
        print(f"\nload average after: {load_after}")


if __name__ == "__main__":
    main()
