"""From cases on disk to batches: a lazy per-case Dataset, a collate that marks missing modalities.

A batch is ``{"inputs": {name: (B, *shape)}, "present": (B, M) bool, "target": ..., "subject": [str]}``.
A missing modality of sample i is a zero-filled slot with ``present[i, m] == False``; the models must
ignore it (their contract test checks that noise in a missing slot changes nothing).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fusemed.cohort import Case, Cohort, TargetKind
from fusemed.training.preprocessing import Preprocessing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """The prediction target as the training code sees it."""

    name: str
    kind: str  # "binary" | "multiclass" | "survival"
    n_classes: int

    @classmethod
    def from_cohort(cls, cohort: Cohort, name: str) -> Task:
        if name not in cohort.spec.targets:
            from fusemed.choices import look_up

            look_up(name, list(cohort.spec.targets))
        kind = cohort.spec.targets[name].kind
        if kind not in (TargetKind.BINARY, TargetKind.MULTICLASS, TargetKind.SURVIVAL):
            raise ValueError(f"target {name!r} is a {kind.value}: train predicts binary, multiclass or survival")
        if kind is TargetKind.MULTICLASS:
            declared = cohort.spec.targets[name].classes
            seen = [v for v in cohort.target_values(name) if v is not None]
            n = (max(declared) + 1) if declared else (max(seen) + 1)
            return cls(name, "multiclass", int(n))
        return cls(name, kind.value, 2 if kind is TargetKind.BINARY else 1)

    def encode(self, case: Case) -> torch.Tensor:
        """Binary/multiclass: class index (long scalar); survival: ``(2,)`` float ``[time, event]``."""
        value = case.targets[self.name]
        if self.kind == "survival":
            return torch.tensor([float(value.time), float(value.event)], dtype=torch.float32)
        return torch.tensor(int(value), dtype=torch.long)

    def strata(self, case: Case) -> str:
        value = case.targets[self.name]
        return str(int(value.event)) if self.kind == "survival" else str(int(value))


def pattern_of(case: Case, modalities: list[str]) -> str:
    """Present modalities among ``modalities`` joined by ``+`` (in the run's order = spec order)."""
    return "+".join(m for m in modalities if case.has(m))


class CaseDataset(Dataset):
    """Lazy per-case I/O: a case is read and preprocessed when first asked for (then cached if wanted).

    Only the small preprocessed tensors are cached, never the raw images; ``cache=False`` reads each
    epoch from disk.
    """

    def __init__(self, cases: list[Case], modalities: list[str], preprocessing: Preprocessing,
                 task: Task | None, cache: bool = True) -> None:
        self.cases = cases
        self.modalities = modalities
        self.preprocessing = preprocessing
        self.task = task
        self.cache = cache
        self._cache: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index in self._cache:
            return self._cache[index]
        case = self.cases[index]
        item: dict[str, Any] = {"subject": case.subject, "inputs": {}}
        for m in self.modalities:
            if case.has(m):
                try:
                    item["inputs"][m] = torch.from_numpy(self.preprocessing(case, m))
                except Exception as err:
                    raise ValueError(f"subject {case.subject}, modality {m!r}: {err}") from err
        if self.task is not None and self.task.name in case.targets:
            item["target"] = self.task.encode(case)
        if self.cache:
            self._cache[index] = item
        return item


class Collate:
    """Stack items; zero-fill absent modalities and record presence as a ``(B, M)`` bool mask."""

    def __init__(self, modalities: list[str], shapes: dict[str, tuple[int, ...]]) -> None:
        self.modalities = modalities
        self.shapes = shapes

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        inputs = {}
        present = torch.zeros(len(items), len(self.modalities), dtype=torch.bool)
        for j, m in enumerate(self.modalities):
            slot = torch.zeros(len(items), *self.shapes[m])
            for i, item in enumerate(items):
                if m in item["inputs"]:
                    slot[i] = item["inputs"][m]
                    present[i, j] = True
            inputs[m] = slot
        batch: dict[str, Any] = {"inputs": inputs, "present": present,
                                 "subject": [item["subject"] for item in items]}
        if all("target" in item for item in items):
            batch["target"] = torch.stack([item["target"] for item in items])
        return batch


class FoldDataModule(L.LightningDataModule):
    """Train / val loaders of one fold (the test split is predicted outside Lightning, on rank 0)."""

    def __init__(self, train: CaseDataset, val: CaseDataset, collate: Collate, batch_size: int,
                 num_workers: int = 0, seed: int = 0) -> None:
        super().__init__()
        self.train_set, self.val_set, self.collate = train, val, collate
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self._shuffle = torch.Generator().manual_seed(seed)  # one stream over all epochs, saved in checkpoints

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, collate_fn=self.collate,
                          num_workers=self.num_workers, generator=self._shuffle,
                          drop_last=len(self.train_set) > self.batch_size)

    def state_dict(self) -> dict[str, Any]:
        """The shuffle generator's state: a resumed run shuffles its next epoch as an uninterrupted one."""
        return {"shuffle": self._shuffle.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "shuffle" in state_dict:
            self._shuffle.set_state(state_dict["shuffle"])

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False, collate_fn=self.collate,
                          num_workers=self.num_workers)


def loader(dataset: CaseDataset, collate: Collate, batch_size: int) -> DataLoader:
    """A plain, ordered loader for prediction."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)


def stack_targets(task: Task, cases: list[Case]) -> np.ndarray:
    """Targets of the cases that have one: ``(n,)`` labels or ``(n, 2)`` [time, event]."""
    return np.stack([task.encode(c).numpy() for c in cases])
