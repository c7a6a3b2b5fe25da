"""Routing of `train / evaluate / predict` to lesion detection when the target is a mask.

Prognosis and detection share the verbs (one CLI, the pipeline's stages); what differs is decided by
data — the target's kind in `cohort.yaml`, or the run folder's own description — never by a flag.
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from fusemed.cli.console import console, fmt_number
from fusemed.cohort import CohortSpec, TargetKind
from fusemed.io import load_yaml

MASK_KINDS = (TargetKind.MASK, TargetKind.VERTEX_MASK)
SHOWN = (
    "sensitivity",
    "sensitivity_margin20",
    "specificity",
    "fp_per_patient",
    "top1",
    "top5",
    "ppv",
    "dice",
    "cluster_ece",
    "sens_at_spec80",
    "sens_at_spec90",
    "sens_at_fp1",
    "n_unscored_patients",
)


def is_mask_target(cohort: Path | None, target: str | None) -> bool:
    """True when `target` is a voxel or vertex mask of the cohort (a lesion-detection job)."""
    if cohort is None or target is None or not (Path(cohort) / "cohort.yaml").is_file():
        return False
    spec = CohortSpec.from_yaml(Path(cohort) / "cohort.yaml")
    return target in spec.targets and spec.targets[target].kind in MASK_KINDS


def is_detection_run(run: Path) -> bool:
    return (Path(run) / "detector" / "config.json").is_file()


def print_detection_metrics(metrics: dict, title: str) -> None:
    """One row per metric, one column per subset (all, MRI-negative, MRI-visible lesions)."""
    subsets = {
        "all": metrics,
        "mri_negative": metrics.get("mri_negative") or {},
        "mri_visible": metrics.get("mri_visible") or {},
    }
    table = Table(title=escape(title))
    table.add_column("metric")
    for name in subsets:
        table.add_column(name, justify="right")
    for key in SHOWN:
        table.add_row(key, *[fmt_number(values.get(key)) for values in subsets.values()])
    console.print(table)


def train_detection(out: Path, config: Path | None, flags: dict, params: dict) -> Path:
    """Fit the detector, then score its held-out test split into RUN/metrics.json.

    `flags` are the given `DetectionConfig` keys (they override `config`), `params` the given
    detector hyperparameters (`--epochs`, `--lr`, ...; merged into the config's `params`)."""
    from fusemed.diagnosis import evaluate_detector
    from fusemed.diagnosis.api import train_from_config
    from fusemed.diagnosis.config import DetectionConfig

    given = {k: v for k, v in flags.items() if v is not None}
    params = {k: v for k, v in params.items() if v is not None}
    if config is not None:
        cfg = DetectionConfig.from_yaml(config, **given, params=params)
    else:
        cfg = DetectionConfig(**given, params=params)
    console.print(f"[bold]fusemed train[/]: lesion detection {escape(repr(cfg.model))} on "
                  f"{escape(str(cfg.cohort))} (target {escape(cfg.target)}) -> {escape(str(out))}")
    run = train_from_config(cfg, out)
    print_detection_metrics(evaluate_detector(run, cfg.cohort), f"{out.name}: held-out test split")
    return run


def evaluate_detection(run: Path, cohort: Path | None) -> None:
    from fusemed.diagnosis import evaluate_detector

    if cohort is None:

        cohort = Path(load_yaml(run / "config.yaml")["cohort"])
        metrics = evaluate_detector(run, cohort)
    else:  # another cohort: every subject of it is new to the detector
        from fusemed.cohort import Cohort

        metrics = evaluate_detector(run, cohort, subjects=Cohort.load(cohort).subjects)
    console.print(f"metrics written to {escape(str(run / 'metrics.json'))}")
    print_detection_metrics(metrics, f"{run.name}: detection metrics")


def predict_detection(run: Path, cohort: Path, out: Path) -> None:
    from fusemed.diagnosis import predict_detector

    path = predict_detector(run, cohort, out)
    console.print(
        f"maps and cluster tables written to {escape(str(path))}/ (<subject>_prob.nii.gz, "
        f"<subject>_uncertainty.nii.gz, <subject>_clusters.csv)"
    )
