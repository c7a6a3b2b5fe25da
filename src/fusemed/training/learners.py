"""What one fold fits, and how the fitted thing predicts: a deep fusion (Lightning) or a classical baseline.

Both sit behind :class:`Predictor` — ``predict(dataset) -> logits`` in the deep heads' format, ``(n, C)``
or ``(K, n, C)`` with a member axis — so the runner, the uncertainty steps, ``predict`` and the report treat
them alike. A fold folder says in ``fold.json`` which predictor it holds (``kind``), what it was built from
(``overrides`` of the run's config, e.g. the fusion self-configuration chose) and where its members lie;
``fusemed predict`` rebuilds it from there. Nothing is pickled: deep members are state dicts loaded with
``weights_only=True``, baselines are saved by their own ``save`` (arrays and JSON).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import Dataset

from fusemed.training.config import TrainConfig
from fusemed.training.data import Collate, FoldDataModule, Task
from fusemed.training.fit import fit_member
from fusemed.training.inference import load_weights, predict_logits
from fusemed.training.io import atomic_write_json
from fusemed.training.module import ModelFactory, Slot, build_model
from fusemed.uncertainty.methods import UncertaintyMethod
from fusemed.uncertainty.outputs import member_mean_probabilities

log = logging.getLogger(__name__)

FOLD_FILE = "fold.json"


@dataclass
class FoldContext:
    """What every learner of one fold shares: the run's config, the task, the modality slots.

    ``modalities`` are those the fold's model reads: the run's, less any that no training subject of the fold
    has (nothing to fit it on; at 60 % missing a derived modality can be that rare). ``run_modalities`` are
    the run's own, which name every subject's missing pattern the same way in every fold."""

    config: TrainConfig
    task: Task
    modalities: list[str]
    slots: list[Slot]
    fold: int
    factory: ModelFactory = build_model
    callbacks: Sequence[Callback] = ()
    moddrop_fn: Any = None
    run_modalities: list[str] | None = None

    @property
    def method(self) -> UncertaintyMethod:
        """The run's uncertainty method (how members are trained and predict)."""
        return self.config.uncertainty.build()

    @property
    def all_modalities(self) -> list[str]:
        """The run's modalities (patterns are named over these), whichever this fold could read."""
        return self.run_modalities or self.modalities

    @property
    def collate(self) -> Collate:
        return Collate(self.modalities, {s.name: tuple(s.shape) for s in self.slots})

    def meta(self) -> dict[str, Any]:
        """The fold description every predictor starts from (``fold.json`` adds the predictor's own keys)."""
        return {"fold": self.fold, "modalities": self.modalities, "run_modalities": self.all_modalities,
                "slots": [asdict(s) for s in self.slots],
                "task": {"name": self.task.name, "kind": self.task.kind, "n_classes": self.task.n_classes}}


class Predictor(ABC):
    """A fitted fold model. Subclasses register under ``kind`` so ``fold.json`` can name them."""

    kind: ClassVar[str]
    registry: ClassVar[dict[str, type[Predictor]]] = {}

    def __init_subclass__(cls, kind: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.kind = kind
            Predictor.registry[kind] = cls

    @abstractmethod
    def predict(self, dataset: Dataset, ctx: FoldContext) -> np.ndarray:
        """Logits ``(n, C)``, or ``(K, n, C)`` with a member axis, in dataset order."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-safe keys that, with the fold folder, are enough for :meth:`load`."""

    @classmethod
    @abstractmethod
    def load(cls, fold_dir: Path, entry: dict[str, Any], ctx: FoldContext) -> Predictor:
        """Rebuild the predictor a fold folder holds."""


@dataclass
class DeepPredictor(Predictor, kind="deep"):
    """Members of one multimodal network config (ensemble seeds or cross-fitted inner folds)."""

    members: list[nn.Module]
    paths: list[str]
    overrides: dict[str, Any] = field(default_factory=dict)

    def predict(self, dataset: Dataset, ctx: FoldContext) -> np.ndarray:
        forward = ctx.method.forward(self.members, ctx.config.seed + ctx.fold)
        logits = predict_logits(forward, dataset, ctx.collate, ctx.config.trainer.batch_size)
        return logits[0] if len(logits) == 1 else logits

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "members": self.paths, "overrides": self.overrides}

    @classmethod
    def load(cls, fold_dir: Path, entry: dict[str, Any], ctx: FoldContext) -> DeepPredictor:
        config = ctx.config.updated(**entry.get("overrides", {}))
        members = [load_weights(ctx.factory(config, ctx.slots, ctx.task), fold_dir / p) for p in entry["members"]]
        return cls(members, list(entry["members"]), dict(entry.get("overrides", {})))


@dataclass
class BaselinePredictor(Predictor, kind="baseline"):
    """A classical baseline: fixed feature maps of the preprocessed modalities, then an sklearn estimator."""

    name: str
    features: Any  # fusemed.models.baselines.FeatureMap
    estimator: Any  # fusemed.models.baselines.Baseline
    path: str = ""

    def __post_init__(self) -> None:
        self.path = self.path or f"baseline-{self.name}"

    def predict(self, dataset: Dataset, ctx: FoldContext) -> np.ndarray:
        return np.asarray(self.estimator.decision(self.features.transform(dataset_inputs(dataset))), dtype=np.float64)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "path": self.path, "features": self.features.state()}

    def save(self, fold_dir: Path) -> None:
        self.estimator.save(fold_dir / self.path)

    @classmethod
    def load(cls, fold_dir: Path, entry: dict[str, Any], ctx: FoldContext) -> BaselinePredictor:
        from fusemed.models.baselines import BASELINES, FeatureMap

        estimator = BASELINES[entry["name"]].load(fold_dir / entry["path"])
        return cls(entry["name"], FeatureMap.from_state(entry["features"]), estimator, entry["path"])


