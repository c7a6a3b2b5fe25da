"""Benchmark results: ``results.csv`` (one row per cell + the oracle per cohort), ``results.md`` (what a
reader of ``benchmarks/*.md`` sees, with the machine it ran on) and the HTML report over every cell.

Everything written here is a function of the committed raw results (each run's predictions.csv,
metrics.json, provenance.json, the cohorts' truth/oracle.csv) and the config: no clock, no host name, no
invocation timing, so ``--collect-only`` regenerates the files byte-for-byte on any machine.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from fusemed.benchmark.advise import advise_frame, advise_markdown
from fusemed.benchmark.config import BenchmarkConfig
from fusemed.benchmark.detection import detection_markdown
from fusemed.benchmark.grid import Cell, CohortJob, nominal_missing
from fusemed.benchmark.provenance import summary
from fusemed.benchmark.transfer import transfer_frame, transfer_markdown
from fusemed.report.oracle import ORACLE, ORACLES, oracle_columns, share
from fusemed.report.patterns import order_patterns, pattern_table
from fusemed.report.runs import find_oracle, load_run, read_predictions
from fusemed.report.table import comparison_table, fmt_value

log = logging.getLogger(__name__)


def _cell_frame(jobs: list[CohortJob], cells: list[Cell], n_boot: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prognosis: comparison rows per cohort (with its oracle) and per-pattern AUROC/coverage rows."""
    tables, patterns = [], []
    for job in jobs:
        mine = [c for c in cells if c.cohort_id == job.cohort_id]
        if not mine:
            continue
        runs = [load_run(c.run_dir) for c in mine]
        truth = find_oracle(job.folder)
        table = comparison_table(runs, truth, n_boot=n_boot)
        by_name = {c.run_dir.name: c for c in mine}
        table.insert(0, "cohort", job.cohort_id)
        table.insert(1, "missing", nominal_missing(job.missing))
        table["seed"] = [by_name[r].seed if r in by_name else None for r in table["run"]]
        tables.append(table)
        pt = pattern_table(runs, pool=True, oracle=truth)  # the most frequent patterns, the rest pooled
        pt.insert(0, "cohort", job.cohort_id)
        pt.insert(2, "model", [_model(by_name[r]) if r in by_name else r for r in pt["run"]])
        patterns.append(pt)
    frame = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return frame, (pd.concat(patterns, ignore_index=True) if patterns else pd.DataFrame())


