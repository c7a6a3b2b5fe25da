"""Small file helpers for run folders: atomic writes, JSON without NaN, the cohort fingerprint."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Write through ``write(tmp)`` into a temp file beside ``path``, then rename: readers never see half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return _atomic(path, lambda tmp: tmp.write_text(text))


def _clean(value: Any) -> Any:
    """NaN/Inf -> None and numpy scalars -> Python, so the JSON is strict."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def atomic_write_json(path: Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(_clean(data), indent=2, allow_nan=False) + "\n")


def atomic_write_csv(path: Path, frame: pd.DataFrame) -> Path:
    return _atomic(path, lambda tmp: frame.to_csv(tmp, index=False))


def atomic_save(path: Path, save: Callable[[Path], None]) -> Path:
    """Atomic write for writers that take a path (``torch.save``, ``np.savez``)."""
    return _atomic(path, save)


def cohort_fingerprint(root: Path) -> dict[str, Any]:
    """Hash of ``cohort.yaml``, the manifest and every other file's name, size and mtime.

    File contents are not read (a 200-subject cohort of volumes would take long to hash): a changed
    image changes its size or mtime, which is what ``evaluate`` checks against.
    """
    root = Path(root)
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    contents = {"cohort.yaml", "manifest.csv", "manifest.tsv"}
    total = 0
    for p in files:
        rel = p.relative_to(root).as_posix()
        digest.update(rel.encode())
        if rel in contents:
            digest.update(hashlib.sha256(p.read_bytes()).digest())
        else:
            st = p.stat()
            digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            total += st.st_size
    return {"root": str(root.resolve()), "sha256": digest.hexdigest(), "n_files": len(files), "bytes": total}
