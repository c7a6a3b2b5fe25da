"""Which `fusemed train` flags a run kind takes, checked before any cohort file is read.

Every flag is either honoured or refused with a reason; none is dropped. A prognosis run takes a flag
whose name is a ``TrainConfig`` key (``fusemed.training.config.route`` places it in its sub-record), so a
new config leaf becomes usable as a flag by adding a typer option of the same name. A detection run takes
the flags of :data:`DETECTION_KEYS`; the others are refused with the reason in :data:`NOT_FOR_DETECTION`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

#: flag -> the ``DetectionConfig`` key it sets (``params.<name>``: a hyperparameter of the chosen detector;
#: ``trainer.<name>``: where its network trains, on the Lightning trainer prognosis uses)
DETECTION_KEYS = {"cohort": "cohort", "target": "target", "model": "model", "modalities": "modalities",
                  "spacing": "spacing", "seed": "seed", "calibration_fraction": "calibration_fraction",
                  "epochs": "params.epochs", "lr": "params.lr", "batch_size": "params.batch_size",
                  "moddrop": "params.modality_dropout", "accelerator": "trainer.accelerator",
                  "devices": "trainer.devices", "strategy": "trainer.strategy", "progress": "trainer.progress"}
_ONE_SPLIT = ("lesion detection has one fit / calibration / test split and its detectors' own uncertainty maps "
              "(no cross-validation folds, no uncertainty plug-ins yet: issue 15)")
#: why a prognosis flag is refused on a mask target (default: the one-split reason)
NOT_FOR_DETECTION = {"patience": "a detector's network trains its `epochs` on fresh samples each epoch, with no "
                                 "validation split to stop early on"}


def flag(name: str) -> str:
    """``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def prognosis_keys() -> set[str]:
    """The flat keys a ``TrainConfig`` takes (every leaf of its sub-records, aliases, top-level keys)."""
    from fusemed.training.config import ALIASES, TOP_LEVEL, leaf_owners

    return {*leaf_owners(), *ALIASES, *TOP_LEVEL} - {"pinned"}


def check_values(flags: dict[str, Any]) -> None:
    """Each given value on its own: a misspelt name gets "did you mean", a value out of range says so.

    Reads no file: runs before the cohort (or even its existence) is looked at.
    """
    from fusemed.training.config import SECTIONS, route

    for name, value in flags.items():
        if name == "model":
            from fusemed.diagnosis.detectors import get_detector

            _refusal(name, value, lambda v=value: get_detector(v))
        elif name in prognosis_keys():
            for section, values in route({name: value}).items():
                if section in SECTIONS:
                    _refusal(name, value, lambda s=section, v=values: SECTIONS[s].model_validate(v))


def _refusal(name: str, value: Any, check: Any) -> None:
    """Run ``check``; its error becomes one ``ValueError`` that names the flag."""
    try:
        check()
    except (ValidationError, ValueError, LookupError) as err:
        if isinstance(err, ValidationError):
            first = err.errors()[0]
            text = str(first["msg"]).removeprefix("Value error, ")
        else:
            text = str(err.args[0]) if err.args else str(err)
        text = " ".join(line.strip() for line in text.splitlines() if line.strip())
        raise ValueError(f"{flag(name)} {value}: {text}") from None


def refuse_for_prognosis(flags: dict[str, Any], target: str, target_kind: str) -> None:
    """A flag that is no ``TrainConfig`` key (``--model``) is refused on an outcome or survival target."""
    for name in flags:
        if name == "model":
            raise ValueError(f"--model names a lesion detector; target {target!r} is {target_kind}: use --fusion "
                             "(auto, a fusion or a classical baseline)")
        if name not in prognosis_keys():
            raise ValueError(f"{flag(name)} does not apply to a {target_kind} target (prognosis takes "
                             "TrainConfig keys)")


def refuse_for_detection(flags: dict[str, Any]) -> dict[str, Any]:
    """Refuse what detection does not take; returns the given flags as ``DetectionConfig`` keys."""
    from fusemed.diagnosis.detectors import DETECTORS

    keys: dict[str, Any] = {"params": {}, "trainer": {}}
    for name, value in flags.items():
        if name == "fusion":
            raise ValueError(f"--fusion does not apply to a lesion-mask target: detection uses --model (one of "
                             f"{', '.join(sorted(DETECTORS))})")
        if name not in DETECTION_KEYS:
            raise ValueError(f"{flag(name)} does not apply to a lesion-mask target: "
                             f"{NOT_FOR_DETECTION.get(name, _ONE_SPLIT)}")
        key = DETECTION_KEYS[name]
        section, _, leaf = key.partition(".")
        if leaf:
            keys.setdefault(section, {})[leaf] = value
        else:
            keys[key] = value.split(",") if name == "modalities" else value
    return keys


def refuse_detector_params(flags: dict[str, Any], detector: str) -> None:
    """A hyperparameter flag (``--epochs`` ...) must name one of the chosen detector's ``defaults``."""
    from fusemed.diagnosis.detectors import get_detector

    klass = get_detector(detector)
    for name, key in DETECTION_KEYS.items():
        param = key.removeprefix("params.")
        if name in flags and key.startswith("params.") and param not in klass.defaults:
            raise ValueError(f"{flag(name)} does not apply to detector {klass.name!r}: it has no {param!r} "
                             f"hyperparameter (it has {', '.join(sorted(klass.defaults))})")
