"""``build_report``: run folders in, one self-contained HTML file out (Jinja2 template + embedded PNGs)."""

from __future__ import annotations

import datetime as _dt
import logging
import math
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from fusemed import __version__
from fusemed.evaluation.metrics import PER_FOLD_MEAN, PLAIN
from fusemed.io import atomic_write_text
from fusemed.report import advice as A
from fusemed.report import cards as C
from fusemed.report import cohort_page, curves, lesion, patterns
from fusemed.report.figures import Figure
from fusemed.report.runs import RunData, find_oracle, load_runs
from fusemed.report.table import ORACLE, comparison_table, fmt_value

log = logging.getLogger(__name__)

TEMPLATE = "report.html.j2"


def _p(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _c_index_cell(value: Any, sd: Any) -> str:
    """``0.742 ± 0.073`` (mean ± SD over folds) when the run has a spread, else the single value."""
    if sd is None or pd.isna(sd) or value is None or pd.isna(value):
        return fmt_value(value)
    return f"{fmt_value(value)} ± {fmt_value(sd)}"


def survival_caption(table: pd.DataFrame) -> str:
    """What the C-index column holds, from the runs' ``c_index_method`` (the report says which)."""
    if "c_index_method" not in table.columns:
        return ""
    methods = sorted({str(m) for m in table["c_index_method"].dropna()})
    text = {
        PER_FOLD_MEAN: "per-fold mean ± SD: Harrell's C of each outer fold's model on its own test subjects "
                       "(a Cox model's log-risk offset differs between folds, so raw out-of-fold risks are "
                       "not pooled; metrics.json also has the value pooled after per-fold centring)",
        PLAIN: "a single Harrell's C over all subjects (one set of predictions, no folds)",
    }
    return "C-index: " + "; ".join(text.get(m, m) for m in methods) + "."


def format_table(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Display strings for the comparison table (one dict per row, keys = template columns)."""
    rows = []
    for rec in table.to_dict("records"):
        get = rec.get  # columns may be absent for some run kinds
        auroc = fmt_value(get("auroc"))
        if get("auroc_low") is not None and not pd.isna(get("auroc_low")):
            auroc += f" [{fmt_value(get('auroc_low'))}, {fmt_value(get('auroc_high'))}]"
        row = {
            "run": rec["run"], "oracle": str(rec["run"]).startswith(ORACLE), "fusion": get("fusion"),
            "uncertainty": get("uncertainty"), "kind": get("kind"), "n": fmt_value(get("n")),
            "missing": fmt_value(get("missing_rate"), 2), "auroc": auroc, "auprc": fmt_value(get("auprc")),
            "brier": fmt_value(get("brier")), "ece": fmt_value(get("ece")), "ece_uncal": fmt_value(get("ece_uncal")),
            "sens95": fmt_value(get("sens_at_spec95"), 2), "coverage": fmt_value(get("coverage")),
            "set_size": fmt_value(get("mean_set_size"), 2), "c_index": _c_index_cell(get("c_index"), get("c_index_sd")),
        }
        for base in ("early", "late"):
            d = get(f"vs_{base}_diff")
            if d is None or pd.isna(d):
                row[f"vs_{base}"] = "–"
                row[f"vs_{base}_sig"] = False
            else:
                p = get(f"vs_{base}_p")
                row[f"vs_{base}"] = f"{d:+.3f} [{get(f'vs_{base}_low'):+.3f}, {get(f'vs_{base}_high'):+.3f}], p={_p(p)}"
                row[f"vs_{base}_sig"] = bool(p is not None and p < 0.05)
        rows.append(row)
    return rows


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("fusemed.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )


def _cohort_folder(runs: list[RunData], cohort: Path | None) -> Path | None:
    if cohort is not None:
        return Path(cohort)
    for run in runs:
        if run.cohort is not None and (run.cohort / "cohort.yaml").is_file():
            return run.cohort
    return None


def _oracles(runs: list[RunData], cohort: Path | None) -> pd.DataFrame | dict[Path, pd.DataFrame] | None:
    """The truth table of the given cohort, else one per distinct cohort of the runs (benchmark grids)."""
    if cohort is not None:
        return find_oracle(Path(cohort))
    found = {}
    for folder in dict.fromkeys(r.cohort for r in runs if r.cohort is not None):
        truth = find_oracle(folder)
        if truth is not None:
            found[folder] = truth
    return found or None


def shorten_names(runs: list[RunData]) -> None:
    """Drop a ``-<part>`` suffix every run name shares (``early-mc_dropout-s0`` -> ``early``) if names stay unique."""
    if len(runs) < 2:
        return
    parts = [r.name.split("-") for r in runs]
    k = 0
    while all(len(p) > k + 1 for p in parts) and len({p[-1 - k] for p in parts}) == 1:
        k += 1
    if k:
        short = ["-".join(p[:-k]) for p in parts]
        if len(set(short)) == len(short):
            for run, name in zip(runs, short, strict=True):
                run.name = name


def report_context(runs: list[RunData], cohort: Path | None = None, *, n_boot: int = 2000,
                   advice: Path | None = None) -> dict[str, Any]:
    """Everything the template shows, computed once (figures as data URIs); ``advice``: an ``advice.csv``
    for the patient cards (default: the focus run's own, if it has one)."""
    shorten_names(runs)
    folder = _cohort_folder(runs, cohort)
    cohort_ctx: dict[str, Any] = {"folder": str(folder) if folder else None, "summary": None, "figures": []}
    if folder is not None:
        loaded = cohort_page.load_cohort_summary(folder)
        if loaded is not None:
            summary, presence, _subjects, mods = loaded
            cohort_ctx["summary"] = summary
            cohort_ctx["figures"] = [cohort_page.availability_figure(presence, mods),
                                     cohort_page.patterns_figure(summary["patterns"])]
    if not cohort_ctx["figures"]:
        cohort_ctx["figures"] = [cohort_page.patterns_figure(cohort_page.patterns_from_runs(runs))]
    cohort_ctx["figures"] = [f for f in cohort_ctx["figures"] if f is not None]

    table = comparison_table(runs, _oracles(runs, cohort), n_boot=n_boot)
    by_pattern = patterns.pattern_table(runs, pool=True)
    focus = C.focus_run(runs)
    cards = C.select_cards(focus) if focus is not None else {"uncertain": [], "wrong": []}
    advised = A.load_advice(focus.path if focus is not None else None, advice)
    A.attach(cards, advised)
    figures: dict[str, Figure | None] = {
        "roc": curves.roc_figure(runs),
        "reliability": curves.reliability_figure(runs),
        "risk_coverage": curves.risk_coverage_figure(runs),
        "pattern_heatmap": patterns.pattern_heatmap(by_pattern),
        "missing_rate": patterns.missing_rate_figure(runs),
        "coverage_heatmap": patterns.coverage_heatmap(by_pattern),
    }
    return {
        "title": "fusemed report",
        "version": __version__,
        "generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "runs": runs,
        "cohort": cohort_ctx,
        "has_oracle": bool(table["run"].astype(str).str.startswith(ORACLE).any()) if not table.empty else False,
        "table": format_table(table),
        "has_uncal": "ece_uncal" in table.columns,
        "show_uncertainty": len({r.uncertainty for r in runs}) > 1,
        "has_survival": "c_index" in table.columns,
        "survival_caption": survival_caption(table),
        "figures": figures,
        "focus": focus.name if focus is not None else None,
        "cards": cards,
        "exams": A.exam_summary(advised),
        "alpha": focus.alpha if focus is not None else 0.1,
        "lesion": [lesion.lesion_section(r) for r in runs if r.is_lesion],
        "fmt": fmt_value,
    }


def render(context: dict[str, Any]) -> str:
    return _environment().get_template(TEMPLATE).render(**context)


def write_figures(context: dict[str, Any], folder: Path) -> list[Path]:
    """Save the report's figures as PNG files too (for markdown pages such as ``benchmarks/*.md``)."""
    import base64

    folder.mkdir(parents=True, exist_ok=True)
    figures = [*context["cohort"]["figures"], *(f for f in context["figures"].values() if f is not None)]
    paths = []
    for fig in figures:
        path = folder / f"{fig.key}.png"
        path.write_bytes(base64.b64decode(fig.uri.split(",", 1)[1]))
        paths.append(path)
    return paths


def build_report(runs: list[Path], out: Path, cohort: Path | None = None, *, n_boot: int = 2000,
                 figures_dir: Path | None = None, advice: Path | None = None) -> Path:
    """Write one self-contained HTML report comparing ``runs``; return its path.

    Args:
        runs: run folders (``config.yaml``, ``metrics.json``, ``predictions.csv``; any may be absent).
        out: the HTML file to write (atomically).
        cohort: the cohort folder for the summary page and the oracle row; default: the first run's
            ``config.yaml`` ``cohort`` when that folder exists.
        n_boot: bootstrap resamples for the AUROC confidence intervals.
        figures_dir: also save every figure there as ``<key>.png``.
        advice: ``fusemed advise`` output for the patient cards and the cohort page (default: the focus
            run's ``advice.csv`` when it has one).
    """
    if not runs:
        raise ValueError("build_report needs at least one run folder")
    loaded = load_runs([Path(r) for r in runs])
    context = report_context(loaded, cohort, n_boot=n_boot, advice=advice)
    html = render(context)
    if figures_dir is not None:
        write_figures(context, Path(figures_dir))
    out = Path(out)
    atomic_write_text(out, html)
    log.info("report written to %s (%d runs, %.1f kB)", out, len(loaded), len(html) / 1024)
    return out
