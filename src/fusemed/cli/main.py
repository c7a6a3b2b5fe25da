"""Entry point of the `fusemed` command.

Each verb lives in its own module as a plain function and is registered here; every verb is a thin
layer over the Python API, so whatever the CLI does can be done from a notebook too.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import typer
from rich.markup import escape

from fusemed import __version__

app = typer.Typer(
    name="fusemed",
    help="Multimodal medical-imaging diagnosis and prognosis with missing modalities and uncertainty.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fusemed {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    verbose: bool = typer.Option(False, "--verbose", help="Show logs (fusemed's and third-party: Lightning, "
                                 "torch...), their warnings, and the full traceback when a command fails."),
) -> None:
    """fusemed: fuse imaging, graphs and clinical data; say how sure you are."""
    from fusemed.cli.quiet import configure_output

    _STATE["verbose"] = verbose
    configure_output(verbose)


_STATE = {"verbose": False}
#: What a refusal is (bad input, missing file, over a limit): one line, no traceback.
_REFUSALS = (ValueError, LookupError, OSError, MemoryError)


def refusing(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run a verb so that an error becomes a one-line message and exit code 1 (``--verbose``: traceback)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt):
            raise
        except Exception as err:
            if _STATE["verbose"]:
                raise
            from fusemed.cli.console import err_console

            text = str(err).strip() or type(err).__name__
            first, _, rest = text.partition("\n")
            label = "error" if isinstance(err, _REFUSALS) else f"internal error ({type(err).__name__})"
            hint = "" if isinstance(err, _REFUSALS) else " (rerun with --verbose for the traceback)"
            err_console.print(f"[bold red]{label}:[/] {escape(first)}{hint}")
            if rest:  # a cohort's problem list: one problem a line
                err_console.print(escape(rest), highlight=False)
            raise typer.Exit(code=1) from None

    return run


def _register() -> None:
    from fusemed.cli import evaluate, predict, simulate, train, validate

    app.command("validate")(refusing(validate.validate_command))
    app.command("simulate")(refusing(simulate.simulate_command))
    app.command("dataset")(refusing(importlib.import_module("fusemed.cli.dataset").dataset_command))
    app.command("train")(refusing(train.train_command))
    app.command("evaluate")(refusing(evaluate.evaluate_command))
    app.command("predict")(refusing(predict.predict_command))
    app.command("advise")(refusing(importlib.import_module("fusemed.cli.advise").advise_command))
    app.command("report")(refusing(importlib.import_module("fusemed.cli.report").report_command))
    app.command("benchmark")(refusing(importlib.import_module("fusemed.cli.benchmark").benchmark_command))
    app.command("demo")(refusing(importlib.import_module("fusemed.cli.demo").demo_command))
    app.add_typer(importlib.import_module("fusemed.cli.importer").import_app, name="import")


_register()
