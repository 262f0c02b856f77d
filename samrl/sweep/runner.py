"""A sweep end to end: validate every run, decide what to run, launch, summarize, report."""

from __future__ import annotations

import collections
import dataclasses
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from samrl.config.launchers import LocalLauncher, SlurmLauncher
from samrl.results.aggregate import summarize_sweep
from samrl.rundir import AGGREGATE_FILE, SUMMARY_FILE, SWEEP_RUNS_DIR, SweepDir
from samrl.status import FAILED_STATUSES, RunState, RunStatus
from samrl.sweep import state
from samrl.sweep.grid import RunPlan, SweepSpec, expand, matches, point_text
from samrl.sweep.local import run_local
from samrl.sweep.ray_launcher import run_ray
from samrl.sweep.slurm import run_slurm
from samrl.sweep.worker import Job, Outcome, forwarded_env

Echo = Callable[[str], None]
SKIP_WORDS = {
    RunState.COMPLETED: "already completed",
    RunState.FAILED: "failed earlier",
    RunState.DIVERGED: "diverged earlier",
    RunState.CHANGED: "with a changed config",
}
#: How runs left out by `--only` are counted in the sweep's first line.
LEFT_OUT = "left for a run without --only"


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    jobs: int = 1
    dry_run: bool = False
    retry_failed: bool = False
    overwrite: bool = False
    progress: bool = True
    #: `--only`: launch only runs whose grid point has these values (grid.parse_only_flags);
    #: the sweep directory and its tables still hold every run.
    only: dict[str, list[Any]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class SweepReport:
    """What a sweep did: the final state of every run and where the tables went."""

    sweep_dir: Path
    states: dict[str, str]  # run_id -> completed | diverged | failed | new | ...
    messages: dict[str, str]
    launched: int
    summary_written: bool
    #: Runs `--only` did not select: neither launched nor a failure of this sweep.
    left_out: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return all(
            s == RunStatus.COMPLETED for r, s in self.states.items() if r not in self.left_out
        )

    def counts(self) -> dict[str, int]:
        return dict(collections.Counter(self.states.values()).most_common())


class Progress:
    """One tqdm bar for the sweep: done / running / failed / remaining."""

    def __init__(self, name: str, total: int, enabled: bool, echo: Echo):
        self.bar = tqdm(
            total=total,
            desc=f"sweep {name}",
            unit="run",
            disable=None if enabled else True,  # None: off when stderr is not a terminal
            dynamic_ncols=True,
        )
        self.running: set[str] = set()
        self.in_queue: set[str] = set()  # only launchers that see a scheduler's queue report it
        self.total = total
        self.done = self.failed = 0
        self.enabled = enabled
        self.echo = echo
        self._refresh()

    def queued(self, run_id: str) -> None:
        """Waiting in the scheduler's queue (again, after a requeue)."""
        self.running.discard(run_id)
        self.in_queue.add(run_id)
        self._refresh()

    def started(self, run_id: str) -> None:
        self.in_queue.discard(run_id)
        self.running.add(run_id)
        self._refresh()

    def finished(self, outcome: Outcome) -> None:
        self.running.discard(outcome.run_id)
        self.in_queue.discard(outcome.run_id)
        if outcome.status == RunStatus.COMPLETED:
            self.done += 1
        else:
            self.failed += 1
            if not self.bar.disable:  # quiet sweeps list failures once, at the end
                message = f"samrl: run {outcome.run_id} {outcome.status}: {outcome.message}"
                self.bar.write(message, file=sys.stderr)
        self.bar.update(1)
        self._refresh()
        if self.enabled and self.bar.disable:
            # Output is not a terminal (a log file, a pipe, a batch job): no bar, but one line
            # per finished run, so the log says how far the sweep is.
            n = self.done + self.failed
            detail = "" if outcome.status == RunStatus.COMPLETED else f": {outcome.message}"
            self.echo(
                f"samrl: [{n}/{self.total}] {outcome.run_id} {outcome.status}{detail} "
                f"({len(self.running)} running, {self.total - n - len(self.running)} to go)"
            )

    def _refresh(self) -> None:
        remaining = self.total - self.done - self.failed - len(self.running) - len(self.in_queue)
        queued = f"queued {len(self.in_queue)}, " if self.in_queue else ""
        self.bar.set_postfix_str(
            f"{queued}running {len(self.running)}, done {self.done}, failed {self.failed}, "
            f"remaining {remaining}"
        )

    def close(self) -> None:
        self.bar.close()


# ---------------------------------------------------------------- listing


def describe_states(plans: list[RunPlan], states: dict[str, str]) -> list[str]:
    width = max((len(p.run_id) for p in plans), default=6)
    lines = [f"{'run_id':<{width}}  {'seed':>4}  {'state':<11}  point"]
    for plan in plans:
        lines.append(
            f"{plan.run_id:<{width}}  {plan.seed:>4}  {states[plan.run_id]:<11}  "
            f"{point_text(plan.point)}"
        )
    return lines


def count_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def selected(
    plans: list[RunPlan], states: dict[str, str], retry_failed: bool, only: dict[str, list[Any]]
) -> set[str]:
    """The runs to launch: new and interrupted ones (and failed ones with --retry-failed)
    among those `--only` selects."""
    wanted = {RunState.NEW, RunState.INTERRUPTED} | (
        set(FAILED_STATUSES) if retry_failed else set()
    )
    return {p.run_id for p in plans if states[p.run_id] in wanted and matches(p, only)}


def skip_counts(
    plans: list[RunPlan], states: dict[str, str], todo_ids: set[str], only: dict[str, list[Any]]
) -> dict[str, int]:
    """Why the runs not launched are not: their state, or `--only` leaving them out."""
    words = (
        SKIP_WORDS.get(states[p.run_id], states[p.run_id] if matches(p, only) else LEFT_OUT)
        for p in plans
        if p.run_id not in todo_ids
    )
    return dict(collections.Counter(words).most_common())


# ---------------------------------------------------------------- running


def prepare_datasets(plans: list[RunPlan], echo: Echo, progress: bool) -> None:
    """Generate each built-in dataset and download each named remote one (d4rl:, d3rlpy:,
    minari:) once, here in the driver, before any run starts: runs then share the file, and
    Slurm/Ray workers never download or race on it."""
    from samrl.data import BUILTINS, describe_dataset, ensure_builtin
    from samrl.data.builtin import cache_path
    from samrl.data.sources import fetch_named

    seen: set[tuple[str, Any, int]] = set()
    fetched: set[str] = set()
    for plan in plans:
        ds = plan.config.dataset
        key = (ds.name, ds.size, ds.seed)
        kind = describe_dataset(ds.name).kind
        if kind in ("d4rl", "d3rlpy", "minari") and ds.name not in fetched:
            fetched.add(ds.name)
            fetch_named(ds.name, progress=progress)
        if key in seen or kind != "builtin":
            continue
        seen.add(key)
        builtin = BUILTINS[ds.name]
        size = ds.size or builtin.default_size
        if not builtin.is_mujoco and cache_path(builtin, size, ds.seed).exists():
            continue
        echo(f"samrl: preparing dataset {ds.name} ({size} steps, seed {ds.seed})")
        ensure_builtin(builtin, size=ds.size, seed=ds.seed, progress=progress)


def _jobs(sweep_dir: Path, plans: list[RunPlan]) -> list[Job]:
    folder = SweepDir(sweep_dir)
    return [
        Job(p.run_id, folder.config_file(p.run_id), p.run_dir, folder.log_file(p.run_id))
        for p in plans
    ]


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (e.g. a batch system ending the sweep) interrupts like Ctrl-C: children are
    stopped and record their state."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def launch(
    spec: SweepSpec,
    sweep_dir: Path,
    plans: list[RunPlan],
    options: SweepOptions,
    progress: Progress,
    echo: Echo,
) -> list[Outcome]:
    jobs = _jobs(sweep_dir, plans)
    launcher = spec.launcher
    if isinstance(launcher, LocalLauncher):
        timeout = launcher.timeout_min
        return run_local(
            jobs,
            n_jobs=options.jobs,
            monitor=progress,
            timeout_s=None if timeout is None else 60.0 * timeout,
        )
    if isinstance(launcher, SlurmLauncher):
        return run_slurm(
            jobs,
            folder=SweepDir(sweep_dir).slurm_dir,
            options=launcher,
            name=spec.name,
            n_jobs=options.jobs,
            monitor=progress,
            env=forwarded_env(),
            echo=progress.bar.write if not progress.bar.disable else echo,
        )

    return run_ray(jobs, options=launcher, monitor=progress, env=forwarded_env())


