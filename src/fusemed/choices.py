"""Checking a word against its valid choices, with "did you mean", before anything heavy is imported.

MONAI's ``look_up_option`` gives the answer users of the field know ("By 'hemsi', did you mean 'hemis'?
… Available options are …"), but importing MONAI takes ~4 s (torch included), and a misspelt option must
be refused at once, before the cohort is read (issue 12). This is the same answer from the standard
library's :mod:`difflib`; every config check in fusemed goes through it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: object, options: Iterable[str]) -> str:
    """``" Did you mean 'x'?"`` for the closest option, or an empty string when none is close."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def look_up(value: object, options: Iterable[str]) -> str:
    """``value`` when it is one of ``options``, else a ValueError worded like MONAI's ``look_up_option``."""
    choices = list(dict.fromkeys(str(o) for o in options))
    if isinstance(value, str) and value in choices:
        return value
    close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
    hint = f"By {value!r}, did you mean {close[0]!r}?\n" if close else ""
    raise ValueError(f"{hint}{value!r} is not a valid value.\nAvailable options are {set(choices)}.\n")
