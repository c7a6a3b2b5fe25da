"""`fusemed train`: cross-validated training (or lesion detection) into a run folder; rerun to resume.

Order of checks, so a mistake costs seconds, not a preprocessing pass: every given flag's value on its
own (names with "did you mean"; no file read), then ``cohort.yaml`` alone to learn the target's kind (or
``RUN/run.json`` when resuming), then each flag against that kind (:mod:`fusemed.cli.flags`): a flag
the kind does not take is refused with the reason, never dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from fusemed.cli.console import console, fmt_number
from fusemed.cli.detection import train_detection


def train_command(
    out: Path = typer.Option(..., "--out", help="Run folder to write (or resume)."),
    cohort: Path | None = typer.Option(None, "--cohort", help="Cohort folder (cohort.yaml + manifest)."),
    target: str | None = typer.Option(
        None, "--target", help="Target declared in cohort.yaml: binary, multiclass or survival (prognosis), or a "
        "lesion mask (detection)."),
    fusion: str | None = typer.Option(
        None, "--fusion",
        help="Prognosis: auto (default: self-configure by inner CV), a fusion (early, late, concat, hemis, ...) or a "
        "classical baseline (logistic, gbm, cox, rsf).",
    ),
    model: str | None = typer.Option(
        None, "--model",
        help="Detection: the lesion detector (hemis-unet by default; unet, siamese-ocsvm, zscore, surface-gnn, "
        "volume-surface, ...).",
    ),
    modalities: str | None = typer.Option(None, "--modalities", help="Comma-separated modalities (default all)."),
    folds: int | None = typer.Option(None, "--folds", help="Prognosis: cross-validation folds."),
    epochs: int | None = typer.Option(None, "--epochs", help="Maximum epochs per fold (detection: the detector's)."),
    patience: int | None = typer.Option(None, "--patience", help="Prognosis: early-stopping patience in epochs."),
    seed: int | None = typer.Option(None, "--seed"),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    lr: float | None = typer.Option(None, "--lr"),
    spacing: float | None = typer.Option(None, "--spacing", help="Volume grid spacing in mm."),
    moddrop: float | None = typer.Option(None, "--moddrop", help="Modality dropout probability in training."),
    uncertainty: str | None = typer.Option(
        None, "--uncertainty", help="Prognosis: none, mc_dropout, ensemble, evidential."),
    calibrate: bool | None = typer.Option(None, "--calibrate/--no-calibrate", help="Prognosis: post-hoc calibration."),
    alpha: float | None = typer.Option(None, "--alpha", help="Prognosis: conformal miscoverage level."),
    calibration_fraction: float | None = typer.Option(
        None, "--calibration-fraction",
        help="Share of each training fold (detection: of the non-test subjects) held out for calibration."),
    accelerator: str | None = typer.Option(
        None, "--accelerator", help="Lightning accelerator (cpu, gpu, auto)."),
    devices: str | None = typer.Option(None, "--devices", help="Lightning devices (e.g. 2, or auto)."),
    strategy: str | None = typer.Option(None, "--strategy", help="Lightning strategy (auto, ddp, ...)."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bars (default on)."),
    config: Path | None = typer.Option(
        None, "--config",
        help="YAML file of TrainConfig keys (DetectionConfig keys with `task: detection`); flags override it.",
    ),
) -> None:
    """Train every fold, then write predictions.csv and metrics.json into OUT."""
    flags = {k: v for k, v in locals().items() if k not in ("out", "config") and v is not None}
    if isinstance(flags.get("devices"), str) and flags["devices"].isdigit():
        flags["devices"] = int(flags["devices"])
    from fusemed.cli.flags import check_values, refuse_for_detection, refuse_for_prognosis

    check_values(flags)  # reads no file
    if "accelerator" in flags:  # a GPU asked for on a machine without one: refused now, not after preprocessing
        from fusemed.training.config import DeviceConfig
        from fusemed.training.fit import check_accelerator

        check_accelerator(DeviceConfig(accelerator=flags["accelerator"]))
    kind, target, target_kind, resumed = run_kind(out, config, flags)  # reads cohort.yaml (or RUN/run.json) only
    if kind == "prognosis":
        refuse_for_prognosis(flags, target, target_kind)
    else:
        refuse_for_detection(flags)
    TRAINERS[kind](out, config, flags, resumed)


def run_kind(out: Path, config: Path | None, flags: dict[str, Any]) -> tuple[str, str, str, Any]:
    """The run kind the target asks for, the target's name and kind (from ``cohort.yaml``), and the run
    resumed (``--out`` alone) or None."""
    from fusemed.io import load_yaml
    from fusemed.run import Run

    raw: dict[str, Any] = {}
    if config is not None:
        raw = load_yaml(config) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{config}: expected a mapping of config keys, found {type(raw).__name__}")
    cohort = flags.get("cohort") or (config.parent / raw["cohort"] if "cohort" in raw else None)
    target = flags.get("target") or raw.get("target")
    if config is None and not (cohort and target) and ((out / "run.json").is_file() or (out / "config.yaml").is_file()):
        run = Run.open(out)  # `fusemed train --out RUN` resumes; an older layout is refused here
        return run.kind, run.task.name, run.task.kind, run
    if raw.get("task") == "detection" and not (cohort and target):
        return "detection", "lesion", "mask", None  # DetectionConfig's default target applies
    missing = [f"--{k}" for k, v in (("cohort", cohort), ("target", target)) if not v]
    if missing:
        raise typer.BadParameter(f"give {' and '.join(missing)} (or --config FILE.yaml)")
    from fusemed.choices import look_up
    from fusemed.cohort import CohortSpec
    from fusemed.run.kinds import kind_of_target

    spec = CohortSpec.from_yaml(Path(cohort) / "cohort.yaml")
    name = look_up(str(target), list(spec.targets))
    target_kind = spec.targets[name].kind.value
    kind = kind_of_target(target_kind).name
    if raw.get("task") == "detection" and kind != "detection":
        raise ValueError(f"{config} says `task: detection`, but target {name!r} is {target_kind}, not a lesion mask")
    return kind, name, target_kind, None


def train_prognosis(out: Path, config: Path | None, flags: dict[str, Any], resumed: Any) -> None:
    """Cross-validated training (``fusemed.training.train_run``) of a ``TrainConfig`` made of the flags."""
    from fusemed.training import TrainConfig, train_run

    if config is not None:
        cfg = TrainConfig.from_yaml(config, **flags)
    elif resumed is not None:
        cfg = resumed.config.updated(**flags)
    else:
        cfg = TrainConfig(**flags)
    model = ("self-configured: " + ", ".join(cfg.model.search.candidates or ["default candidates"])
             if cfg.model.fusion == "auto" else f"{cfg.model.fusion}, up to {cfg.trainer.epochs} epochs")
    console.print(f"[bold]fusemed train[/]: {escape(str(cfg.cohort))} -> {escape(str(out))} ({model}; "
                  f"target {escape(cfg.target)}, {cfg.data.folds} folds)")
    run = train_run(cfg, out)
    if (run / "metrics.json").is_file():  # a non-zero DDP rank writes nothing
        import json

        print_metrics(json.loads((run / "metrics.json").read_text()), f"{run.name}: out-of-fold metrics")


#: run kind -> how `fusemed train` trains it
TRAINERS = {"prognosis": train_prognosis, "detection": train_detection}


def print_metrics(metrics: dict[str, Any], title: str) -> None:
    """One row per missing-modality pattern (and ``all``): discrimination and calibration metrics."""
    from rich.table import Table

    table = Table(title=escape(title))
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