def run_sweep(spec: SweepSpec, options: SweepOptions, echo: Echo = print) -> SweepReport:
    """Validate, (dry-)run and summarize a sweep; failing runs never stop the others."""
    plans = expand(spec)
    sweep_dir = spec.directory
    record = state.sweep_record(spec, plans)
    if options.dry_run:
        return _dry_run(spec, plans, record, options, echo)
    with state.sweep_lock(sweep_dir):
        if options.overwrite:
            state.clear_sweep(sweep_dir)
        else:
            state.check_compatible(sweep_dir, record)
        state.write_sweep(sweep_dir, record, plans)
        states = {p.run_id: state.run_state(p) for p in plans}
        messages = _earlier_messages(plans, states)
        todo = _to_run(spec, plans, states, options, echo)
        interrupted = False
        if todo:
            prepare_datasets(todo, echo, options.progress)
            progress = Progress(spec.name, len(todo), options.progress, echo)
            try:
                with _sigterm_as_interrupt():
                    outcomes = launch(spec, sweep_dir, todo, options, progress, echo)
            except KeyboardInterrupt:
                interrupted = True
                outcomes = []
            finally:
                progress.close()
            for outcome in outcomes:
                states[outcome.run_id] = outcome.status
                messages[outcome.run_id] = outcome.message
            if interrupted:
                for plan in todo:
                    if plan.run_id not in {o.run_id for o in outcomes}:
                        states[plan.run_id] = state.run_state(plan)
        written = _summarize(sweep_dir, echo)
        left_out = frozenset(p.run_id for p in plans if not matches(p, options.only))
        report = SweepReport(sweep_dir, states, messages, len(todo), written, left_out)
        if interrupted:
            echo(final_line(spec.name, report, prefix="interrupted; "))
            raise KeyboardInterrupt
        return report


