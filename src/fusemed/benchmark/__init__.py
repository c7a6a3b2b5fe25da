"""Benchmarks as data: a YAML grid of cohorts × fusions × uncertainty methods × seeds, run resumably."""

from __future__ import annotations

from fusemed.benchmark.config import BenchmarkConfig, CohortGrid
from fusemed.benchmark.grid import Cell, CohortJob, plan
from fusemed.benchmark.runner import BenchmarkResult, run_benchmark

__all__ = ["BenchmarkConfig", "BenchmarkResult", "Cell", "CohortGrid", "CohortJob", "plan", "run_benchmark"]
