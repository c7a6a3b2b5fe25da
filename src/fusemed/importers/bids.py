"""``fusemed import bids``: a BIDS dataset (and its derivatives) becomes a standard cohort folder.

pybids (``bids.BIDSLayout``) indexes the dataset; each modality is picked per subject by BIDS entities
(suffix, acquisition, ceagent, tracer, space, desc, session …); targets and tabular modalities come
from ``participants.tsv`` and ``phenotype/*.tsv``; FreeSurfer subjects in ``derivatives/`` become a
surface modality. No image is copied: the manifest points at the BIDS files (relative paths or
symlinks). Only what fusemed cannot read as is (FreeSurfer ``.mgh``/curv features, a connectome TSV
with labels) is converted into ``COHORT/derived/``.

Every problem is collected and reported at once (subject, session, file); the cohort is written only
when there is none, and the import ends by running ``validate_cohort`` on what it wrote.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from fusemed.cohort.problems import CohortError, Problem
from fusemed.cohort.readers import ReadError, read_graph
from fusemed.cohort.spec import MESH_VERTICES, CohortSpec
from fusemed.cohort.validate import ValidationReport, validate_cohort
from fusemed.cohort.write import write_cohort
from fusemed.importers.bids_config import (
    DEFAULT_SURFACE_PATTERNS,
    EXTENSIONS,
    BidsImportConfig,
    ModalityRule,
    SiteRule,
    TargetRule,
    load_import_config,
)
from fusemed.io import atomic_save

#: Read when ``--config`` is not given and the dataset carries its own import rules (BIDS allows
#: anything under ``code/``); ``fusemed simulate --layout bids`` writes it.
DATASET_CONFIG = "code/fusemed-import.yaml"
LINK_MODES = ("auto", "relative", "symlink")
MISSING = ("", "n/a", "N/A", "NA", "nan")
HEMIS = ("lh", "rh")


@dataclass
class ImportResult:
    """What the import did: where, how, what it noticed, and the validation of the written cohort."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report: ValidationReport | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and (self.report is None or self.report.ok)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text.strip()).strip("-") or "bids-cohort"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


# -- tables ------------------------------------------------------------------------------------------


class _Tables:
    """participants.tsv and phenotype/*.tsv: text cells by participant, each column from one table."""

    def __init__(self, root: Path, problems: list[Problem], warnings: list[str]) -> None:
        self.root, self.problems = root, problems
        self.rows: dict[str, dict[str, tuple[str, str, int]]] = {}  # subject -> column -> (text, file, line)
        self.source: dict[str, list[str]] = {}  # column -> tables holding it
        self.order: list[str] = []  # participants in participants.tsv order
        self.participants_columns: list[str] = []
        files = [root / "participants.tsv"] if (root / "participants.tsv").is_file() else []
        if not files:
            warnings.append("no participants.tsv: subjects are taken from the sub-* folders, without table data")
        files += sorted((root / "phenotype").glob("*.tsv"))
        for path in files:
            self._read(path)

    def _read(self, path: Path) -> None:
        rel = str(path.relative_to(self.root))
        try:
            frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        except Exception as err:
            self.problems.append(Problem(f"unreadable table ({type(err).__name__})", file=rel))
            return
        if "participant_id" not in frame.columns:
            self.problems.append(Problem("no participant_id column", file=rel, line=1))
            return
        columns = [c for c in frame.columns if c != "participant_id"]
        if rel == "participants.tsv":
            self.participants_columns = columns
        for c in columns:
            self.source.setdefault(c, []).append(rel)
        for i, row in enumerate(frame.to_dict("records")):
            pid = row["participant_id"].strip()
            if not pid.startswith("sub-"):
                self.problems.append(
                    Problem(f"participant_id {pid!r} does not start with 'sub-'", file=rel, line=i + 2)
                )
                continue
            if rel == "participants.tsv":
                self.order.append(pid)
            cells = self.rows.setdefault(pid, {})
            for c in columns:
                text = row[c].strip()
                cells[c] = ("" if text in MISSING else text, rel, i + 2)

    def has(self, column: str) -> bool:
        return column in self.source

    def cell(self, subject: str, column: str) -> tuple[str, str | None, int | None]:
        """(text, table, line); text ``""`` when missing."""
        text, rel, line = self.rows.get(subject, {}).get(column, ("", None, None))
        return text, rel or (self.source.get(column) or [None])[0], line


