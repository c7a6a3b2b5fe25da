"""`python -m fusemed` runs the command line."""

from fusemed.cli.main import app

app()
