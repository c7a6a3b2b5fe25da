"""`fusemed train`: cross-validated training into a run folder (rerun the same command to resume)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from fusemed.cli.console import console, fmt_number


def train_command(
    out: Path = typer.Option(..., "--out", help="Run folder to write (or resume)."),
    cohort: Path | None = typer.Option(None, "--cohort", help="Cohort folder (cohort.yaml + manifest)."),
    target: str | None = typer.Option(None, "--target", help="Target declared in cohort.yaml."),
    fusion: str | None = typer.Option(
        None, "--fusion",
        help="auto (default: self-configure by inner CV), a fusion (early, late, concat, hemis, ...) or a classical "
        "baseline (logistic, gbm, cox).",
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Lesion detector when the target is a mask (hemis-unet by default; unet, siamese-ocsvm, zscore, "
        "surface-gnn, ...).",
    ),
    modalities: str | None = typer.Option(None, "--modalities", help="Comma-separated modalities (default all)."),
    folds: int | None = typer.Option(None, "--folds", help="Cross-validation folds."),
    epochs: int | None = typer.Option(None, "--epochs", help="Maximum epochs per fold."),
    seed: int | None = typer.Option(None, "--seed"),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    lr: float | None = typer.Option(None, "--lr"),
    spacing: float | None = typer.Option(None, "--spacing", help="Volume grid spacing in mm."),
    moddrop: float | None = typer.Option(None, "--moddrop", help="Modality dropout probability in training."),
    uncertainty: str | None = typer.Option(None, "--uncertainty", help="none, mc_dropout, ensemble, evidential."),
    calibrate: bool | None = typer.Option(None, "--calibrate/--no-calibrate", help="Post-hoc calibration."),
    alpha: float | None = typer.Option(None, "--alpha", help="Conformal miscoverage level."),
    calibration_fraction: float | None = typer.Option(
        None, "--calibration-fraction", help="Share of each training fold held out for calibration."
    ),
    accelerator: str | None = typer.Option(None, "--accelerator", help="Lightning accelerator (cpu, gpu, auto)."),
    devices: str | None = typer.Option(None, "--devices", help="Lightning devices (e.g. 2, or auto)."),
    strategy: str | None = typer.Option(None, "--strategy", help="Lightning strategy (auto, ddp, ...)."),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="YAML file of TrainConfig keys (DetectionConfig keys with `task: detection`); flags override it.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Train every fold, then write predictions.csv and metrics.json into OUT."""
    from fusemed.cli.detection import is_mask_target, train_detection
    from fusemed.training import TrainConfig, train_run

    if is_mask_target(cohort, target) or _detection_config(config):  # a lesion mask: detection, not prognosis
        train_detection(
            out,
            config,
            {"cohort": cohort, "target": target, "model": model, "spacing": spacing, "seed": seed,
             "modalities": modalities.split(",") if modalities else None},
            {"epochs": epochs, "lr": lr, "batch_size": batch_size, "modality_dropout": moddrop},
        )
        return
    flags = {
        "cohort": cohort,
        "target": target,
        "fusion": fusion,
        "modalities": modalities,
        "folds": folds,
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "spacing": spacing,
        "moddrop": moddrop,
        "uncertainty": uncertainty,
        "calibrate": calibrate,
        "alpha": alpha,
        "calibration_fraction": calibration_fraction,
        "accelerator": accelerator,
        "strategy": strategy,
        "progress": progress,
        "devices": (int(devices) if devices and devices.isdigit() else devices),
    }
    given = {k: v for k, v in flags.items() if v is not None}
    if config is not None:
        cfg = TrainConfig.from_yaml(config, **given)
    elif (out / "config.yaml").is_file() and not (cohort and target):
        cfg = TrainConfig.load_run(out).updated(**given)  # `fusemed train --out RUN` resumes
    else:
        missing = [f"--{k}" for k in ("cohort", "target") if k not in given]
        if missing:
            raise typer.BadParameter(f"give {' and '.join(missing)} (or --config FILE.yaml)")
        cfg = TrainConfig(**given)
    model = ("self-configured: " + ", ".join(cfg.model.search.candidates or ["default candidates"])
             if cfg.model.fusion == "auto" else f"{cfg.model.fusion}, up to {cfg.trainer.epochs} epochs")
    console.print(f"[bold]fusemed train[/]: {escape(str(cfg.cohort))} -> {escape(str(out))} ({model}; "
                  f"target {escape(cfg.target)}, {cfg.data.folds} folds)")
    run = train_run(cfg, out)
    _print_metrics(run / "metrics.json")


def _print_metrics(path: Path) -> None:
    import json

    from rich.table import Table

    if not path.is_file():  # a non-zero DDP rank writes nothing
        return
    metrics = json.loads(path.read_text())
    table = Table(title=escape(f"{path.parent.name}: out-of-fold metrics"))
    for col in ("pattern", "n", "auroc", "auprc", "balanced_accuracy", "brier", "c_index"):
        table.add_column(col, justify="left" if col == "pattern" else "right")
    rows = [("all", metrics), *metrics.get("per_pattern", {}).items()]
    for name, m in rows:
        shown = ("n", "auroc", "auprc", "balanced_accuracy", "brier", "c_index")
        table.add_row(escape(name), *[fmt_number(m.get(c)) for c in shown])
    console.print(table)
    if metrics.get("c_index_method"):  # survival: say what the "all" row and the pattern rows are
        spread = f" ± {fmt_number(metrics['c_index_sd'])} (SD over folds)" if metrics.get("c_index_sd") else ""
        pattern = next(iter(metrics.get("per_pattern", {}).values()), {}).get("c_index_method")
        console.print(f"c_index: {metrics['c_index_method']}{spread}" + (f"; patterns: {pattern}" if pattern else ""))
    rob = metrics.get("robustness", {})
    if rob.get("mean") is not None:
        console.print(f"robustness ({rob['metric']} / full): mean {rob['mean']:.3f}, worst {rob['worst']:.3f}")


def _detection_config(config: Path | None) -> bool:
    """True when a --config file describes a detection run (`task: detection`)."""
    if config is None or not config.is_file():
        return False
    from fusemed.io import load_yaml

    raw = load_yaml(config) or {}
    return isinstance(raw, dict) and raw.get("task") == "detection"
