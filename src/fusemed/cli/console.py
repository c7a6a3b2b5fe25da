"""Shared Rich console and progress bar for every verb (Rich is for people; the library logs)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def progress() -> Progress:
    """A progress bar with counts and elapsed time; invisible when output is not a terminal."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
