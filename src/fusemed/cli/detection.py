"""`fusemed train` on a lesion-mask target, and how detection metrics are shown.

Prognosis and detection share the verbs (one CLI, the pipeline's stages); which one runs is decided by
data (the target's kind in ``cohort.yaml``, or the run's own ``run.json``), never by a flag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from fusemed.cli.console import console, fmt_number

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


def train_detection(out: Path, config: Path | None, flags: dict[str, Any], resumed: Any = None) -> Path:
    """Fit the detector (its network on the shared Lightning trainer; rerun to resume), then score its
    held-out test split into RUN/metrics.json.

    ``flags`` are the given `fusemed train` flags (they override ``config``, or the ``resumed`` run's config);
    a flag detection does not take was refused before (:func:`fusemed.cli.flags.refuse_for_detection`).
    """
    from fusemed.cli.flags import refuse_detector_params, refuse_for_detection
    from fusemed.diagnosis import evaluate_detector
    from fusemed.diagnosis.api import train_from_config
    from fusemed.diagnosis.config import DetectionConfig

    keys = refuse_for_detection(flags)
    if config is not None:
        cfg = DetectionConfig.from_yaml(config, **keys)
    elif resumed is not None:  # `fusemed train --out RUN`: its saved config, the given flags merged in
        saved = resumed.config.model_dump(mode="json")
        merged = {key: {**saved[key], **keys.pop(key)} for key in ("params", "trainer")}
        cfg = DetectionConfig.model_validate({**saved, **keys, **merged})
    else:
        cfg = DetectionConfig(**keys)
    refuse_detector_params(flags, cfg.model)
    console.print(f"[bold]fusemed train[/]: lesion detection {escape(repr(cfg.model))} on "
                  f"{escape(str(cfg.cohort))} (target {escape(cfg.target)}) -> {escape(str(out))}")
    run = train_from_config(cfg, out)
    print_detection_metrics(evaluate_detector(run, cfg.cohort), f"{out.name}: held-out test split")
    return run
