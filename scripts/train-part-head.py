"""Train the cars-8 part head on a frozen inverse-graphics model (``ganfactory.inverse.parts``).

    nice -n 10 python scripts/train-part-head.py --data /work/data/cars64/gan-train-4k --out runs/parts-real

Writes OUT/cache.safetensors (codes, labels, front-face maps: reused by a rerun), OUT/log.jsonl and the part
head directory OUT/head (float32) and OUT/head-f16 (the shipped form). One thread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ganfactory.atomic import atomic_path
from ganfactory.datasets.parts import CARS8
from ganfactory.inverse.model import load_model
from ganfactory.inverse.parts import (
    PartCache,
    PartHeadConfig,
    PartTrainConfig,
    cache_views,
    save_part_head,
    train_part_head,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="LabeledDataset with cameras and part labels")
    p.add_argument("--model", default="cars64-3d")
    p.add_argument("--out", required=True)
    p.add_argument("--limit", type=int, default=None, help="use the first N trusted samples")
    p.add_argument("--iterations", type=int, default=1500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=PartTrainConfig.lr)
    p.add_argument("--hidden", type=int, default=PartHeadConfig.hidden)
    p.add_argument("--class-balance", type=float, default=PartTrainConfig.class_balance)
    p.add_argument("--cache-from", default=None, help="reuse another run's cache.safetensors (same data, model)")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    net, _ = load_model(args.model)
    t0 = time.perf_counter()
    cache_file = out / "cache.safetensors"
    if args.cache_from and not cache_file.is_file():
        for name in ("cache.safetensors", "cache-ids.json"):
            (out / name).symlink_to(Path(args.cache_from).resolve() / name)
    if cache_file.is_file():
        t = load_file(str(cache_file))
        ids = json.loads((out / "cache-ids.json").read_text())
        cache = PartCache(codes=t["codes"], labels=t["labels"], own=t["own"], other=t["other"],
                          partner=t["partner"], ids=tuple(ids))
    else:
        cache = cache_views(net, args.data, limit=args.limit, seed=args.seed)
        with atomic_path(cache_file) as tmp:
            save_file({"codes": cache.codes, "labels": cache.labels, "own": cache.own, "other": cache.other,
                       "partner": cache.partner}, str(tmp))
        (out / "cache-ids.json").write_text(json.dumps(list(cache.ids)))
    cache_s = time.perf_counter() - t0
    print(f"cache: {cache.codes.shape[0]} samples in {cache_s:.0f} s", flush=True)
    config = PartTrainConfig(iterations=args.iterations, batch=args.batch, seed=args.seed, lr=args.lr,
                             class_balance=args.class_balance)
    head_config = PartHeadConfig(classes=CARS8, base_model=args.model, hidden=args.hidden)
    with open(out / "log.jsonl", "w") as log:
        def write(row: dict) -> None:
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(row, flush=True)

        head, history = train_part_head(net, cache, config, head_config, log=write)
    facts = {"data": str(args.data), "samples": int(cache.codes.shape[0]), "train": config.__dict__,
             "seconds_cache": round(cache_s, 1), "seconds_train": history[-1]["seconds"],
             "final_loss": history[-1]["loss"]}
    save_part_head(head, out / "head", facts)
    save_part_head(head, out / "head-f16", facts, half=True)
    print(f"wrote {out / 'head'}")


if __name__ == "__main__":
    main()
