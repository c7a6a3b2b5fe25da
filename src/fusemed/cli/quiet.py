"""What a person sees: fusemed's own messages, not third-party banners, tips and deprecation notices.

Lightning announces every ``Trainer`` ("GPU available: …", "💡 Tip: … try installing [litmodels] …",
"`Trainer.fit` stopped …", "You are using a CUDA device …") on INFO through its loggers, and its
dependencies emit deprecation and "possible user" warnings on every fold. The CLI callback calls
:func:`configure_output` once per command, before any verb imports Lightning:

* **logging** (Lightning's documented way: ``logging.getLogger("lightning.pytorch").setLevel(...)``):
  Lightning sets its package loggers (``lightning``, ``lightning.pytorch``, ``lightning.fabric``) to INFO
  when it is imported, so the level goes on the loggers of their subpackages (``lightning.pytorch.trainer``,
  ``lightning.pytorch.utilities`` …, listed from the installed package without importing it), which it
  leaves alone: WARNING normally, unset (Lightning's INFO) with ``--verbose``. Already imported: its
  package loggers are set too. fusemed's own logger gets a handler: WARNING and up, INFO with ``--verbose``.
* **warnings**: ``ignore`` filters scoped to the modules of known third-party packages (everything from
  Lightning, its PossibleUserWarning advice included; deprecation notices from the others). fusemed's own
  warnings are never filtered. ``--verbose`` removes these filters.

Nothing here runs on import; library code (``train_run`` …) keeps Python's defaults.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pkgutil
import sys
import warnings
from functools import cache
from typing import TextIO

#: Lightning's package loggers (it sets them to INFO on import)
LIGHTNING_PACKAGES = ("lightning", "lightning.pytorch", "lightning.fabric")
#: Packages whose deprecation notices a user of fusemed cannot act on
THIRD_PARTY = ("torch", "torchvision", "torchmetrics", "torchsurv", "monai", "sklearn", "sksurv", "nibabel",
               "scipy", "pandas", "numpy", "pydantic", "lightning_utilities", "timm", "jinja2")
_LIGHTNING = r"(lightning|pytorch_lightning|lightning_fabric)(\.|$)"
_OTHERS = r"(" + "|".join(THIRD_PARTY) + r")(\.|$)"
#: ``warnings.filterwarnings`` arguments applied when quiet (Lightning's ``rank_zero_warn`` attributes its
#: advice, e.g. PossibleUserWarning "does not have many workers", to its own module)
FILTERS: tuple[dict[str, object], ...] = (
    {"module": _LIGHTNING, "category": Warning},
    *({"module": _OTHERS, "category": c} for c in (DeprecationWarning, PendingDeprecationWarning, FutureWarning)),
)
#: Environment variable telling spawned worker processes (benchmark pools) to be quiet too
ENV = "FUSEMED_QUIET"


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (CliRunner swaps it for each invocation)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__ assigns it
        pass


def configure_output(verbose: bool) -> None:
    """Quiet (``verbose=False``) or show third-party logs and warnings; idempotent, reversible."""
    level = logging.INFO if verbose else logging.WARNING
    ours = logging.getLogger("fusemed")
    handler = next((h for h in ours.handlers if isinstance(h, _CurrentStderr)), None)
    if handler is None:
        handler = _CurrentStderr()
        ours.addHandler(handler)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s"))
    ours.setLevel(logging.INFO if verbose else logging.NOTSET)
    for name in _lightning_subloggers():
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    for name in LIGHTNING_PACKAGES:
        if name in sys.modules:
            logging.getLogger(name).setLevel(level)
    _remove_filters()
    if verbose:
        os.environ.pop(ENV, None)
    else:
        for spec in FILTERS:
            warnings.filterwarnings("ignore", **spec)  # type: ignore[arg-type]
        os.environ[ENV] = "1"


@cache
def _lightning_subloggers() -> tuple[str, ...]:
    """``lightning.pytorch.<sub>`` and ``lightning.fabric.<sub>`` for every installed subpackage or module."""
    spec = importlib.util.find_spec("lightning")  # finds, does not import
    if spec is None or not spec.submodule_search_locations:
        return ()
    names = []
    for package in ("pytorch", "fabric"):
        paths = [os.path.join(p, package) for p in spec.submodule_search_locations]
        names += [f"lightning.{package}.{m.name}" for m in pkgutil.iter_modules(paths)]
    return tuple(names)


def quiet_worker() -> bool:
    """In a spawned worker: quiet as its parent command is (reads :data:`ENV`); True when it was."""
    if os.environ.get(ENV):
        configure_output(verbose=False)
        return True
    return False


def _remove_filters() -> None:
    """Drop the filters of :data:`FILTERS`, keeping every other filter in its order (public API only)."""
    ours = {(f.get("message", ""), f["category"], f["module"]) for f in FILTERS}
    kept = [f for f in warnings.filters
            if not (f[0] == "ignore" and (_pattern(f[1]), f[2], _pattern(f[3])) in ours)]
    if len(kept) == len(warnings.filters):
        return
    warnings.resetwarnings()
    for action, message, category, module, lineno in kept:
        warnings.filterwarnings(action, _pattern(message), category, _pattern(module), lineno, append=True)


def _pattern(regex: object) -> str:
    return getattr(regex, "pattern", "") if regex is not None else ""
