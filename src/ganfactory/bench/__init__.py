"""End-to-end benchmarks: the cars benchmark's four arms (BENCHMARK.md) and the demo built on them."""

from ganfactory.bench.cars import ARMS, ROUTES, BenchConfig, bench_config, run_bench

__all__ = ["ARMS", "ROUTES", "BenchConfig", "bench_config", "run_bench"]
