"""Name -> class registries for encoders, fusions and heads.

Components register themselves when their class is defined (`__init_subclass__(name=...)`), so nobody
keeps a list by hand and a config names a component by string. A misspelt name gets MONAI's
"did you mean ...? Available options are ..." answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from monai.utils import look_up_option

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """An unregistered name; a KeyError for mappings, a ValueError for config validation."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping of registered names to classes, with "did you mean" on unknown names.

    Args:
        what: what the registry holds ("fusion", "encoder", ...), used in error messages.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        """Add `item` under `name`; a second class with the same name is a bug, so it raises."""
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.what} {name!r} is already registered by {self._items[name]!r}")
        self._items[name] = item
        return item

    def __getitem__(self, name: str) -> T:
        try:
            return look_up_option(name, self._items)
        except ValueError as err:
            raise UnknownNameError(f"unknown {self.what} {name!r}. {err}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __repr__(self) -> str:
        return f"Registry({self.what}: {sorted(self._items)})"
