#!/bin/sh
# Train the built-in cars64 generator on the cars gan-train split, or resume it: rerunning continues
# exactly from the latest snapshot. A new run directory starts from checkpoints/cars64-latest (the
# last session's weights: G, G_ema and D, committed because runs/ does not outlive a machine) or, if
# that is missing, from the shipped cars64 (--init-from: fresh optimiser state), so no machine change
# loses the progress that was committed. Run it in the background:
#   nohup sh scripts/train-cars64.sh >> /work/runs/cars64/train.log 2>&1 &
# Before the machine goes, commit the run's last snapshot as the next start (weights only, ~17 MB):
#   .venv/bin/ganfactory import-checkpoint --weights-only "$RUN/snapshots/$(ls "$RUN/snapshots" | tail -1)" \
#       checkpoints/cars64-latest
# Needs the split: ganfactory cars build --split gan-train --res 64 --out /work/data/cars64/gan-train
# Extra arguments go to train-gan, e.g. `--threads 1 --channels-last` while other work shares the CPU
# (benchmarks/train.py: two threads on two busy cores are many times slower than one).
set -eu
DATA=${DATA:-/work/data/cars64/gan-train}
RUN=${RUN:-/work/runs/cars64}
KIMG=${KIMG:-1500}
mkdir -p "$RUN"
LATEST=checkpoints/cars64-latest
[ -d "$LATEST" ] || LATEST=cars64
START="--init-from ${INIT_FROM:-$LATEST}"
if [ -f "$RUN/latest.json" ]; then
    START="--resume"
fi
exec .venv/bin/ganfactory train-gan --data "$DATA" --out "$RUN" --preset cpu64 --kimg "$KIMG" \
    --snapshot-kimg 10 --mirror --no-progress $START "$@"
