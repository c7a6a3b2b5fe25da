"""Entry point of the `fusemed` command.

Each verb lives in its own module as a plain function and is registered here; every verb is a thin
layer over the Python API, so whatever the CLI does can be done from a notebook too.
"""

from __future__ import annotations

import importlib

import typer

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
) -> None:
    """fusemed: fuse imaging, graphs and clinical data; say how sure you are."""


def _register() -> None:
    from fusemed.cli import evaluate, predict, simulate, train, validate

    app.command("validate")(validate.validate_command)
    app.command("simulate")(simulate.simulate_command)
    app.command("dataset")(importlib.import_module("fusemed.cli.dataset").dataset_command)
    app.command("train")(train.train_command)
    app.command("evaluate")(evaluate.evaluate_command)
    app.command("predict")(predict.predict_command)
    app.command("report")(importlib.import_module("fusemed.cli.report").report_command)
    app.command("benchmark")(importlib.import_module("fusemed.cli.benchmark").benchmark_command)
    app.command("demo")(importlib.import_module("fusemed.cli.demo").demo_command)
    app.add_typer(importlib.import_module("fusemed.cli.importer").import_app, name="import")


_register()
