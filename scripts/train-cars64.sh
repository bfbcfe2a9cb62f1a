#!/bin/sh
# Train the built-in cars64 generator on the cars gan-train split, or resume it: rerunning continues
# exactly from the latest snapshot. A new run directory resumes exactly from checkpoints/cars64-latest,
# the last session's snapshot with its optimiser and random state, committed because runs/ does not
# outlive a machine (a restart with fresh Adam state cost more than 20 kimg: docs/cars64); without it,
# from the shipped cars64 weights (--init-from: fresh optimiser state). Run it in the background:
#   nohup sh scripts/train-cars64.sh >> /work/runs/cars64/train.log 2>&1 &
# Before the machine goes, commit the run's last snapshot as the next start (~39 MB):
#   rm -rf checkpoints/cars64-latest && cp -r "$RUN/snapshots/$(ls "$RUN/snapshots" | tail -1)" \
#       checkpoints/cars64-latest
# Needs the split (the same bytes on any machine, so the resume is exact):
#   ganfactory cars build --split gan-train --res 64 --out /work/data/cars64/gan-train
# Extra arguments go to train-gan, e.g. `--threads 1 --channels-last` while other work shares the CPU
# (benchmarks/train.py: two threads on two busy cores are many times slower than one).
set -eu
DATA=${DATA:-/work/data/cars64/gan-train}
RUN=${RUN:-/work/runs/cars64}
KIMG=${KIMG:-1500}
mkdir -p "$RUN"
if [ -f "$RUN/latest.json" ]; then
    START="--resume"
elif [ -n "${INIT_FROM:-}" ]; then
    START="--init-from $INIT_FROM"
elif [ -d checkpoints/cars64-latest ]; then
    START="--resume checkpoints/cars64-latest"
else
    START="--init-from cars64"
fi
exec .venv/bin/ganfactory train-gan --data "$DATA" --out "$RUN" --preset cpu64 --kimg "$KIMG" \
    --snapshot-kimg 10 --mirror --no-progress $START "$@"
