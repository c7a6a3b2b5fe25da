"""Shared Rich console and progress bar for every verb (Rich is for people; the library logs)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=False, highlight=False, soft_wrap=True)  # messages with paths stay copyable
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


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


def fmt_number(value: object) -> str:
    """A metric for the terminal: 3 decimals, ``-`` when undefined."""
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
