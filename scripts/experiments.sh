#!/usr/bin/env bash
# The training experiments behind docs/results.md, in order (CPU: about 1.5 hours on 2 cores).
#   scripts/experiments.sh DATA_DIR RUNS_DIR
set -euo pipefail
data=${1:-../shared/data/mitdb}
runs=${2:-runs/experiments}
mkdir -p "$runs"
e() { echo "+ $*" >&2; "$@"; }
train_eval() {  # NAME SET [train options...]
  local name=$1 set=$2; shift 2
  if [ ! -f "$runs/$name/metrics.json" ]; then
    local resume=""
    [ -f "$runs/$name/config.json" ] && resume="--resume"
    e ecgedge train "$@" --data-dir "$data" -o "$runs/$name" $resume
    e ecgedge evaluate "$runs/$name" --split "$set" --json > "$runs/$name/evaluate.json"
  fi
}
# Leakage study: same model, preset and number of training beats (11,389), two protocols.
train_eval quick-inter DS2 --preset quick --split inter-patient
train_eval quick-intra test --preset quick --split intra-patient --train-fraction 0.4697
# Transfer vs scratch with genuine ImageNet weights (EfficientNet-Lite0), small DS1 fractions.
for frac in 0.01 0.1; do
  for w in imagenet none; do
    train_eval "lite0-$w-$frac" DS2 --preset edge --arch efficientnet_lite0 --weights $w --train-fraction $frac --epochs 10
  done
done
# RR intervals as a second input.
train_eval quick-inter-rr DS2 --preset quick --split inter-patient --rr
