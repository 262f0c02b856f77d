#!/usr/bin/env bash
# Reproduce one study: run a sweep file, then write the sweep's report (tables and figures).
#
#   scripts/reproduce.sh SWEEP_FILE SWEEP_DIR [samrl sweep options...]
#   scripts/reproduce.sh configs/sweeps/smoke.yaml runs/sweeps/smoke --jobs 2
#
# A sweep exits 1 when a run failed or diverged: the report is written regardless (it counts
# them). Any other sweep exit status (a user error: 2, an interrupt) stops here.
set -euo pipefail
if [[ $# -lt 2 ]]; then
    sed -n '2,8p' "$0" >&2
    exit 2
fi
BIN=${BIN:-.venv/bin}
sweep_file=$1
sweep_dir=$2
shift 2
status=0
"$BIN/samrl" sweep "$sweep_file" "$@" || status=$?
if [[ $status -ne 0 && $status -ne 1 ]]; then
    exit "$status"
fi
"$BIN/samrl" report "$sweep_dir"