# -- FreeSurfer -----------------------------------------------------------------------------------------


def _read_fs_feature(path: Path) -> np.ndarray:
    """One hemisphere's per-vertex values from ``.mgh``/``.mgz`` (nibabel image) or a curv-format file."""
    try:
        if path.name.endswith((".mgh", ".mgz")):
            data = np.asarray(nib.load(str(path)).get_fdata(dtype=np.float32)).reshape(-1)
        else:
            data = np.asarray(nib.freesurfer.read_morph_data(str(path)), dtype=np.float32)
    except Exception as err:
        raise ReadError(f"unreadable FreeSurfer file ({type(err).__name__})") from None
    return data.astype(np.float32)


def _freesurfer_roots(bids_root: Path) -> list[Path]:
    """Folders under derivatives/ that hold FreeSurfer subjects (``sub-*/surf``), nested ones too."""
    found = []
    deriv = bids_root / "derivatives"
    if deriv.is_dir():
        for surf in sorted(deriv.glob("**/sub-*/surf")):
            if surf.is_dir() and surf.parent.parent not in found:
                found.append(surf.parent.parent)
    return found


# -- the importer ---------------------------------------------------------------------------------------


class _Importer:
    def __init__(self, bids_root: Path, out: Path, config: BidsImportConfig, link: str) -> None:
        self.bids, self.out, self.config = bids_root, out, config
        self.result = ImportResult(out)
        self.problems, self.warnings, self.notes = self.result.problems, self.result.warnings, self.result.notes
        self.link = link
        self.derived: dict[Path, Any] = {}  # file under out/derived -> arrays to write
        self.symlinks: dict[Path, Path] = {}  # link under out -> BIDS file

    def rel(self, path: str | Path) -> str:
        try:
            return os.path.relpath(path, self.bids)
        except ValueError:
            return str(path)

    # -- layout --------------------------------------------------------------------------------------
    def layout(self) -> Any:
        import bids

        derivatives = []
        deriv = self.bids / "derivatives"
        if deriv.is_dir():
            for sub in sorted(p for p in deriv.iterdir() if p.is_dir()):
                if (sub / "dataset_description.json").is_file():
                    derivatives.append(str(sub))
                elif sub not in _freesurfer_roots(self.bids) and not any(
                    r.is_relative_to(sub) for r in _freesurfer_roots(self.bids)
                ):
                    self.warnings.append(
                        f"derivatives/{sub.name} has no dataset_description.json: pybids does not index it"
                    )
        try:
            return bids.BIDSLayout(str(self.bids), validate=False, derivatives=derivatives or False)
        except Exception as err:  # pybids raises many types for a broken dataset
            self.problems.append(
                Problem(f"pybids cannot index the dataset ({type(err).__name__}: {err})", file=self.bids)
            )
            return None

    # -- rules ---------------------------------------------------------------------------------------
    def default_modalities(self, layout: Any) -> dict[str, ModalityRule]:
        """T1w, FLAIR, FDG PET, connectomes and FreeSurfer surfaces: each only where the dataset has it."""
        candidates = {
            "t1": ModalityRule(suffix="T1w"),
            "flair": ModalityRule(suffix="FLAIR"),
            "pet": ModalityRule(suffix="pet", tracer="FDG"),
            "connectome": ModalityRule(kind="graph", suffix="connectome"),
        }
        chosen = {n: r for n, r in candidates.items() if self.files(layout, r, None, None)}
        if _freesurfer_roots(self.bids):
            chosen["cortex"] = ModalityRule(kind="surface")
        return chosen

    def default_targets(self, layout: Any, modalities: dict[str, ModalityRule]) -> dict[str, TargetRule]:
        lesion = TargetRule(kind="mask", suffix="mask", desc="lesion", reference="t1" if "t1" in modalities else None)
        return {"lesion": lesion} if self.files(layout, lesion, None, None) else {}

    def default_tabular(self, tables: _Tables, used: set[str]) -> dict[str, ModalityRule]:
        numeric, skipped = [], []
        for c in tables.participants_columns:
            if c in used:
                continue
            values = [tables.cell(s, c)[0] for s in tables.rows]
            if all(_number(v) is not None for v in values if v):
                numeric.append(c)
            else:
                skipped.append(c)
        if skipped:
            self.warnings.append(
                f"participants.tsv columns not imported (not numbers; map them with `encode:`): {', '.join(skipped)}"
            )
        return {"clinical": ModalityRule(kind="tabular", columns=numeric)} if numeric else {}

    # -- file selection ------------------------------------------------------------------------------
    def files(self, layout: Any, rule: ModalityRule | TargetRule, subject: str | None, session: str | None) -> list:
        kind = rule.kind
        query: dict[str, Any] = dict(rule.entities())
        query["extension"] = list(EXTENSIONS.get(kind, ()))
        if subject is not None:
            query["subject"] = subject
        if session is not None:
            query["session"] = session
        scope = rule.scope_or_default
        try:
            found = layout.get(
                scope="raw" if scope == "raw" else ("derivatives" if scope == "derivatives" else "all"),
                return_type="object",
                **query,
            )
        except Exception:  # an entity the layout does not know: nothing matches
            return []
        return sorted({f.path: f for f in found}.values(), key=lambda f: f.path)

    def pick(self, layout: Any, name: str, rule: ModalityRule | TargetRule, sub: str, ses: str | None) -> Path | None:
        """The one file of ``rule`` for this subject/session; problems for ambiguous or missing files."""
        found = self.files(layout, rule, sub, ses)
        if ses is not None and not found:  # session-less derivatives of a session dataset
            found = [f for f in self.files(layout, rule, sub, None) if "session" not in f.get_entities()]
        where = f"session ses-{ses}: " if ses else ""
        if len(found) > 1:
            names = ", ".join(self.rel(f.path) for f in found)
            differ = sorted(
                {
                    k
                    for f in found
                    for k, v in f.get_entities().items()
                    if k not in ("subject", "session", "extension")
                    and len({str(g.get_entities().get(k)) for g in found}) > 1
                }
            )
            hint = f"; fix it with {' or '.join(f'`{k}:`' for k in differ)} in the import config" if differ else ""
            self.problems.append(
                Problem(
                    f"{where}{len(found)} files match {name!r} ({names}){hint}",
                    subject=f"sub-{sub}",
                    file=self.rel(found[0].path),
                )
            )
            return None
        if not found:
            return None
        path = Path(found[0].path)
        if not path.is_file():  # e.g. a git-annex / DataLad symlink whose content was never fetched
            self.problems.append(
                Problem(
                    f"{where}{name!r}: file named by the dataset is missing (broken link? `datalad get` it)",
                    subject=f"sub-{sub}",
                    file=self.rel(path),
                )
            )
            return None
        return path

    def place(self, path: Path) -> str:
        """Manifest cell for a BIDS file: a path relative to the cohort, or a symlink inside it."""
        if self.link == "relative":
            return os.path.relpath(path, self.out)
        link = self.out / "bids" / os.path.relpath(path, self.bids)
        self.symlinks[link] = path
        return str(link.relative_to(self.out))

    # -- surfaces and graphs ---------------------------------------------------------------------------
    def surface(self, name: str, rule: ModalityRule, sub: str, ses: str | None) -> str | None:
        roots = [self.bids / rule.freesurfer] if rule.freesurfer else _freesurfer_roots(self.bids)
        subject_dir = None
        for root in roots:
            for candidate in ([f"sub-{sub}_ses-{ses}"] if ses else []) + [f"sub-{sub}"]:
                if (root / candidate).is_dir():
                    subject_dir = root / candidate
                    break
            if subject_dir:
                break
        if subject_dir is None:
            return None
        mesh = rule.mesh or "fsaverage5"
        features = rule.features or ["thickness", "curv", "sulc"]
        patterns = rule.patterns or list(DEFAULT_SURFACE_PATTERNS)
        columns, bad = [], False
        for feature in features:
            halves = []
            for hemi in HEMIS:
                tried = [subject_dir / p.format(hemi=hemi, feature=feature, mesh=mesh) for p in patterns]
                path = next((p for p in tried if p.is_file()), None)
                if path is None:
                    self.problems.append(
                        Problem(
                            f"surface {name!r}: feature {feature!r} ({hemi}) not found; tried "
                            f"{', '.join(self.rel(p) for p in tried)}",
                            subject=f"sub-{sub}",
                            file=self.rel(subject_dir),
                        )
                    )
                    bad = True
                    continue
                try:
                    values = _read_fs_feature(path)
                except ReadError as err:
                    self.problems.append(Problem(str(err), subject=f"sub-{sub}", file=self.rel(path)))
                    bad = True
                    continue
                expected = MESH_VERTICES[mesh] // 2
                if values.shape[0] != expected:
                    self.problems.append(
                        Problem(
                            f"surface {name!r}: {values.shape[0]} vertices, {mesh} has {expected} per hemisphere"
                            " (resample with mri_surf2surf --trgsubject " + mesh + ")",
                            subject=f"sub-{sub}",
                            file=self.rel(path),
                        )
                    )
                    bad = True
                    continue
                halves.append(values)
            if len(halves) == 2:
                columns.append(np.concatenate(halves))
        if bad or not columns:
            return None
        target = Path("derived") / f"sub-{sub}" / f"sub-{sub}_{name}.npz"
        self.derived[self.out / target] = {"features": np.stack(columns, axis=1).astype(np.float32)}
        return str(target)

    def graph(self, name: str, path: Path, sub: str) -> str | None:
        """Link a graph fusemed reads as is; convert a labelled TSV/CSV or a one-array NPZ into derived/."""
        try:
            read_graph(path)
            return self.place(path)
        except ReadError as first:
            adjacency = None
            try:
                if path.suffix in (".tsv", ".csv"):
                    frame = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index_col=0)
                    adjacency = frame.to_numpy(dtype=np.float32)
                else:
                    with np.load(path, allow_pickle=False) as npz:
                        square = [npz[k] for k in npz.files if npz[k].ndim == 2 and npz[k].shape[0] == npz[k].shape[1]]
                    adjacency = square[0].astype(np.float32) if len(square) == 1 else None
            except Exception:
                adjacency = None
            if adjacency is None or adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
                self.problems.append(Problem(f"graph {name!r}: {first}", subject=f"sub-{sub}", file=self.rel(path)))
                return None
            target = Path("derived") / f"sub-{sub}" / f"sub-{sub}_{name}.npz"
            self.derived[self.out / target] = {"adjacency": adjacency}
            return str(target)

    # -- table values -------------------------------------------------------------------------------
    def table_value(
        self, tables: _Tables, sub: str, column: str, encode: dict[str, float] | None, what: str
    ) -> float | None:
        text, rel, line = tables.cell(f"sub-{sub}", column)
        if not text:
            return None
        if encode is not None and text in encode:
            return float(encode[text])
        value = _number(text)
        if value is None or not math.isfinite(value):
            hint = f" (known: {', '.join(encode)})" if encode else " (map text values with `encode:`)"
            self.problems.append(
                Problem(
                    f"{what}: expected a number, found {text!r}{hint}",
                    subject=f"sub-{sub}",
                    file=rel,
                    line=line,
                    column=column,
                )
            )
            return None
        return value

    def target_cells(self, tables: _Tables, sub: str, name: str, rule: TargetRule) -> dict[str, Any]:
        if rule.kind == "survival":
            cols = {"time": rule.time, "event": rule.event}
            values = {k: self.table_value(tables, sub, c, rule.encode, f"target {name!r}") for k, c in cols.items()}
            if values["time"] is None and values["event"] is None:
                return {}
            ok = True
            if values["time"] is None or values["time"] < 0:
                self._target_problem(tables, sub, rule.time, f"target {name!r} (survival): time must be a number >= 0")
                ok = False
            if values["event"] not in (0.0, 1.0):
                self._target_problem(tables, sub, rule.event, f"target {name!r} (survival): event must be 0 or 1")
                ok = False
            return {rule.time: _cell(values["time"]), rule.event: _cell(values["event"])} if ok else {}
        column = rule.column or name
        value = self.table_value(tables, sub, column, rule.encode, f"target {name!r}")
        if value is None:
            return {}
        allowed = (0, 1) if rule.kind == "binary" else rule.classes
        if value != int(value) or value < 0 or (allowed is not None and int(value) not in allowed):
            expected = "0 or 1" if rule.kind == "binary" else (f"one of {allowed}" if allowed else "an integer >= 0")
            self._target_problem(tables, sub, column, f"target {name!r} ({rule.kind}) must be {expected}")
            return {}
        return {column: int(value)}

    def _target_problem(self, tables: _Tables, sub: str, column: str | None, message: str) -> None:
        text, rel, line = tables.cell(f"sub-{sub}", column or "")
        self.problems.append(
            Problem(f"{message}, found {text!r}", subject=f"sub-{sub}", file=rel, line=line, column=column)
        )

    # -- sessions and site -----------------------------------------------------------------------------
    def session_for(
        self, layout: Any, sub: str, rule: str, file_rules: dict[str, ModalityRule | TargetRule]
    ) -> str | None:
        sessions = sorted(layout.get_sessions(subject=sub))
        if not sessions:
            return None
        if rule != "first":
            return rule if rule in sessions else None
        for ses in sessions:  # the first session (label order) where any modality has a file
            if any(self.files(layout, r, sub, ses) for r in file_rules.values()):
                return ses
        return sessions[0]

    def site(self, layout: Any, rule: SiteRule | None, tables: _Tables, sub: str, first_volume: Path | None) -> str:
        if rule is None:
            return tables.cell(f"sub-{sub}", "site")[0] if tables.has("site") else ""
        if rule.column is not None:
            return tables.cell(f"sub-{sub}", rule.column)[0]
        if first_volume is None:
            return ""
        if rule.metadata is not None:
            return str(layout.get_metadata(str(first_volume)).get(rule.metadata, ""))
        return str(layout.get_file(str(first_volume)).get_entities().get(rule.entity, ""))

    # -- run -------------------------------------------------------------------------------------------
    def run(self) -> ImportResult:  # noqa: C901 (one pass over subjects, kept in one place to read)
        bids_root, out, config = self.bids, self.out, self.config
        if not bids_root.is_dir():
            self.problems.append(Problem("BIDS folder not found", file=bids_root))
            return self.result
        if not (bids_root / "dataset_description.json").is_file():
            self.problems.append(Problem("not a BIDS dataset: no dataset_description.json", file=bids_root))
            return self.result
        if _inside(out, bids_root) and not _inside(out, bids_root / "derivatives"):
            self.problems.append(
                Problem("write the cohort outside the BIDS folder (or under its derivatives/)", file=out)
            )
            return self.result
        external = not _inside(bids_root, out)
        data_root_supported = "data_root" in CohortSpec.model_fields
        if self.link == "auto":
            self.link = "relative" if (not external or data_root_supported) else "symlink"
            self.notes.append(
                f"links: {self.link} ("
                + (
                    "the BIDS folder is inside the cohort"
                    if not external
                    else "cohort.yaml declares the BIDS folder as data_root"
                    if data_root_supported
                    else "symlinks under COHORT/bids keep every manifest path inside the cohort folder"
                )
                + ")"
            )
        layout = self.layout()
        if layout is None:
            return self.result
        tables = _Tables(bids_root, self.problems, self.warnings)

        modalities = dict(config.modalities) if config.modalities is not None else self.default_modalities(layout)
        targets = dict(config.targets) if config.targets is not None else self.default_targets(layout, modalities)
        if config.modalities is None:
            used = {c for t in targets.values() for c in (t.column, t.time, t.event) if c}
            used |= {config.site.column} if config.site and config.site.column else {"site"}
            modalities.update(self.default_tabular(tables, used))
        for name, m in modalities.items():
            for c in m.columns or []:
                if not tables.has(c):
                    self.problems.append(
                        Problem(
                            f"modality {name!r}: column {c!r} is in no table (participants.tsv, phenotype/*.tsv)",
                            column=c,
                        )
                    )
                elif len(tables.source[c]) > 1:
                    self.problems.append(
                        Problem(f"column {c!r} is in several tables ({', '.join(tables.source[c])})", column=c)
                    )
        for name, t in targets.items():
            for c in [t.time, t.event] if t.kind == "survival" else ([] if t.is_file else [t.column or name]):
                if not tables.has(c):
                    self.problems.append(Problem(f"target {name!r}: column {c!r} is in no table", column=c))
        if not modalities:
            self.problems.append(
                Problem(
                    "no modality found: no T1w, FLAIR, FDG PET, connectome or FreeSurfer "
                    "subjects; declare `modalities:` in the import config",
                    file=bids_root,
                )
            )
        if self.problems:
            return self.result

        file_rules: dict[str, ModalityRule | TargetRule] = {
            n: m for n, m in modalities.items() if m.kind in ("volume", "graph")
        }
        subjects = [f"sub-{s}" for s in sorted(layout.get_subjects())]
        for pid in tables.order:
            if pid not in subjects:
                self.problems.append(
                    Problem(
                        "listed in participants.tsv but the dataset has no folder for it", subject=pid, file=f"{pid}/"
                    )
                )
        for pid in subjects:
            if tables.order and pid not in tables.order:
                self.warnings.append(f"{pid} has a folder but no participants.tsv row: imported without table data")

        rows, sessions_used = [], {}
        for pid in subjects:
            sub = pid[4:]
            ses = self.session_for(layout, sub, config.session, file_rules)
            all_sessions = sorted(layout.get_sessions(subject=sub))
            if all_sessions:
                sessions_used[pid] = ses
                if ses is None:
                    self.warnings.append(
                        f"{pid} has no session {config.session!r} "
                        f"(has {', '.join('ses-' + s for s in all_sessions)}): left out"
                    )
                    continue
            row: dict[str, Any] = {"subject": pid}
            first_volume = None
            for name, m in modalities.items():
                m_ses = (
                    ses
                    if m.session is None
                    else (m.session if m.session != "first" else self.session_for(layout, sub, "first", {name: m}))
                )
                if all_sessions and m_ses is None:
                    continue
                if m.kind == "tabular":
                    for c in m.columns or []:
                        value = self.table_value(tables, sub, c, (m.encode or {}).get(c), f"modality {name!r}")
                        text = tables.cell(pid, c)[0]
                        row[c] = text if value is not None and _number(text) is not None else _cell(value)
                    continue
                if m.kind == "surface":
                    row[name] = self.surface(name, m, sub, m_ses)
                    continue
                path = self.pick(layout, name, m, sub, m_ses)
                if path is None:
                    continue
                if m.kind == "graph":
                    row[name] = self.graph(name, path, sub)
                else:
                    row[name] = self.place(path)
                    first_volume = first_volume or path
            for name, t in targets.items():
                if t.is_file:
                    t_ses = ses if t.session is None else t.session
                    path = self.pick(layout, name, t, sub, t_ses if all_sessions else None)
                    row[t.column or name] = self.place(path) if path is not None else None
                else:
                    row.update(self.target_cells(tables, sub, name, t))
            row["site"] = self.site(layout, config.site, tables, sub, first_volume)
            if all_sessions:
                row["session"] = f"ses-{ses}" if ses else ""
            present = [
                n
                for n, m in modalities.items()
                if (any(row.get(c) is not None for c in m.columns or []) if m.kind == "tabular" else row.get(n))
            ]
            if not present:
                where = f" in ses-{ses}" if ses else ""
                self.problems.append(
                    Problem(
                        f"no usable modality{where} (looked for {', '.join(modalities)})", subject=pid, file=f"{pid}/"
                    )
                )
            rows.append(row)

        if sessions_used:
            counts: dict[str, int] = {}
            for s in sessions_used.values():
                counts[f"ses-{s}" if s else "(none)"] = counts.get(f"ses-{s}" if s else "(none)", 0) + 1
            rule = "first session (label order) with data" if config.session == "first" else f"ses-{config.session}"
            self.notes.append(
                f"sessions: rule {rule!r} → " + ", ".join(f"{k}: {v} subjects" for k, v in counts.items())
            )
        if self.problems:
            return self.result

        # -- write: links, derived files, then cohort.yaml + manifest (the manifest last) --------------
        spec = self.spec(modalities, targets, rows, external)
        out.mkdir(parents=True, exist_ok=True)
        for link, target in self.symlinks.items():
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            os.symlink(os.path.relpath(target, link.parent), link)
        for path, arrays in self.derived.items():
            atomic_save(path, lambda p, a=arrays: _savez(p, a))
        columns = ["subject", *(["site"] if spec.site_column else []), *(["session"] if sessions_used else [])]
        for name in spec.modalities:
            columns += spec.modalities[name].columns or [spec.modality_column(name)]
        for name in spec.targets:
            columns += [c for c in spec.target_columns(name) if c not in columns]
        frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns, dtype=object)
        write_cohort(out, spec, frame)
        self.result.report = validate_cohort(out)
        return self.result

    def spec(
        self, modalities: dict[str, ModalityRule], targets: dict[str, TargetRule], rows: list[dict], external: bool
    ) -> CohortSpec:
        mods: dict[str, Any] = {}
        for name, m in modalities.items():
            entry: dict[str, Any] = {"kind": m.kind}
            if m.kind == "tabular":
                entry["columns"] = list(m.columns or [])
            if m.kind == "surface":
                entry["mesh"] = m.mesh or "fsaverage5"
            mods[name] = entry
        tgts: dict[str, Any] = {}
        for name, t in targets.items():
            entry = {"kind": t.kind}
            for key in ("column", "time", "event", "classes", "reference", "mesh"):
                if getattr(t, key) is not None:
                    entry[key] = getattr(t, key)
            tgts[name] = entry
        has_site = any(r.get("site") for r in rows)
        raw: dict[str, Any] = {
            "name": self.config.name or _slug(_dataset_name(self.bids)),
            "subject_column": "subject",
            "site_column": "site" if has_site else None,
            "modalities": mods,
            "targets": tgts,
        }
        if external and "data_root" in CohortSpec.model_fields:  # symlinks are followed by that check too
            raw["data_root"] = os.path.relpath(self.bids, self.out)
        try:
            return CohortSpec.model_validate(raw)
        except Exception as err:
            raise CohortError([Problem(f"cannot build cohort.yaml ({err})")]) from None


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _cell(value: float | None) -> Any:
    """A number for the manifest: integers without ``.0``, missing as ``None`` (an empty cell)."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def _dataset_name(root: Path) -> str:
    try:
        return str(json.loads((root / "dataset_description.json").read_text(encoding="utf-8")).get("Name", root.name))
    except (OSError, ValueError):
        return root.name


def import_bids(
    bids_dir: str | Path,
    out: str | Path,
    config: str | Path | BidsImportConfig | None = None,
    link: str = "auto",
) -> ImportResult:
    """Import a BIDS dataset as a cohort folder and validate it.

    Args:
        bids_dir: the BIDS dataset (holds ``dataset_description.json``).
        out: the cohort folder to write (``cohort.yaml``, ``manifest.csv``, ``bids/`` links, ``derived/``).
        config: an ``import.yaml`` path or a :class:`BidsImportConfig`; ``None`` reads
            ``BIDS_DIR/code/fusemed-import.yaml`` when present, else the defaults (docs/bids.md).
        link: ``relative`` (manifest paths point into the BIDS folder), ``symlink`` (links under
            ``COHORT/bids``) or ``auto`` (see docs/bids.md).

    Returns:
        An :class:`ImportResult`; ``ok`` when nothing was wrong. Config errors raise :class:`CohortError`
        before any dataset file is read.
    """
    if link not in LINK_MODES:
        raise CohortError([Problem(f"--link must be one of {', '.join(LINK_MODES)}, found {link!r}")])
    bids_root, out = Path(bids_dir).absolute(), Path(out).absolute()
    if config is None and (bids_root / DATASET_CONFIG).is_file():
        config = bids_root / DATASET_CONFIG
        used = f"import rules: {DATASET_CONFIG} (shipped with the dataset)"
    else:
        used = f"import rules: {config}" if isinstance(config, (str, Path)) else "import rules: defaults"
    cfg = config if isinstance(config, BidsImportConfig) else load_import_config(config)
    importer = _Importer(bids_root, out, cfg, link)
    importer.notes.append(used)
    try:
        return importer.run()
    except CohortError as err:
        importer.problems.extend(err.problems)
        return importer.result
