"""HTML reports: tables, SVG charts, image grids with label overlays, all in one self-contained file."""

from ganfactory.report.bench import write_bench_report

__all__ = ["write_bench_report"]
