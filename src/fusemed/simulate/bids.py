"""The simulator's BIDS layout (``fusemed simulate … --layout bids``): a dataset ``fusemed import bids`` reads.

D/dataset_description.json, README, .bidsignore (truth/), participants.tsv/.json (site + clinical)
D/phenotype/outcomes.tsv/.json                   (the targets held in tables)
D/sub-001/anat/sub-001_T1w.nii.gz + .json, sub-001_FLAIR.nii.gz + .json
D/sub-001/pet/sub-001_trc-FDG_pet.nii.gz + .json  (every field BIDS requires for PET)
D/derivatives/connectome/sub-001/func/sub-001_connectome.npz
D/derivatives/freesurfer/sub-001/surf/{lh,rh}.<feature>.fsaverage5.mgh   (as after mri_surf2surf)
D/derivatives/lesions/sub-001/anat/sub-001_space-T1w_desc-lesion_mask.nii.gz (epilepsy target)
D/code/fusemed-import.yaml                       (the import rules: same cohort as the direct layout)
D/truth/…                                        (hidden truth, listed in .bidsignore)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import yaml

from fusemed.io import atomic_save
from fusemed.simulate.surface import FEATURES
from fusemed.simulate.writer import write_text

LAYOUTS = ("cohort", "bids")
FILES = {
    "t1": "{s}/anat/{s}_T1w.nii.gz",
    "flair": "{s}/anat/{s}_FLAIR.nii.gz",
    "pet": "{s}/pet/{s}_trc-FDG_pet.nii.gz",
    "connectome": "derivatives/connectome/{s}/func/{s}_connectome.npz",
}
FREESURFER = "derivatives/freesurfer/{s}/surf/{hemi}.{feature}.fsaverage5.mgh"
MASK = "derivatives/lesions/{s}/anat/{s}_space-T1w_desc-lesion_mask.nii.gz"
VERTEX_MASK = "derivatives/lesions/{s}/anat/{s}_space-fsaverage5_desc-lesion_mask.npz"
#: The import rules that rebuild the direct layout's cohort, per modality / target name.
MODALITY_RULES: dict[str, dict[str, Any]] = {
    "t1": {"suffix": "T1w"},
    "flair": {"suffix": "FLAIR"},
    "pet": {"suffix": "pet", "tracer": "FDG"},
    "connectome": {"kind": "graph", "suffix": "connectome"},
    "cortex": {
        "kind": "surface",
        "freesurfer": "derivatives/freesurfer",
        "mesh": "fsaverage5",
        "features": list(FEATURES),
        "patterns": ["surf/{hemi}.{feature}.{mesh}.mgh"],
    },
}
TARGET_RULES: dict[str, dict[str, Any]] = {
    "mask": {"suffix": "mask", "desc": "lesion", "space": "T1w"},
    "vertex_mask": {"suffix": "mask", "desc": "lesion", "space": "fsaverage5"},
}


def mri_sidecar(site: str) -> dict[str, Any]:
    """Anatomical MRI sidecar (no field is REQUIRED for anat; NonlinearGradientCorrection is, next to PET)."""
    return {
        "Manufacturer": "fusemed",
        "ManufacturersModelName": "simulated MR",
        "MagneticFieldStrength": 3,
        "InstitutionName": site,
        "NonlinearGradientCorrection": False,
    }


def pet_sidecar(site: str) -> dict[str, Any]:
    """Every PET field BIDS 1.9 marks REQUIRED (hardware, radiochemistry, time, reconstruction)."""
    return {
        "Manufacturer": "fusemed",
        "ManufacturersModelName": "simulated PET",
        "InstitutionName": site,
        "Units": "Bq/mL",
        "TracerName": "FDG",
        "TracerRadionuclide": "F18",
        "InjectedRadioactivity": 200,
        "InjectedRadioactivityUnits": "MBq",
        "InjectedMass": "n/a",
        "InjectedMassUnits": "n/a",
        "SpecificRadioactivity": "n/a",
        "SpecificRadioactivityUnits": "n/a",
        "ModeOfAdministration": "bolus",
        "TimeZero": "00:00:00",
        "ScanStart": 2400,
        "InjectionStart": 0,
        "FrameTimesStart": [0],
        "FrameDuration": [1200],
        "AcquisitionMode": "list mode",
        "ImageDecayCorrected": True,
        "ImageDecayCorrectionTime": 0,
        "ReconMethodName": "OSEM",
        "ReconMethodParameterLabels": ["subsets", "iterations"],
        "ReconMethodParameterUnits": ["none", "none"],
        "ReconMethodParameterValues": [21, 3],
        "ReconFilterType": "none",
        "AttenuationCorrection": "simulated",
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_mgh(path: Path, values: np.ndarray) -> None:
    img = nib.MGHImage(np.asarray(values, dtype=np.float32).reshape(-1, 1, 1), np.eye(4))
    atomic_save(path, lambda p: img.to_filename(p))


def write_surface(root: Path, subject: str, features: np.ndarray) -> None:
    """(V, F) fsaverage5 features as one ``.mgh`` per hemisphere and feature (left half first)."""
    half = features.shape[0] // 2
    for j, feature in enumerate(FEATURES):
        for h, hemi in enumerate(("lh", "rh")):
            write_mgh(
                root / FREESURFER.format(s=subject, hemi=hemi, feature=feature), features[h * half : (h + 1) * half, j]
            )


def write_bids_dataset(
    root: Path,
    name: str,
    modalities: dict[str, Any],
    targets: dict[str, Any],
    rows: list[dict[str, Any]],
) -> None:
    """The dataset-level files: tables with their JSON descriptions, derivative descriptions, import rules."""
    frame = pd.DataFrame(rows)
    clinical = list(modalities.get("clinical", {}).get("columns", []))
    table_targets = [
        c
        for t_name, t in targets.items()
        if t["kind"] not in ("mask", "vertex_mask")
        for c in ([t["time"], t["event"]] if t["kind"] == "survival" else [t.get("column", t_name)])
    ]
    participants = frame[["subject", "site", *clinical]].rename(columns={"subject": "participant_id"})
    atomic_save(
        root / "participants.tsv",
        lambda p: participants.to_csv(p, sep="\t", index=False, na_rep="n/a", lineterminator="\n"),
    )
    describe = {"site": {"Description": "acquisition site (simulated)"}}
    describe.update({c: {"Description": f"clinical variable {c} (simulated)"} for c in clinical})
    write_json(root / "participants.json", describe)
    if table_targets:
        outcomes = frame[["subject", *table_targets]].rename(columns={"subject": "participant_id"})
        atomic_save(
            root / "phenotype" / "outcomes.tsv",
            lambda p: outcomes.to_csv(p, sep="\t", index=False, na_rep="n/a", lineterminator="\n"),
        )
        write_json(
            root / "phenotype" / "outcomes.json", {c: {"Description": f"target {c} (simulated)"} for c in table_targets}
        )
    for deriv in ("connectome", "lesions"):
        if (root / "derivatives" / deriv).is_dir():
            write_json(
                root / "derivatives" / deriv / "dataset_description.json",
                {
                    "Name": f"fusemed simulated {deriv}",
                    "BIDSVersion": "1.9.0",
                    "DatasetType": "derivative",
                    "GeneratedBy": [{"Name": "fusemed simulate"}],
                },
            )
    write_text(root / ".bidsignore", "truth/\n")
    write_text(root / "README", f"{name}: a cohort simulated by `fusemed simulate`; hidden truth in truth/.\n")
    rules: dict[str, Any] = {"name": name, "session": "first", "site": {"column": "site"}, "modalities": {}}
    for m_name, m in modalities.items():
        rules["modalities"][m_name] = dict(MODALITY_RULES.get(m_name, {}))
        if m["kind"] == "tabular":
            rules["modalities"][m_name] = {"kind": "tabular", "columns": list(m["columns"])}
    rules["targets"] = {}
    for t_name, t in targets.items():
        rule = {k: v for k, v in t.items()}
        rule.update(TARGET_RULES.get(t["kind"], {}))
        rules["targets"][t_name] = rule
    write_text(root / "code" / "fusemed-import.yaml", yaml.safe_dump(rules, sort_keys=False))
