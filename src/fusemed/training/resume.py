"""What changed since a run started: a resumed run must train on the config and cohort it began with.

``train_run`` records ``cohort_fingerprint.json``; a rerun compares the cohort's fingerprint now with the
recorded one and is refused, naming the files that differ, when they are not the same. Its config is
compared leaf by leaf (:func:`config_changes`), with the device settings free to change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fusemed.training.io import cohort_fingerprint

#: config keys that may change between a run and its resumption (they change speed, not results);
#: ``epochs`` is not one of them: more epochs on a finished run would silently mean another experiment
RESUMABLE_KEYS = {"trainer.accelerator", "trainer.devices", "trainer.strategy", "trainer.num_workers",
                  "trainer.progress", "data.cache"}


def config_changes(old: BaseModel, new: BaseModel) -> list[str]:
    """The config leaves (``trainer.lr``, ``params``, ...) that differ, device settings aside."""
    before, after = _leaves(old.model_dump(mode="json")), _leaves(new.model_dump(mode="json"))
    return sorted(k for k in after.keys() | before.keys() if k not in RESUMABLE_KEYS and before.get(k) != after.get(k))


def _leaves(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"trainer": {"lr": 1}}`` -> ``{"trainer.lr": 1}`` (nested config records compared leaf by leaf)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict) and key in ("data", "model", "uncertainty", "trainer"):
            out.update(_leaves(value, f"{key}."))
        else:
            out[prefix + key] = value
    return out


def fingerprint_changes(old: dict, new: dict, ignore: Path | None = None, limit: int = 5) -> list[str]:
    """Human-readable differences between two cohort fingerprints (empty when they agree).

    Files under ``ignore`` (a run folder kept inside the cohort folder) are not the cohort's.
    """
    if "files" not in old or "files" not in new:  # a run recorded before per-file entries existed
        return [] if old.get("sha256") == new.get("sha256") else ["cohort files (fingerprint differs)"]
    root = Path(new.get("root", "."))
    skip = None
    if ignore is not None:
        try:
            skip = ignore.resolve().relative_to(root).as_posix() + "/"
        except ValueError:
            skip = None

    def keep(rel: str) -> bool:
        return skip is None or not rel.startswith(skip)

    before = {k: v for k, v in old["files"].items() if keep(k)}
    after = {k: v for k, v in new["files"].items() if keep(k)}
    changes: list[str] = []
    for label, names in (
        ("changed", sorted(k for k in before.keys() & after.keys() if before[k] != after[k])),
        ("removed", sorted(before.keys() - after.keys())),
        ("added", sorted(after.keys() - before.keys())),
    ):
        if names:
            shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
            changes.append(f"{label}: {shown}")
    return changes


def cohort_changes(run: Path, cohort_root: Path) -> list[str]:
    """What differs between the cohort now and the fingerprint ``run`` recorded (empty if none recorded)."""
    recorded = Path(run) / "cohort_fingerprint.json"
    if not recorded.is_file():
        return []
    return fingerprint_changes(json.loads(recorded.read_text()), cohort_fingerprint(Path(cohort_root)), ignore=run)


def _aside(log_file: Path) -> Path:
    return log_file.with_name(log_file.stem + ".before-resume.csv")


def keep_log_before_resume(log_file: Path) -> None:
    """Move a run's ``metrics.csv`` aside before Lightning's CSV logger replaces it on resume.

    If an earlier resume was itself killed, its partial log is first appended to the kept one.
    """
    log_file = Path(log_file)
    if not log_file.is_file():
        return
    aside = _aside(log_file)
    if aside.is_file():
        merge_resumed_log(log_file)
    log_file.replace(aside)


def merge_resumed_log(log_file: Path) -> None:
    """Append the resumed run's ``metrics.csv`` to the log kept aside, into ``metrics.csv``."""
    import pandas as pd

    from fusemed.io import atomic_save

    log_file, aside = Path(log_file), _aside(Path(log_file))
    if not aside.is_file():
        return
    frames = [pd.read_csv(aside)] + ([pd.read_csv(log_file)] if log_file.is_file() else [])
    merged = pd.concat(frames, ignore_index=True)
    atomic_save(log_file, lambda tmp: merged.to_csv(tmp, index=False))
    aside.unlink()
