#!/usr/bin/env bash
# The CUDA checks issue #11 asks for, as one script for a machine with an NVIDIA GPU.
# Not yet run on a GPU: no session so far was lent one (see the README's "Known limits").
#
#   scripts/gpu-checks.sh prepare       # here, where PyPI is reachable: samrl's dependencies
#                                       # that a CUDA image lacks, as wheels in .gpu/wheels
#   scripts/gpu-checks.sh run OUT       # there (offline): install them beside the image's
#                                       # CUDA torch (python3), then `checks OUT`
#   scripts/gpu-checks.sh checks OUT    # the checks alone, with whatever python3 has
#
# Through the device tool: prepare here, then run(command="scripts/gpu-checks.sh run $OUT",
# carry=[".gpu"], timeout_s=600): .gpu is git-ignored, so it travels only when carried.
# Tried here end to end on the CPU (GPU_CHECKS_DEVICE=cpu) in a fresh venv holding only what a
# CUDA image has: 85 s with GPU_CHECKS_ALGOS=bc GPU_CHECKS_ROUNDS=1.
#
# The checks, each writing its output under OUT (about 5 minutes on one GPU, estimated):
#   1. device selection: `train.device: auto` picks cuda:0, and the demo trains there;
#   2. SAM on CUDA without compile_graph trains; with `compile_graph: true` it is refused in one
#      line with exit status 2 (the two-pass step is not verified with CUDA graphs);
#   3. loop speed on CUDA: benchmarks/bench_loop.py --device cuda:0, Adam, SAM and the probe
#      against stock d3rlpy, without and with compile_graph.
# GPU_CHECKS_DEVICE=cpu runs the same checks on the CPU (to try the script without a GPU);
# GPU_CHECKS_ALGOS and GPU_CHECKS_ROUNDS shorten step 3.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEVICE=${GPU_CHECKS_DEVICE:-cuda:0}
WHEELS=.gpu/wheels
# What samrl needs beyond a CUDA PyTorch image (torch, numpy, scipy, pandas, matplotlib, h5py,
# click, pyyaml, tqdm, requests, imageio, filelock are there), at the versions samrl's .venv
# has (`prepare` reads them from it).
PACKAGES=(d3rlpy gymnasium farama-notifications gym gym-notices structlog colorama
          dataclasses-json marshmallow submitit)

prepare() {
    mkdir -p "$WHEELS"
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude
    local bin=${BIN:-.venv/bin} pinned=() name version
    for name in "${PACKAGES[@]}"; do
        version=$("$bin/python" -c "import importlib.metadata as m, sys; \
print(m.version(sys.argv[1]))" "$name") || return 1
        pinned+=("$name==$version")
    done
    # pure-Python packages (gym 0.26.2 exists only as a source archive): any Python will do
    rm -rf "$WHEELS" && mkdir -p "$WHEELS"
    "$bin/pip" download --no-deps -d "$WHEELS" "${pinned[@]}"
    du -sh "$WHEELS"
}

install() {
    "$PY" -m pip install --no-index --no-deps --no-build-isolation "$WHEELS"/* &&
        "$PY" -m pip install --no-index --no-deps --no-build-isolation -e .
}

checks() {
    local out=$1 rc=0
    mkdir -p "$out"
    export PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu.txt"
    "$PY" -c "import torch, d3rlpy; print('torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), torch.version.cuda, 'd3rlpy', d3rlpy.__version__)" | tee -a "$out/gpu.txt"

    echo "== 1. device selection: train.device auto, then $DEVICE explicitly"
    local demo=(train --config configs/demo.yaml --overwrite --set train.n_steps=800
                --set train.n_steps_per_epoch=400 --set train.eval_episodes=2)
    "$PY" -m samrl "${demo[@]}" --set train.device=auto --set output.dir="$out/auto" \
        > "$out/1_auto.log" 2>&1 || rc=1
    "$PY" - "$out/auto" "$DEVICE" <<'EOF' || rc=1
import pathlib, sys, yaml
(config,) = pathlib.Path(sys.argv[1]).glob("demo/*/config.yaml")
device = yaml.safe_load(config.read_text())["train"]["device"]
print(f"train.device auto resolved to {device}; expected {sys.argv[2]}")
sys.exit(0 if device == sys.argv[2] else 1)
EOF

    echo "== 2. SAM on $DEVICE without compile_graph, then with it (refused, exit 2)"
    local start=$SECONDS
    "$PY" -m samrl "${demo[@]}" --set train.device="$DEVICE" \
        --set output.dir="$out/sam" > "$out/2_sam.log" 2>&1 || rc=1
    echo "$(tail -1 "$out/2_sam.log") ($((SECONDS - start)) s)"
    "$PY" -m samrl "${demo[@]}" --set train.device="$DEVICE" --set algo.params.compile_graph=true \
        --set output.dir="$out/graph" > "$out/2_graph.log" 2>&1
    local graph_rc=$?
    echo "compile_graph: true -> exit $graph_rc: $(tail -1 "$out/2_graph.log")"
    if [[ $DEVICE == cuda* && $graph_rc != 2 ]]; then rc=1; fi

    echo "== 3. loop speed on $DEVICE (Adam, SAM, probe against stock d3rlpy)"
    local algos=(${GPU_CHECKS_ALGOS:-bc td3_plus_bc iql cql sac dqn discrete_cql})
    local rounds=${GPU_CHECKS_ROUNDS:-5}
    "$PY" benchmarks/bench_loop.py --device "$DEVICE" --algos "${algos[@]}" --rounds "$rounds" \
        2>&1 | grep -v -i gym | tee "$out/3_loop.md" || rc=1
    "$PY" benchmarks/bench_loop.py --device "$DEVICE" --algos "${algos[@]}" --rounds "$rounds" \
        --compile-graph 2>&1 | grep -v -i gym | tee "$out/3_loop_graph.md" || rc=1
    if [[ -z ${GPU_CHECKS_ALGOS:-} ]]; then
        "$PY" benchmarks/bench_loop.py --device "$DEVICE" --algos decision_transformer \
            --rounds 3 --block 4 2>&1 | grep -v -i gym | tee "$out/3_loop_dt.md" || rc=1
    fi
    echo "gpu-checks: exit $rc; outputs in $out"
    return $rc
}

case "${1:-}" in
    prepare) prepare ;;
    install) install ;;
    run) install && checks "${2:?an output folder}" ;;
    checks) checks "${2:?an output folder}" ;;
    *) sed -n '2,24p' "$0"; exit 2 ;;
esac
