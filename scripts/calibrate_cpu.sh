#!/usr/bin/env bash
# Step times of the CPU study's run shapes (docs/study.md), one `ant bench` per (size, batch) with every
# architecture interleaved in one process, single-threaded as the local executor runs tiny models. The sweep
# planner reads results/bench/calibration/*.json for its time estimates (ant/sweep/plan.py). Run it on a quiet
# machine: ~3 minutes on the project's 2-core box.
set -euo pipefail
cd "$(dirname "$0")/.."
ANT=${ANT:-.venv/bin/ant}
OUT=results/bench/calibration
mkdir -p "$OUT"
for size in tiny0 tiny1 tiny2 tiny3; do
  batches="2 4 8 16"
  case $size in tiny0 | tiny1) batches="1 $batches" ;; esac
  for batch in $batches; do
    archs="gptplus angpt"
    [ "$size" = tiny2 ] && [ "$batch" = 8 ] && archs="gptplus angpt gpt ngpt"
    # shellcheck disable=SC2086
    "$ANT" bench --archs $archs --size "$size" --batch "$batch" --seq-len 128 --vocab-size 256 --threads 1 \
      --steps 24 --reps 3 --warmup 3 --lightning --out "$OUT/cpu-$size-b$batch.json" | grep -v "^block\|^warm-up"
  done
done
