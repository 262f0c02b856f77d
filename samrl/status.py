"""The names of a run's states, in one place.

Each is an `enum.StrEnum`: a member *is* its string, so status.json, summary.csv and the sweep's
messages keep exactly the bytes they had when these were plain strings, and a value read back
from disk compares equal to its member.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """A run's status: status.json's `status`, a launcher's outcome, `samrl train`'s result."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    #: Never written: what `RunDir.read_status` reports for a run without a status file yet,
    PENDING = "pending"
    #: ... or with an unreadable one.
    UNKNOWN = "unknown"
    #: Never written: `samrl train`'s result for a run it found completed already.
    SKIPPED = "skipped"


#: How a launched run can end (a launcher's Outcome).
OUTCOME_STATUSES = (
    RunStatus.COMPLETED,
    RunStatus.DIVERGED,
    RunStatus.FAILED,
    RunStatus.INTERRUPTED,
)
#: A run that ended with a result a sweep does not repeat unless asked (`--retry-failed`).
FAILED_STATUSES = (RunStatus.FAILED, RunStatus.DIVERGED)
#: Runs that have not finished (counted apart from failures in aggregate.csv).
UNFINISHED_STATUSES = (RunStatus.RUNNING, RunStatus.PENDING, RunStatus.INTERRUPTED)


class RunState(StrEnum):
    """A sweep's view of one run before launching it: which ones it runs, skips or reports."""

    NEW = "new"
    INTERRUPTED = "interrupted"
    COMPLETED = "completed"
    FAILED = "failed"
    DIVERGED = "diverged"
    #: The run directory holds a run of another config (its hash differs).
    CHANGED = "changed"


class Preparation(StrEnum):
    """What `samrl.rundir.prepare_run_dir` found: start afresh, resume a checkpoint, or nothing
    to do (the run completed already)."""

    NEW = "new"
    RESUME = "resume"
    DONE = "done"
