"""``fit_member``: the one place a network is trained, for prognosis and lesion detection alike.

Why one function: devices (CPU, GPU, DDP), mixed precision, early stopping, best/last checkpoints and
exact resume after a kill are written once, here, on Lightning; a model only has to satisfy
:class:`fusemed.training.module.Trainable`. Layout of ``member_dir``::

    checkpoints/{best,last}.ckpt   best on the validation loss (when there is one), last after every epoch
    logs/version_0/metrics.csv     train_loss (and val_loss) per epoch, kept across resumes
    model.pt (+ model.json)        the kept weights; when present the member is loaded, not retrained
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.model_helpers import is_overridden

from fusemed.training.config import DeviceConfig, TrainerConfig
from fusemed.training.inference import load_weights, save_weights
from fusemed.training.module import FusemedModule, Trainable
from fusemed.training.resume import keep_log_before_resume, merge_resumed_log
from fusemed.training.rng import RngState

log = logging.getLogger(__name__)


def on_gpu(device: DeviceConfig) -> bool:
    """Whether the trainer will run on a CUDA GPU (``auto`` picks one when present)."""
    if device.accelerator in ("gpu", "cuda"):
        return True
    return device.accelerator == "auto" and torch.cuda.is_available()


def check_accelerator(device: DeviceConfig) -> None:
    """Refuse a GPU accelerator on a machine without one, before any data is read."""
    if device.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(f"accelerator {device.accelerator!r}: no CUDA GPU is visible on this machine "
                         "(torch.cuda.is_available() is False); use --accelerator cpu or auto")


def precision(device: DeviceConfig) -> str:
    """Lightning's precision: ``auto`` is ``16-mixed`` on a GPU and ``32-true`` elsewhere."""
    if device.precision != "auto":
        return device.precision
    return "16-mixed" if on_gpu(device) else "32-true"


def deterministic(device: DeviceConfig) -> bool | str:
    """Deterministic algorithms on CPU; on an accelerator only a warning where none exists (Lightning "warn")."""
    if not device.deterministic:
        return False
    return "warn" if on_gpu(device) or device.accelerator not in ("cpu", "auto") else True


def fit_member(run: TrainerConfig, model: torch.nn.Module, data: L.LightningDataModule, member_dir: Path,
               seed: int, meta: dict[str, Any], *, moddrop: float = 0.0, lr_power: float = 0.0,
               callbacks: Sequence[Callback] = (), moddrop_fn: Any = None) -> torch.nn.Module:
    """Train ``model`` on ``data`` for ``run.epochs`` (resuming from ``last.ckpt``), keep its best weights.

    With a validation loader in ``data``, early stopping (``run.patience``) and the best checkpoint follow
    ``val_loss``; without one (detectors draw new training samples every epoch) the last epoch is kept.
    ``lr_power`` > 0 decays the learning rate polynomially to 0 over ``run.epochs`` (nnU-Net's schedule).
    A datamodule whose ``redraws`` is true (new samples every epoch) has its loader rebuilt every epoch;
    the others keep one loader, so a prognosis run trains on exactly the batches it always did.
    A member whose ``model.pt`` exists is loaded, not retrained. Returns the model on CPU in eval mode.
    """
    if not isinstance(model, Trainable):
        raise TypeError(f"{type(model).__name__} cannot be trained here: it needs forward(inputs, present) and "
                        "loss(output, target) (fusemed.training.module.Trainable)")
    weights = member_dir / "model.pt"
    if weights.is_file():
        return load_weights(model, weights)
    check_accelerator(run)
    L.seed_everything(seed, workers=True, verbose=False)
    module = FusemedModule(model, meta["modalities"], run.lr, run.weight_decay, moddrop, seed, moddrop_fn,
                           lr_power=lr_power)
    folder = member_dir / "checkpoints"
    # last.ckpt after every epoch, improved or not: a kill loses at most the epoch in progress
    every_epoch = ModelCheckpoint(dirpath=folder, filename="last", monitor=None, save_top_k=1, every_n_epochs=1,
                                  enable_version_counter=False)
    watched: list[Callback] = [every_epoch]
    best = None
    if is_overridden("val_dataloader", data):
        best = ModelCheckpoint(dirpath=folder, filename="best", monitor="val_loss", mode="min", save_top_k=1,
                               enable_version_counter=False)
        # best before last: last.ckpt then holds the best score of the epoch it closes (resume keeps it)
        watched = [EarlyStopping("val_loss", patience=run.patience, mode="min"), best, every_epoch]
    trainer = L.Trainer(
        max_epochs=run.epochs, accelerator=run.accelerator, devices=run.devices, strategy=run.strategy,
        precision=precision(run), deterministic=deterministic(run),
        callbacks=[*watched, RngState(), *callbacks],
        logger=CSVLogger(member_dir, name="logs", version=0), default_root_dir=member_dir,
        enable_progress_bar=run.progress, enable_model_summary=False, log_every_n_steps=1,
        num_sanity_val_steps=0, reload_dataloaders_every_n_epochs=int(getattr(data, "redraws", False)),
    )
    last = folder / "last.ckpt"
    log_file = member_dir / "logs" / "version_0" / "metrics.csv"
    if last.is_file():
        log.info("%s: resuming from %s", member_dir.name, last)
        if trainer.is_global_zero:
            keep_log_before_resume(log_file)  # Lightning's CSV logger would delete the pre-kill epochs
    with warnings.catch_warnings():
        if best is None:  # no validation split is by design here (detectors), not a forgotten loader
            warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
        trainer.fit(module, datamodule=data, ckpt_path=str(last) if last.is_file() else None, weights_only=True)
    if trainer.is_global_zero:
        merge_resumed_log(log_file)
    if not trainer.is_global_zero:
        return model
    kept = Path(best.best_model_path) if best is not None and best.best_model_path else last
    state = torch.load(kept, map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    model.cpu().eval()
    score = None if best is None else best.best_model_score
    save_weights(model, weights, {**meta, "best_checkpoint": kept.name, "epochs_trained": trainer.current_epoch,
                                  "best_val_loss": None if score is None else float(score)})
    return model
