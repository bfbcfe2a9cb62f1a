#!/bin/sh
# Train the built-in cars64 generator on the cars gan-train split, or resume it: rerunning continues
# exactly from the latest snapshot. A new run directory starts from the shipped cars64 weights
# (--init-from cars64: G_ema and D, fresh optimiser state), so no machine change loses the progress
# that was shipped. Run it in the background:
#   nohup sh scripts/train-cars64.sh >> /work/runs/cars64/train.log 2>&1 &
# Needs the split: ganfactory cars build --split gan-train --res 64 --out /work/data/cars64/gan-train
# Extra arguments go to train-gan, e.g. `--threads 1 --channels-last` while other work shares the CPU
# (benchmarks/train.py: two threads on two busy cores are many times slower than one).
set -eu
DATA=${DATA:-/work/data/cars64/gan-train}
RUN=${RUN:-/work/runs/cars64}
KIMG=${KIMG:-1500}
mkdir -p "$RUN"
START="--init-from ${INIT_FROM:-cars64}"
if [ -f "$RUN/latest.json" ]; then
    START="--resume"
fi
exec .venv/bin/ganfactory train-gan --data "$DATA" --out "$RUN" --preset cpu64 --kimg "$KIMG" \
    --snapshot-kimg 10 --mirror --no-progress $START "$@"
