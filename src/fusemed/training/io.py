"""Run-folder file helpers: the atomic writers (from :mod:`fusemed.io`) and the cohort fingerprint."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fusemed.io import atomic_save, atomic_write_csv, atomic_write_json, atomic_write_text

__all__ = ["atomic_save", "atomic_write_csv", "atomic_write_json", "atomic_write_text", "cohort_fingerprint"]


def cohort_fingerprint(root: Path) -> dict[str, Any]:
    """Hash of ``cohort.yaml``, the manifest and every other file's name, size and mtime.

    File contents are not read (a 200-subject cohort of volumes would take long to hash): a changed
    image changes its size or mtime, which is what ``evaluate`` checks against. ``files`` keeps each
    file's own entry so a refused resume can name what changed (:mod:`fusemed.training.resume`).
    """
    root = Path(root)
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    contents = {"cohort.yaml", "manifest.csv", "manifest.tsv"}
    total = 0
    per_file: dict[str, str] = {}
    for p in files:
        rel = p.relative_to(root).as_posix()
        digest.update(rel.encode())
        if rel in contents:
            content = hashlib.sha256(p.read_bytes())
            digest.update(content.digest())
            per_file[rel] = f"sha256:{content.hexdigest()}"
        else:
            st = p.stat()
            digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            per_file[rel] = f"{st.st_size}:{st.st_mtime_ns}"
            total += st.st_size
    return {"root": str(root.resolve()), "sha256": digest.hexdigest(), "n_files": len(files), "bytes": total,
            "files": per_file}