def _dry_run(
    spec: SweepSpec, plans: list[RunPlan], record: dict[str, Any], options: SweepOptions, echo: Echo
) -> SweepReport:
    """List every run and its state, and what a real run would do; change nothing."""
    sweep_dir = spec.directory
    if not options.overwrite:
        state.check_compatible(sweep_dir, record)
    states = {p.run_id: RunState.NEW if options.overwrite else state.run_state(p) for p in plans}
    for line in describe_states(plans, states):
        echo(line)
    todo = selected(plans, states, options.retry_failed, options.only)
    echo(
        f"samrl: dry run of sweep {spec.name}: {len(plans)} runs "
        f"({count_text(dict(collections.Counter(states.values())))}); would run {len(todo)} "
        f"in {sweep_dir} with the {spec.launcher.type} launcher"
    )
    return SweepReport(sweep_dir, states, {}, 0, False)


def _earlier_messages(plans: list[RunPlan], states: dict[str, str]) -> dict[str, str]:
    """Why runs that will not run again stopped earlier (failed, diverged, changed config)."""
    messages = {p.run_id: state.run_error(p) for p in plans if states[p.run_id] in FAILED_STATUSES}
    for plan in plans:
        if states[plan.run_id] == RunState.CHANGED:
            messages[plan.run_id] = (
                f"{plan.run_dir} was made with a different config; not resumed "
                "(--overwrite starts the sweep again)"
            )
    return messages


def _to_run(
    spec: SweepSpec,
    plans: list[RunPlan],
    states: dict[str, str],
    options: SweepOptions,
    echo: Echo,
) -> list[RunPlan]:
    """The runs to launch (failed ones retried are cleared first), said in one line, and a
    line for each failed run left alone."""
    todo_ids = selected(plans, states, options.retry_failed, options.only)
    todo = [p for p in plans if p.run_id in todo_ids]
    for plan in todo:
        if states[plan.run_id] in FAILED_STATUSES:
            state.clear_run(plan)  # retried from the start
    skipped = ", ".join(
        f"{n} {word}" for word, n in skip_counts(plans, states, todo_ids, options.only).items()
    )
    echo(
        f"samrl: sweep {spec.name}: {len(plans)} runs, {len(todo)} to run"
        + (f"; {skipped}" if skipped else "")
        + f" in {spec.directory}"
    )
    for run_id in sorted(r for r, s in states.items() if s in FAILED_STATUSES):
        if run_id not in todo_ids:
            echo(f"samrl: run {run_id} {states[run_id]} earlier (--retry-failed runs it again)")
    return todo


def _summarize(sweep_dir: Path, echo: Echo) -> bool:

    try:
        summarize_sweep(sweep_dir)
    except Exception as exc:  # the runs are what matters; a summary can be rebuilt
        echo(f"samrl: warning: could not summarize {sweep_dir}: {type(exc).__name__}: {exc}")
        return False
    return True


def final_line(name: str, report: SweepReport, prefix: str = "") -> str:
    where = (
        f"{SUMMARY_FILE} and {AGGREGATE_FILE} in {report.sweep_dir}"
        if report.summary_written
        else f"runs in {report.sweep_dir / SWEEP_RUNS_DIR} (no summary)"
    )
    return (
        f"samrl: sweep {name}: {prefix}{len(report.states)} runs: "
        f"{count_text(report.counts())}; {where}"
    )


def print_failures(report: SweepReport, echo: Echo) -> None:
    for run_id, status in report.states.items():
        if status != RunStatus.COMPLETED and run_id not in report.left_out:
            message = report.messages.get(run_id) or ""
            echo(f"  {status:<11} {run_id}" + (f": {message}" if message else ""))


def exit_code(report: SweepReport) -> int:
    return 0 if report.ok else 1
