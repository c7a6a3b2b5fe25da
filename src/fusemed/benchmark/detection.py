"""Detection benchmark tables: each detector across seeds, paired comparisons at matched specificity,
the per-run rows and one FROC figure per cohort.

Detectors are compared where they are equally specific (sensitivity at specificity 0.8 / 0.9 on the
held-out controls, at <= 1 false-positive cluster per patient; `fusemed.diagnosis.operating`), never at
each one's own threshold. A seed fixes the test split, so two detectors of the same seed are scored on
the same patients: the paired test compares each patient's detection by both (exact McNemar on the
discordant patients, pooled over seeds), with a bootstrap CI of the difference (patients resampled
within each seed), Holm-corrected across every pair of the table.
"""

from __future__ import annotations

import base64
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from fusemed.benchmark.grid import Cell, nominal_missing
from fusemed.benchmark.paired import holm
from fusemed.report.runs import load_run

#: per-run metrics shown in results.md (results.csv keeps them all)
RUN_COLUMNS = ["cohort", "missing", "detector", "seed", "n_patients", "n_controls", "n_unscored_patients",
               "sens_at_spec80", "spec_at_spec80", "sens_at_spec90", "spec_at_spec90", "sens_at_fp1",
               "mri_negative.sens_at_spec80", "mri_visible.sens_at_spec80", "sensitivity", "specificity",
               "fp_per_patient", "top5", "dice", "cluster_ece"]
#: summarised across seeds: (column, header)
SUMMARY = [("sens_at_spec80", "sens @ spec 0.8"), ("spec_at_spec80", "spec reached"),
           ("sens_at_spec90", "sens @ spec 0.9"), ("sens_at_fp1", "sens @ ≤1 FP/patient"),
           ("spec_at_fp1", "spec there"),
           ("mri_negative.sens_at_spec80", "MRI-negative @ 0.8"), ("mri_visible.sens_at_spec80", "MRI-visible @ 0.8")]
#: the operating point paired comparisons are made at
PAIRED_POINT = "spec80"


def run_frame(cells: list[Cell]) -> pd.DataFrame:
    """One row per detection run: its flattened metrics (`metrics.json`)."""
    from fusemed.report.lesion import _flat_metrics

    rows = []
    for cell in cells:
        run = load_run(cell.run_dir)
        rows.append({"cohort": cell.cohort_id, "missing": nominal_missing(cell.missing), "run": cell.run_dir.name,
                     "detector": cell.fusion, "seed": cell.seed, **_flat_metrics(run.metrics)})
    return pd.DataFrame(rows)


def _spread(values: pd.Series) -> str:
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return "–"
    if len(v) == 1:
        return f"{v.iloc[0]:.2f}"
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f} [{v.min():.2f}, {v.max():.2f}]"