def _model(cell: Cell) -> str:
    """A cell's model name across seeds (fusion, with its uncertainty method when there is one)."""
    return cell.fusion if cell.uncertainty == "none" else f"{cell.fusion}-{cell.uncertainty}"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub markdown table of already formatted values."""
    if frame.empty:
        return "_(no completed cells)_\n"
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    sep = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(fmt_value(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, sep, *body]) + "\n"


def _delta(row: pd.Series, base: str) -> str:
    d = row.get(f"vs_{base}_diff")
    if d is None or pd.isna(d):
        return "–"
    p = row.get(f"vs_{base}_p")
    return f"{d:+.3f} (p={'<0.001' if p < 0.001 else f'{p:.3f}'})"


def _ece_cells(frame: pd.DataFrame) -> list[str]:
    """ECE, as "before → after" where the run was calibrated (``p_uncal`` in its predictions)."""
    empty = pd.Series(float("nan"), index=frame.index)
    after, before = frame.get("ece", empty), frame.get("ece_uncal", empty)
    return [fmt_value(a) if pd.isna(b) else f"{fmt_value(b)} → {fmt_value(a)}"
            for a, b in zip(after, before, strict=True)]


def prognosis_markdown(frame: pd.DataFrame, patterns: pd.DataFrame) -> str:
    """Main table (AUROC with CI, paired Δ, calibration, conformal) and coverage per missing pattern."""
    if frame.empty:
        return markdown_table(frame)
    shown = pd.DataFrame({
        "cohort": frame["cohort"],
        "missing": frame["missing"].map(lambda v: fmt_value(v, 2)),
        "run": frame["run"].map(lambda r: f"**{r}**" if str(r).startswith(ORACLE) else r),
        "n": frame["n"],
        "AUROC [95 % CI]": [f"{fmt_value(a)} [{fmt_value(lo)}, {fmt_value(hi)}]" for a, lo, hi in
                            zip(frame["auroc"], frame["auroc_low"], frame["auroc_high"], strict=True)],
        "Δ vs early": [_delta(r, "early") for _, r in frame.iterrows()],
        "Δ vs late": [_delta(r, "late") for _, r in frame.iterrows()],
        "AUPRC": frame.get("auprc"), "Brier": frame.get("brier"), "ECE": _ece_cells(frame),
        "sens@spec95": frame.get("sens_at_spec95"),
        "coverage": frame.get("coverage"), "set size": frame.get("mean_set_size"),
    })
    text = markdown_table(shown)
    cov = patterns.dropna(subset=["coverage"]) if not patterns.empty else patterns
    if not cov.empty:
        cols = order_patterns(cov["pattern"].tolist())
        wide = cov.assign(cell=[f"{c:.2f} (n={n}{', borrowed ' + b if b else ''})" for c, n, b in
                                zip(cov["coverage"], cov["n"], cov["borrowed"], strict=True)]) \
            .pivot_table(index=["cohort", "run"], columns="pattern", values="cell", aggfunc="first") \
            .reindex(columns=cols).reset_index()
        alpha = float(cov["alpha"].iloc[0])
        note = ("" if not cov["borrowed"].astype(bool).any() else
                "'borrowed k/K': in k of the run's K folds the pattern had too few calibration subjects "
                "(< ⌈(1−α)/α⌉) for a threshold of its own and borrowed those of the patterns with as many "
                "present modalities (or all): there the per-pattern guarantee does not hold.\n\n")
        text += (f"\n### Conformal coverage per missing-modality pattern (target {1 - alpha:.2f})\n\n"
                 + note + markdown_table(wide.fillna("–")))
    return text + pattern_share_markdown(patterns)


def pattern_share_markdown(patterns: pd.DataFrame) -> str:
    """Share of the observed-data oracle's margin per missing pattern, mean over seeds (cohorts whose truth
    has ``p_observed`` only)."""
    if patterns.empty or "oracle_auroc" not in patterns or patterns["oracle_auroc"].isna().all():
        return ""
    rows = patterns.dropna(subset=["oracle_auroc"])
    mean = rows.groupby(["cohort", "model", "pattern"], as_index=False).agg(
        share=("oracle_share", "mean"), n=("n", "first"), oracle=("oracle_auroc", "first"))
    cols = order_patterns(mean["pattern"].tolist())
    oracle = mean.drop_duplicates(["cohort", "pattern"]).assign(
        model=ORACLES["p_observed"] + " AUROC", cell=lambda f: [f"{a:.3f} (n={n})" for a, n in
                                                              zip(f["oracle"], f["n"], strict=True)])
    cells = mean.assign(cell=[fmt_value(v, 2) for v in mean["share"]])
    wide = pd.concat([oracle, cells]).pivot_table(index=["cohort", "model"], columns="pattern", values="cell",
                                                   aggfunc="first", sort=False).reindex(columns=cols).reset_index()
    return ("\n### Share of the observed-data oracle per missing-modality pattern\n\n"
            "(AUROC − 0.5) / (observed-data ORACLE − 0.5) on the subjects with exactly these modalities present "
            "(the 8 most frequent patterns, the rest pooled), mean over seeds; first row: the oracle's AUROC. "
            "'–': a class with fewer than 2 subjects, or an oracle no better than chance. A pattern with a few dozen "
            "subjects gives shares far outside [0, 1] by chance alone: read the pooled and overall shares first.\n\n"
            + markdown_table(wide.fillna("–")))


def paired_resamples(n_boot: int) -> int:
    """Paired bootstrap resamples: the grid's ``n_boot``, capped at 1000 (each costs one score per model)."""
    return min(n_boot, 1000)


def _paired_frame(jobs: list[CohortJob], cells: list[Cell], n_boot: int) -> pd.DataFrame:
    """Per cohort, every model against the best classical baseline (:mod:`fusemed.benchmark.paired`)."""
    import json

    from fusemed.benchmark.paired import holm, versus_best_baseline
    from fusemed.models.baselines import BASELINES

    tables = []
    for job in jobs:
        mine = [c for c in cells if c.cohort_id == job.cohort_id]
        if not mine:
            continue
        kind = json.loads((mine[0].run_dir / "metrics.json").read_text())["task"]["kind"]
        runs = {(c.model, c.seed): read_predictions(c.run_dir / "predictions.csv") for c in mine}
        oracle = find_oracle(job.folder) if kind == "binary" else None
        labels = oracle_columns(oracle)
        model_runs = list(runs.items())
        for column, name in labels.items():  # simulated data: the oracles, scored on the same subjects
            for (_, seed), frame in model_runs:
                runs[(name, seed)] = frame[["subject", "y_true"]].merge(
                    oracle[["subject", column]].rename(columns={column: "p"}), on="subject", how="inner")
        table = versus_best_baseline(runs, kind, list(BASELINES), n_boot=paired_resamples(n_boot),
                                     references=tuple(labels.values()))
        for column, key in (("p_outcome", "oracle_share"), ("p_observed", "observed_share")):
            if column in labels:  # share of the oracle's margin over chance: (AUROC - 0.5) / (oracle - 0.5)
                top = float(table.loc[table["model"] == labels[column], "score"].iloc[0])
                table[key] = [share(v, top) for v in table["score"]]
        table.insert(0, "cohort", job.cohort_id)
        table.insert(1, "missing", nominal_missing(job.missing))
        tables.append(table)
    if not tables:
        return pd.DataFrame()
    frame = pd.concat(tables, ignore_index=True)
    frame["p_holm"] = holm(frame["p"].tolist())  # one family: every test of the table, across its cohorts
    return frame


