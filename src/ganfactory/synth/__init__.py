"""The labeled-data factory: generator + interpreter -> LabeledDataset shards (local processes or Ray)."""

from ganfactory.synth.factory import (
    BACKENDS,
    ShardStats,
    SynthConfig,
    SynthReport,
    compact_seeds,
    kept_per_block,
    plan_synthesis,
    synthesize,
    todo_shards,
    write_synth_shard,
)

__all__ = ["BACKENDS", "ShardStats", "SynthConfig", "SynthReport", "compact_seeds", "kept_per_block",
           "plan_synthesis", "synthesize", "todo_shards", "write_synth_shard"]
