"""Atomic file writes shared by every stage: a reader (or a resumed run) never sees half a file.

Each writer goes to a temporary file beside the target, then ``os.replace`` renames it in one step.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def atomic_save(path: str | Path, save: Callable[[Path], None]) -> Path:
    """Write through ``save(tmp)`` (``torch.save``, ``np.savez``, ``img.to_filename``…), then rename.

    The temporary file keeps ``path``'s suffixes, so writers that infer the format from the name
    (``.nii.gz``) write the right one; it is made world-readable like any ordinary output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix="".join(path.suffixes[-2:]))
    os.close(fd)
    try:
        save(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes files private; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_save(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_csv(path: str | Path, frame: pd.DataFrame, **to_csv: Any) -> Path:
    to_csv.setdefault("index", False)
    return atomic_save(path, lambda tmp: frame.to_csv(tmp, **to_csv))


def to_json_safe(value: Any) -> Any:
    """NaN/Inf -> None and numpy scalars/arrays -> Python, so the JSON is strict."""
    if isinstance(value, dict):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json_safe(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(to_json_safe(data), indent=2, allow_nan=False) + "\n")
