"""Atomic file writes shared by every stage: a reader (or a resumed run) never sees half a file.

Each writer goes to a temporary file beside the target, then ``os.replace`` renames it in one step.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

#: The subject-id rule (docs/security.md): 1-128 characters; letters (any script), digits, ``_ . - `` and
#: space; starting with a letter or digit; not ending with ``.`` or space; no ``..``; not a Windows device
#: name. So an id is always one safe file-name component: no separator, no control character, never
#: absolute, never a leading ``-``/``.``, never a spreadsheet formula (``= + - @``), never Rich markup.
SUBJECT_ID_PATTERN = re.compile(r"[^\W_][\w.\- ]{0,127}")
_DEVICE_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


class UnsafePathError(ValueError):
    """A path built from data (a subject id, a manifest cell) would leave the folder it belongs to."""


def subject_id_problem(subject: str) -> str | None:
    """Why ``subject`` is not a safe subject id (``None`` when it is)."""
    rule = ("letters, digits, '_', '.', '-' and spaces, starting with a letter or digit, "
            "at most 128 characters")
    if not SUBJECT_ID_PATTERN.fullmatch(subject):
        return f"subject id is not a safe file name ({rule})"
    if ".." in subject:
        return "subject id is not a safe file name (it contains '..')"
    if subject.endswith((".", " ")):
        return "subject id is not a safe file name (it ends with '.' or a space)"
    if subject.split(".")[0].strip().lower() in _DEVICE_NAMES:
        return "subject id is not a safe file name (a reserved device name on Windows)"
    return None


def check_subject_id(subject: str) -> str:
    """``subject`` unchanged, or :class:`UnsafePathError` saying which rule it breaks."""
    why = subject_id_problem(subject)
    if why:
        raise UnsafePathError(f"{why}: {subject!r}")
    return subject


def output_path(folder: str | Path, name: str) -> Path:
    """``folder / name`` resolved, refused (:class:`UnsafePathError`) unless it stays inside ``folder``.

    Every output file whose name comes from data (``OUT/{subject}_prob.nii.gz``…) is built here, so
    ``../``, absolute names and symlinks pointing out of the folder can never place a file elsewhere.
    """
    base = Path(folder).resolve()
    target = (base / name).resolve()
    if target == base or not target.is_relative_to(base):
        raise UnsafePathError(f"refusing to write {name!r}: it would land outside {base}")
    return target


#: Largest YAML file the tool reads (cohort.yaml, --config, run config.yaml): 1 MiB.
MAX_YAML_BYTES = 1 << 20
#: Deepest nesting of lists/mappings accepted in a YAML file.
MAX_YAML_DEPTH = 50


class YamlError(ValueError):
    """A YAML file the tool will not read: too large, not UTF-8, an alias, or not valid YAML."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases (``*name``): they are how a 1 KB file expands to gigabytes."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise YamlError(f"YAML aliases (*name) are not allowed (line {mark.line + 1}); write the value out")
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlError(f"YAML nested deeper than {MAX_YAML_DEPTH} levels (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_yaml(path: str | Path, *, max_bytes: int = MAX_YAML_BYTES, missing_ok: bool = False) -> Any:
    """Read a YAML file safely: at most ``max_bytes``, UTF-8, no aliases, no Python objects.

    Every YAML file fusemed reads goes through here. Errors (:class:`YamlError`, a ``ValueError``) name
    the file and the line, never the file's contents. ``missing_ok`` returns ``None`` for an absent file.
    """
    path = Path(path)
    if missing_ok and not path.is_file():
        return None
    if path.stat().st_size > max_bytes:
        raise YamlError(f"{path}: larger than {max_bytes} bytes; refusing to read it as YAML")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise YamlError(f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except YamlError as err:
        raise YamlError(f"{path}: {err}") from None
    except yaml.MarkedYAMLError as err:
        where = f"line {err.problem_mark.line + 1}, column {err.problem_mark.column + 1}" if err.problem_mark else ""
        raise YamlError(f"{path}: not valid YAML ({where}: {err.problem or err.context})") from None
    except yaml.YAMLError as err:
        raise YamlError(f"{path}: not valid YAML ({type(err).__name__})") from None
    except RecursionError:
        raise YamlError(f"{path}: YAML nested too deeply") from None


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


#: First characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """``'`` before a text cell a spreadsheet would execute (``=1+1`` -> ``'=1+1``); numbers kept."""
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return value
    try:
        float(value)
        return value  # "-1.5" is a number, not a formula
    except ValueError:
        return "'" + value


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (and column names) cannot run as spreadsheet formulas."""
    text = [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]
    if not text and not any(isinstance(c, str) and neutralise_cell(c) != c for c in frame.columns):
        return frame
    out = frame.copy()
    for c in text:
        out[c] = out[c].map(neutralise_cell)
    return out.rename(columns={c: neutralise_cell(c) for c in out.columns if isinstance(c, str)})


def atomic_write_csv(path: str | Path, frame: pd.DataFrame, **to_csv: Any) -> Path:
    """Write a CSV atomically; text cells starting with ``= + - @`` (tab, CR) get a ``'`` prefix."""
    to_csv.setdefault("index", False)
    safe = neutralise_formulas(frame)
    return atomic_save(path, lambda tmp: safe.to_csv(tmp, **to_csv))


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