@dataclass
class BlendPredictor(Predictor, kind="blend"):
    """Average of several predictors (nnU-Net's ensemble of configurations, chosen when it beats every
    single candidate in inner cross-validation): classification averages probabilities with equal
    weights; survival sums log-risks with ``weights`` (one over each candidate's inner spread, fixed when
    the blend was chosen, so a new patient is scored exactly as the outer test fold was)."""

    components: list[Predictor]
    task_kind: str
    weights: list[float] | None = None

    def __post_init__(self) -> None:
        if self.task_kind == "survival" and (self.weights is None or len(self.weights) != len(self.components)):
            raise ValueError("a survival blend needs one weight per component (log-risks have no common scale)")

    def predict(self, dataset: Dataset, ctx: FoldContext) -> np.ndarray:
        outputs = [member_mean_probabilities(c.predict(dataset, ctx), self.task_kind) for c in self.components]
        if self.weights is not None:
            return sum(w * out for w, out in zip(self.weights, outputs, strict=True))
        return np.log(np.clip(np.mean(outputs, axis=0), 1e-12, 1.0))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "task_kind": self.task_kind, "weights": self.weights,
                "components": [c.describe() for c in self.components]}

    def save(self, fold_dir: Path) -> None:
        for component in self.components:
            if isinstance(component, BaselinePredictor):
                component.save(fold_dir)

    @classmethod
    def load(cls, fold_dir: Path, entry: dict[str, Any], ctx: FoldContext) -> BlendPredictor:
        parts = [Predictor.registry[c["kind"]].load(fold_dir, c, ctx) for c in entry["components"]]
        return cls(parts, entry["task_kind"], entry.get("weights"))


def dataset_inputs(dataset: Dataset) -> list[dict[str, np.ndarray]]:
    """Each item's present modalities as numpy arrays (a missing modality is an absent key)."""
    return [{m: x.numpy() for m, x in dataset[i]["inputs"].items()} for i in range(len(dataset))]


def dataset_targets(dataset: Dataset) -> np.ndarray:
    """Every item's encoded target: ``(n,)`` labels or ``(n, 2)`` [time, event]."""
    return np.stack([dataset[i]["target"].numpy() for i in range(len(dataset))])


def fit_baseline(ctx: FoldContext, name: str, train: Dataset, seed: int) -> BaselinePredictor:
    """Fit the feature maps and the estimator on ``train`` only (a baseline picks its penalty by internal CV,
    so it needs no early-stopping split and is given the fold's validation subjects too)."""
    from fusemed.models import TaskInfo
    from fusemed.models.baselines import BASELINES, FeatureMap

    kinds = {s.name: s.kind for s in ctx.slots}
    items = dataset_inputs(train)
    features = FeatureMap.fit(items, kinds)
    task = TaskInfo(kind=ctx.task.kind, n_classes=ctx.task.n_classes)
    estimator = BASELINES[name](task=task, seed=seed).fit(features.transform(items), dataset_targets(train))
    return BaselinePredictor(name, features, estimator)


def fit_deep(ctx: FoldContext, train: Dataset, val: Dataset, fold_dir: Path, seed: int, subdir: str = "",
             overrides: dict[str, Any] | None = None, members: int | None = None) -> DeepPredictor:
    """Train ``members`` networks (default ``ensemble_size``; member j gets seed + 1000 j) with early stopping
    on ``val``; member 0 lives in ``fold_dir/subdir``, member j in ``fold_dir/subdir/member-<j>``."""
    overrides = dict(overrides or {})
    config = ctx.config.updated(**overrides)
    models, paths = [], []
    for j in range(members or ctx.method.n_networks()):
        out = fold_dir / subdir if subdir else fold_dir
        member_dir = out if j == 0 else out / f"member-{j}"
        member_seed = seed + 1000 * j
        meta = {**ctx.meta(), "member": j, "seed": member_seed, "overrides": overrides}
        data = FoldDataModule(train, val, ctx.collate, config.trainer.batch_size, config.trainer.num_workers,
                              member_seed)
        models.append(fit_member(config.trainer, ctx.factory(config, ctx.slots, ctx.task), data, member_dir,
                                 member_seed, meta, moddrop=config.model.moddrop, callbacks=ctx.callbacks,
                                 moddrop_fn=ctx.moddrop_fn))
        paths.append((member_dir / "model.pt").relative_to(fold_dir).as_posix())
    return DeepPredictor(models, paths, overrides)


def save_predictor(fold_dir: Path, predictor: Predictor, ctx: FoldContext, **extra: Any) -> None:
    """Write the predictor's own files (baselines) and ``fold.json``."""
    if isinstance(predictor, BaselinePredictor | BlendPredictor):
        predictor.save(fold_dir)
    atomic_write_json(fold_dir / FOLD_FILE, {**ctx.meta(), "predictor": predictor.describe(), **extra})


def load_predictor(fold_dir: Path, ctx: FoldContext) -> Predictor:
    """The predictor ``fold.json`` describes."""
    import json

    entry = json.loads((fold_dir / FOLD_FILE).read_text())["predictor"]
    if entry.get("kind") not in Predictor.registry:
        raise ValueError(f"{fold_dir / FOLD_FILE}: unknown predictor kind {entry.get('kind')!r}; "
                         f"this fusemed knows {sorted(Predictor.registry)}")
    return Predictor.registry[entry["kind"]].load(fold_dir, entry, ctx)