def paired_markdown(frame: pd.DataFrame, resamples: int = 1000) -> str:
    """The "against the best classical baseline" table a reader checks first."""
    if frame.empty:
        return ""
    shown = pd.DataFrame({
        "cohort": frame["cohort"], "metric": frame["metric"],
        "model": [f"{m} (baseline)" if b else m for m, b in zip(frame["model"], frame["baseline"], strict=True)],
        "seeds": frame["seeds"], "n": frame["n"],
        "mean ± sd [min, max]": [f"{fmt_value(a)} ± {fmt_value(sd)} [{fmt_value(lo)}, {fmt_value(hi)}]"
                                 for a, sd, lo, hi in zip(frame["score"], frame["sd"], frame["min"], frame["max"],
                                                          strict=True)],
        "Δ vs best baseline [95 % CI]": [
            "–" if pd.isna(d) else f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"
            for d, lo, hi in zip(frame["diff"], frame["diff_low"], frame["diff_high"], strict=True)],
        "p (Holm)": ["–" if pd.isna(p) else "<0.001" if p < 0.001 else f"{p:.3f}" for p in frame["p_holm"]],
    })
    if "oracle_share" in frame:
        shown["share of full-information oracle"] = [fmt_value(v) for v in frame["oracle_share"]]
    if "observed_share" in frame:
        shown["share of observed-data oracle"] = [fmt_value(v) for v in frame["observed_share"]]
    tests = int(frame["p"].notna().sum())
    return ("\n### Against the best classical baseline (same folds per seed)\n\n"
            "Score: mean ± sd across seeds [min, max of the per-seed scores]; n: subjects scored by every model. "
            "Δ: mean over seeds of the per-seed difference to the cohort's baseline with the highest mean score; "
            f"CI and p from a paired bootstrap over subjects ({resamples} resamples), p Holm-corrected across "
            f"the whole table ({tests} tests; the oracles are shown, not tested). "
            "ORACLE (full information), simulated cohorts: the true outcome probability given every latent; "
            "ORACLE (observed data): the Bayes probability given what each subject's present modalities "
            "reveal (where the truth holds it); share of an oracle = (AUROC − 0.5) / (that ORACLE − 0.5).\n\n"
            + markdown_table(shown))


def write_results(config: BenchmarkConfig, jobs: list[CohortJob], cells: list[Cell], out: Path, *,
                  report: bool = True, failed: dict[str, str] | None = None) -> Path | None:
    """Write ``results.csv`` and ``results.md`` (and ``report.html``); return the report's path.

    ``results.md`` depends only on the config and the cells' committed files (see the module docstring);
    failed cells are listed because a rerun that fails must not look like a complete table.
    """
    if config.task == "detection":
        frame, body = detection_markdown(cells, list(config.fusions), out, config.n_boot)
        patterns = pd.DataFrame()
    else:
        frame, patterns = _cell_frame(jobs, cells, config.n_boot)
        paired = _paired_frame(jobs, cells, config.n_boot)
        if not paired.empty:
            paired.to_csv(out / "results_paired.csv", index=False)
        body = paired_markdown(paired, paired_resamples(config.n_boot)) + "\n" + prognosis_markdown(frame, patterns)
        new_rows, new_patterns = transfer_frame(cells)
        if not new_rows.empty:
            new_rows.to_csv(out / "results_transfer.csv", index=False)
            new_patterns.to_csv(out / "results_transfer_patterns.csv", index=False)
            body += transfer_markdown(new_rows, new_patterns)
        pairs = advise_frame(cells)
        if not pairs.empty:
            pairs.to_csv(out / "results_advise.csv", index=False)
            body += advise_markdown(pairs, config)
    frame.to_csv(out / "results.csv", index=False)
    if not patterns.empty:
        patterns.to_csv(out / "results_patterns.csv", index=False)
    variants = f"; variants: {', '.join(config.variants)}" if config.variants else ""
    header = [f"# Benchmark `{config.name}`", "",
              f"- {len(cells)} completed cell(s); regenerate this file from them with "
              f"`fusemed benchmark CONFIG --out DIR --collect-only`",
              *summary([c.run_dir for c in cells]),
              f"- fusions/detectors: {', '.join(config.fusions)}; uncertainty: {', '.join(config.uncertainty)}"
              f"{variants}; seeds: {', '.join(map(str, config.seeds))}; training: `{config.train}`",
              *([] if config.task == "detection" else [
                  "- AUROC CI: percentile bootstrap over subjects; Δ: paired AUROC difference on the same subjects "
                  "(DeLong, uncorrected: read the Holm-corrected table above); ECE: top-label, 15 equal-width bins; "
                  "ORACLE (full information): the simulator's true outcome probability; ORACLE (observed data): "
                  "the same given only what the present modalities reveal."]),
              ""]
    if failed:
        header += ["Failed cells:", *[f"- `{k}`: {v}" for k, v in sorted(failed.items())], ""]
    (out / "results.md").write_text("\n".join(header) + "\n" + body)
    if not report or not cells:
        return None
    from fusemed.report import build_report

    return build_report([c.run_dir for c in cells], out / "report.html", n_boot=config.n_boot,
                        figures_dir=out / "figures")
