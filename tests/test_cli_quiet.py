"""The CLI shows fusemed's output, not Lightning's banners and tips or third-party deprecation notices."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from training_helpers import SMALL_MODEL, make_training_cohort
from typer.testing import CliRunner

from fusemed.cli import quiet
from fusemed.cli.main import app

NOISE = ("Tip:", "litmodels", "litlogger", "GPU available", "TPU available", "CUDA device", "Warning",
         "deprecated", "site-packages", "num_workers", "log_every_n_steps")


@pytest.fixture
def restore_output() -> Iterator[None]:
    """Undo what configure_output changed process-wide (logger levels, handler, env); filters: catch_warnings."""
    names = ["fusemed", *quiet.LIGHTNING_PACKAGES, *quiet._lightning_subloggers()]
    levels = {n: logging.getLogger(n).level for n in names}
    handlers = list(logging.getLogger("fusemed").handlers)
    env = os.environ.get(quiet.ENV)
    with warnings.catch_warnings():
        yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger("fusemed").handlers[:] = handlers
    os.environ.pop(quiet.ENV, None)
    if env is not None:
        os.environ[quiet.ENV] = env


def _warned(module: str, category: type[Warning]) -> bool:
    with warnings.catch_warnings(record=True) as seen:
        warnings.warn_explicit("noise", category, f"/x/{module.replace('.', '/')}.py", 1, module=module,
                               registry={})
    return bool(seen)


def test_quiet_filters_only_third_party_warnings_and_verbose_restores_them(restore_output: None) -> None:
    warnings.simplefilter("always")
    quiet.configure_output(verbose=False)
    assert not _warned("lightning.pytorch.trainer.connectors.data_connector", UserWarning)  # PossibleUserWarning
    assert not _warned("torch.utils._pytree", FutureWarning)
    assert not _warned("monai.transforms", DeprecationWarning)
    assert _warned("torch.nn.modules", UserWarning)  # a real problem torch reports stays visible
    assert _warned("fusemed.training.runner", DeprecationWarning)  # fusemed's own: never filtered
    assert _warned("fusemed.training.runner", UserWarning)
    assert _warned("torchiolike", DeprecationWarning)  # module names are matched as packages, not prefixes
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")  # GPU available, Tip, CUDA device
    assert not rank_zero.isEnabledFor(logging.INFO) and os.environ[quiet.ENV] == "1"
    for name in ("lightning.pytorch.accelerators.cuda", "lightning.fabric.utilities.rank_zero"):  # LOCAL_RANK, CUDA
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
    quiet.configure_output(verbose=False)  # idempotent: one handler, filters not duplicated
    assert len([h for h in logging.getLogger("fusemed").handlers if isinstance(h, quiet._CurrentStderr)]) == 1
    quiet.configure_output(verbose=True)
    assert _warned("torch.utils._pytree", FutureWarning) and _warned("lightning.pytorch.trainer", UserWarning)
    logging.getLogger("lightning.pytorch").setLevel(logging.INFO)  # what Lightning does on import
    assert rank_zero.isEnabledFor(logging.INFO) and logging.getLogger("fusemed").isEnabledFor(logging.INFO)
    assert quiet.ENV not in os.environ


def test_train_prints_no_third_party_noise_and_verbose_shows_lightning(
        tmp_path: Path, restore_output: None, capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    cohort = make_training_cohort(tmp_path / "cohort", n=12)
    config = tmp_path / "model.yaml"
    config.write_text(yaml.safe_dump({"model": SMALL_MODEL, "spacing": 4.0, "batch_size": 4}))
    args = ["train", "--cohort", str(cohort), "--target", "outcome", "--config", str(config), "--fusion", "concat",
            "--folds", "2", "--epochs", "1"]
    runner = CliRunner()
    caplog.set_level(logging.INFO)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # nothing deduplicated away: every warning that passes is seen
        result = runner.invoke(app, [*args, "--out", str(tmp_path / "quiet")])
    assert result.exit_code == 0, result.output
    shown = result.output + "".join(capfd.readouterr()) + caplog.text
    assert "out-of-fold metrics" in shown
    assert not [n for n in NOISE if n in shown], shown
    assert not [w for w in seen if "site-packages" in w.filename], [str(w.message) for w in seen]
    caplog.clear()
    result = runner.invoke(app, ["--verbose", *args, "--out", str(tmp_path / "verbose")])
    assert result.exit_code == 0, result.output
    assert "GPU available" in caplog.text + result.output + "".join(capfd.readouterr())
