"""End-to-end benchmarks: the cars benchmark's five arms and two protocols (BENCHMARK.md) and the demo built on
them."""

from ganfactory.bench.cars import (
    ARMS,
    PROTOCOLS,
    ROUTES,
    BenchConfig,
    bench_config,
    keypoint_classes,
    mixed_data,
    run_bench,
)

__all__ = ["ARMS", "PROTOCOLS", "ROUTES", "BenchConfig", "bench_config", "keypoint_classes", "mixed_data",
           "run_bench"]