def summary_frame(frame: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per cohort and detector (in `order`): each `SUMMARY` column as mean ± sd [min, max] over seeds."""
    rows = []
    for cohort, group in frame.groupby("cohort", sort=False):
        for detector in [d for d in order if d in set(group["detector"])]:
            mine = group[group["detector"] == detector]
            row = {"cohort": cohort, "detector": detector, "seeds": len(mine)}
            row.update({header: _spread(mine[col]) if col in mine else "–" for col, header in SUMMARY})
            rows.append(row)
    return pd.DataFrame(rows)


def _outcomes(cells: list[Cell], point: str) -> dict[tuple[str, str], pd.DataFrame]:
    """(cohort, detector) -> the patients' `detected_at_<point>` per seed (columns seed, subject, detected)."""
    out: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for cell in cells:
        path = cell.run_dir / "detections.csv"
        table = pd.read_csv(path, dtype={"subject": str}) if path.is_file() else pd.DataFrame()
        column = f"detected_at_{point}"
        if column not in table:
            continue
        mine = table.loc[table["patient"] == 1, ["subject", column]].rename(columns={column: "detected"})
        out.setdefault((cell.cohort_id, cell.fusion), []).append(mine.assign(seed=cell.seed))
    return {k: pd.concat(v, ignore_index=True) for k, v in out.items()}


def paired_frame(cells: list[Cell], order: list[str], n_boot: int = 1000, point: str = PAIRED_POINT,
                 seed: int = 0) -> pd.DataFrame:
    """Every pair of detectors of a cohort, on the patients both were scored at `point` for (pooled over
    seeds): sensitivities, their difference (the better one first) with a 95 % bootstrap CI, the
    discordant counts, the exact McNemar p and its Holm adjustment across every row."""
    outcomes = _outcomes(cells, point)
    rng = np.random.default_rng(seed)
    rows = []
    for cohort in dict.fromkeys(c.cohort_id for c in cells):
        present = [d for d in order if (cohort, d) in outcomes]
        for a, b in combinations(present, 2):
            both = outcomes[cohort, a].merge(outcomes[cohort, b], on=["seed", "subject"], suffixes=("_a", "_b"))
            both = both.dropna(subset=["detected_a", "detected_b"])  # a point one of them cannot reach
            if both.empty:
                continue
            x, y = both["detected_a"].to_numpy(float), both["detected_b"].to_numpy(float)
            if y.mean() > x.mean():
                a, b, x, y = b, a, y, x
            d = x - y
            groups = [np.flatnonzero(both["seed"].to_numpy() == s) for s in both["seed"].unique()]
            boots = np.array([np.mean(np.concatenate([d[rng.choice(g, g.size)] for g in groups]))
                              for _ in range(n_boot)])
            wins, losses = int(((x == 1) & (y == 0)).sum()), int(((x == 0) & (y == 1)).sum())
            p = binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
            rows.append({"cohort": cohort, "point": point, "a": a, "b": b, "n": len(d), "sens_a": x.mean(),
                         "sens_b": y.mean(), "diff": d.mean(), "ci_low": np.percentile(boots, 2.5),
                         "ci_high": np.percentile(boots, 97.5), "a_only": wins, "b_only": losses, "p": p})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["p_holm"] = holm(frame["p"].tolist())
    return frame


def paired_markdown(frame: pd.DataFrame) -> str:
    """The paired table: one row per pair, the better detector first."""
    if frame.empty:
        return "_(no paired comparison: the runs' detections.csv carry no per-patient flags)_\n"
    head = ("| cohort | A | B | patients (seed × patient) | sens A | sens B | Δ A − B [95 % CI] | A only / B only "
            "| McNemar p | Holm p |\n|---|---|---|---|---|---|---|---|---|---|")
    body = [f"| {r.cohort} | {r.a} | {r.b} | {r.n} | {r.sens_a:.2f} | {r.sens_b:.2f} | {r.diff:+.2f} "
            f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}] | {r.a_only} / {r.b_only} | {_p(r.p)} | {_p(r.p_holm)} |"
            for r in frame.itertuples()]
    return "\n".join([head, *body]) + "\n"


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def froc_figures(cells: list[Cell], out: Path) -> str:
    """One FROC figure per cohort (``figures/froc-<cohort>.png``, every detector and seed on it) and the
    markdown that shows them: detection is compared at matched operating points, not at each detector's own."""
    from fusemed.report.lesion import _flat_metrics, froc_figure

    lines = []
    for cohort in dict.fromkeys(c.cohort_id for c in cells):
        curves, points = {}, {}
        for cell in (c for c in cells if c.cohort_id == cohort and (c.run_dir / "froc.csv").is_file()):
            curves[cell.run_dir.name] = pd.read_csv(cell.run_dir / "froc.csv")
            points[cell.run_dir.name] = _flat_metrics(load_run(cell.run_dir).metrics)
        if not curves:
            continue
        figure = froc_figure(curves, points)
        path = out / "figures" / f"froc-{cohort}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(figure.uri.split(",", 1)[1]))
        lines.append(f"\n![FROC, {cohort}](figures/{path.name})\n\n{figure.caption}\n")
    return "".join(lines)


def detection_markdown(cells: list[Cell], order: list[str], out: Path, n_boot: int) -> tuple[pd.DataFrame, str]:
    """(per-run frame for results.csv, the markdown body: summary, paired table, per-run rows, FROC)."""
    from fusemed.benchmark.results import markdown_table

    frame = run_frame(cells)
    if frame.empty:
        return frame, markdown_table(frame)
    paired = paired_frame(cells, order, n_boot)
    if not paired.empty:
        paired.to_csv(out / "results_paired.csv", index=False)
    shown = frame[[c for c in RUN_COLUMNS if c in frame.columns]]
    return frame, "\n".join([
        "## Each detector across seeds (mean ± sd [min, max]; unscored patients count as misses)", "",
        "A patient is detected when a cluster overlaps its lesion (MELD's rule). At ≤ 1 false-positive cluster "
        "per patient the controls are not checked: read that column with the specificity reached there (a "
        "cluster covering most of the brain overlaps every lesion).", "",
        markdown_table(summary_frame(frame, order)),
        f"## Paired, at specificity {int(PAIRED_POINT[4:]) / 100:g} on the held-out controls", "",
        "Each patient detected or not by both detectors of the same seed (same test split); exact McNemar on "
        f"the discordant patients, pooled over seeds; 95 % CI: bootstrap ({n_boot} resamples, patients within "
        "each seed); Holm across every row.", "",
        paired_markdown(paired),
        "## Every run", "",
        markdown_table(shown),
    ]) + froc_figures(cells, out)
