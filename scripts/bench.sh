#!/usr/bin/env bash
# Every benchmark in benchmarks/ (each prints interleaved ratios and the load average).
#
#   scripts/bench.sh            # all of them
#   scripts/bench.sh sam loop   # benchmarks/bench_sam.py and benchmarks/bench_loop.py
set -euo pipefail
BIN=${BIN:-.venv/bin}
if [[ $# -eq 0 ]]; then
    files=(benchmarks/bench_*.py)
else
    files=()
    for name in "$@"; do files+=("benchmarks/bench_$name.py"); done
fi
for file in "${files[@]}"; do
    echo "== $file"
    "$BIN/python" "$file"
done
