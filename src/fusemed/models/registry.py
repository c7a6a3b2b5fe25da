"""Name -> class registries for encoders, fusions, heads and baselines.

Components register themselves when their class is defined (`__init_subclass__(name=...)`), so a config
names a component by string and a plug-in is one class. A registry may also *declare* its built-in names
with the module that defines each: a config is then checked against every name without importing torch
(a misspelt `--fusion` is refused at once, issue 12), and the module is imported on first use. A misspelt
name gets "did you mean ...? Available options are ..." (`fusemed.choices`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from fusemed.choices import look_up

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """An unregistered name; a KeyError for mappings, a ValueError for config validation."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping of registered names to classes, with "did you mean" on unknown names.

    Args:
        what: what the registry holds ("fusion", "encoder", ...), used in error messages.
        builtins: declared names -> the module whose import registers them (imported on first use).
    """

    def __init__(self, what: str, builtins: Mapping[str, str] | None = None) -> None:
        self.what = what
        self._items: dict[str, T] = {}
        self._modules: dict[str, str] = dict(builtins or {})

    def register(self, name: str, item: T) -> T:
        """Add `item` under `name`; a second class with the same name is a bug, so it raises."""
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.what} {name!r} is already registered by {self._items[name]!r}")
        self._items[name] = item
        return item

    def __getitem__(self, name: str) -> T:
        try:
            key = look_up(name, list(self))
        except ValueError as err:
            raise UnknownNameError(f"unknown {self.what} {name!r}. {err}") from None
        if key not in self._items:
            importlib.import_module(self._modules[key])
        if key not in self._items:
            raise LookupError(f"{self._modules[key]} is declared to define {self.what} {key!r} but does not")
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._modules, *self._items]))

    def __len__(self) -> int:
        return len(self._modules.keys() | self._items.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._modules

    def __repr__(self) -> str:
        return f"Registry({self.what}: {sorted(self)})"


_FUSION = "fusemed.models.fusion."
_BASELINE = "fusemed.models.baselines.estimators."
#: fusion strategies (fusemed.models.fusion); a new one is a class there and a line here
FUSIONS: Registry = Registry("fusion", {name: _FUSION + name for name in
                                        ("early", "late", "concat", "attention", "hemis", "poe", "lmf")})
#: classical baselines (fusemed.models.baselines.estimators)
BASELINES: Registry = Registry("baseline", {name: _BASELINE + name for name in ("logistic", "gbm", "cox", "rsf")})
