"""Synthetic cohorts and run folders for the report tests (no training: predictions drawn from a truth)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import yaml

from fusemed.run import Run, RunTask

MODALITIES = ["t1", "pet", "clinical"]


def make_report_cohort(root: Path, n: int = 80, seed: int = 0, missing: float = 0.3) -> Path:
    """A tiny simulated-like cohort: two 4³ volumes (PET often missing), one tabular column, an oracle."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    p_outcome = 1 / (1 + np.exp(-rng.normal(0, 3.0, n)))
    y = rng.binomial(1, p_outcome)
    rows = []
    for i in range(n):
        sid = f"sub-{i:03d}"
        row = {"subject": sid, "site": "AB"[i % 2], "age": float(40 + i % 30), "outcome": int(y[i]),
               "days": float(30 + i), "event": int(y[i])}
        for mod, rate in (("t1", missing / 2), ("pet", missing)):
            if rng.random() < rate and not (mod == "pet" and row.get("t1") is None):
                row[mod] = None
                continue
            path = root / sid / f"{mod}.nii.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(rng.normal(size=(4, 4, 4)).astype(np.float32), np.eye(4)), str(path))
            row[mod] = f"{sid}/{mod}.nii.gz"
        rows.append(row)
    frame = pd.DataFrame(rows)[["subject", "site", "t1", "pet", "age", "outcome", "days", "event"]]
    frame.to_csv(root / "manifest.csv", index=False)
    spec = {"name": "report-test", "site_column": "site",
            "modalities": {"t1": {"kind": "volume"}, "pet": {"kind": "volume"},
                           "clinical": {"kind": "tabular", "columns": ["age"]}},
            "targets": {"outcome": {"kind": "binary"},
                        "survival": {"kind": "survival", "time": "days", "event": "event"}}}
    (root / "cohort.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (root / "truth").mkdir(exist_ok=True)
    pd.DataFrame({"subject": frame["subject"], "p_outcome": p_outcome}).to_csv(root / "truth" / "oracle.csv",
                                                                             index=False)
    return root


def _patterns(frame: pd.DataFrame) -> list[str]:
    out = []
    for _, row in frame.iterrows():
        present = [m for m in ("t1", "pet") if isinstance(row.get(m), str) and row.get(m)]
        out.append("+".join([*present, "clinical"]))
    return out


def make_run(folder: Path, cohort: Path, fusion: str, *, strength: float = 1.0, noise: float = 1.0,
             seed: int = 0, uncertainty: bool = True, alpha: float = 0.1) -> Path:
    """A run folder as training writes it; predictions are a noisy copy of the oracle's logit."""
    rng = np.random.default_rng([seed, 7])  # not the cohort's stream: noise must be independent of the truth
    manifest = pd.read_csv(cohort / "manifest.csv", dtype={"subject": str})
    oracle = pd.read_csv(cohort / "truth" / "oracle.csv", dtype={"subject": str})
    n = len(manifest)
    logit = np.log(oracle["p_outcome"] / (1 - oracle["p_outcome"])).to_numpy()
    patterns = _patterns(manifest)
    n_missing = np.array([3 - len(p.split("+")) for p in patterns])
    z = strength * logit + rng.normal(0, noise * (1 + n_missing), n)
    p_uncal = 1 / (1 + np.exp(-2.0 * z))  # over-confident
    p = 1 / (1 + np.exp(-z))
    frame = pd.DataFrame({"subject": manifest["subject"], "fold": np.arange(n) % 5, "pattern": patterns,
                          "y_true": manifest["outcome"].astype(int), "p": p})
    if uncertainty:
        width = 0.05 + 0.1 * n_missing + 0.05 * rng.random(n)
        frame["p_low"] = np.clip(p - width, 0, 1)
        frame["p_high"] = np.clip(p + width, 0, 1)
        ent = -(p * np.log(p) + (1 - p) * np.log(1 - p))
        frame["entropy"] = ent
        frame["epistemic"] = ent * (0.1 + 0.2 * n_missing)
        frame["aleatoric"] = ent - frame["epistemic"]
        sets = []
        for pi in p:
            s = [k for k, pk in ((0, 1 - pi), (1, pi)) if pk >= 0.2]
            sets.append("{" + ",".join(map(str, s)) + "}")
        frame["conformal_set"] = sets
        frame["abstain"] = [s == "{0,1}" for s in sets]
        frame["p_uncal"] = p_uncal
    folder.mkdir(parents=True, exist_ok=True)
    Run.create(folder, "prognosis", RunTask("outcome", "binary", 2))
    frame.to_csv(folder / "predictions.csv", index=False)
    config = {"cohort": str(cohort), "target": "outcome", "fusion": fusion, "modalities": MODALITIES,
              "folds": 5, "seed": seed, "uncertainty": "ensemble" if uncertainty else "none", "alpha": alpha}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    metrics = {"auroc": None, "n": n, "task": {"target": "outcome", "kind": "binary", "fusion": fusion}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def stub_simulate(job, progress=None) -> Path:  # noqa: ANN001 - a fusemed.benchmark.CohortJob
    """Benchmark stand-in for the simulator: a tiny cohort at the job's missing rate."""
    return make_report_cohort(job.folder, n=50, seed=job.spec.seed + int(100 * job.missing),
                              missing=job.missing)


def stub_train(cell, **_ignored) -> Path:  # noqa: ANN001 - a fusemed.benchmark.Cell
    """Benchmark stand-in for training: a run folder, plus a line in ``calls.log`` beside the runs."""
    noise = {"early": 2.0, "late": 1.5}.get(cell.fusion, 0.5)
    run = make_run(cell.run_dir, cell.cohort_dir, cell.fusion, noise=noise, seed=cell.seed,
                   uncertainty=cell.uncertainty != "none")
    with open(cell.run_dir.parent.parent / "calls.log", "a") as fh:
        fh.write(cell.name + "\n")
    return run
