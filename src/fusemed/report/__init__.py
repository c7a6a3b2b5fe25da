"""The HTML report: runs compared with CIs and paired tests, calibration, missing-modality robustness,
conformal coverage per pattern and the patients to look at — one self-contained file."""

from __future__ import annotations

from fusemed.report.build import build_report, report_context
from fusemed.report.runs import RunData, load_run, load_runs
from fusemed.report.table import comparison_table

__all__ = ["RunData", "build_report", "comparison_table", "load_run", "load_runs", "report_context"]
